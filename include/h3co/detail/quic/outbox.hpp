// Packet batching: the packets a flush wrote, back to back in one buffer, described as runs that
// the socket layer sends with as few system calls as the kernel allows (GSO, sendmmsg). The session
// fills it; the I/O layer drains it. Nothing here touches a socket.
#pragma once

#include <h3co/detail/datagram_run.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace h3co::detail {

class outbox {
public:
    /// `gso_segments`: packets per GSO run (1: GSO off). `sendmmsg_messages`: messages per system
    /// call, which sets a send's worth when GSO is off.
    outbox(std::size_t gso_segments, std::size_t sendmmsg_messages)
        : gso_segments_(std::max<std::size_t>(gso_segments, 1)),
          send_threshold_(gso_segments_ > 1 ? gso_segments_ : std::max<std::size_t>(sendmmsg_messages, 1)) {}

    /// Room for `packets` packets of up to `max_len` bytes each, allocated once (only ever grows,
    /// and only while the outbox is empty, so runs never point into a freed buffer).
    void reserve(std::size_t packets, std::size_t max_len) {
        const std::size_t want = packets * max_len;
        if (want <= capacity_ || !runs_.empty()) return;
        buffer_ = std::make_unique_for_overwrite<std::uint8_t[]>(want);
        capacity_ = want;
        runs_.reserve(packets);
    }
    std::size_t capacity() const noexcept { return capacity_; }

    /// True when a packet of up to `max_len` bytes fits after what is there.
    bool has_room(std::size_t max_len) const noexcept { return used_ + max_len <= capacity_; }
    /// Where the next packet is written.
    std::uint8_t* tail() noexcept { return buffer_.get() + used_; }

    /// A packet of `n` bytes was written at tail(), for `to`, with ECN codepoint `ecn`, to leave by
    /// `socket` (datagram_run::socket). It joins the last run when GSO can carry both: equal
    /// segments but for a shorter last one, one ECN mark, one peer, one socket, at most
    /// gso_segments packets.
    void add(const sockaddr* to, socklen_t to_len, std::size_t n, std::uint8_t ecn, std::uint32_t socket = 0) {
        const std::uint8_t* data = tail();
        used_ += n;
        ++packets_;
        if (run_open_) {
            datagram_run& run = runs_.back();
            if (n <= run.segment && ecn == run.ecn && run.len / run.segment < gso_segments_ && run.data + run.len == data &&
                run.len + n <= max_run_bytes && socket == run.socket && to_len == run.to_len &&
                std::memcmp(to, &run.to, run.to_len) == 0) {
                run.len += n;
                run_open_ = n == run.segment;  // a shorter packet ends the run
                return;
            }
        }
        runs_.push_back(run_of(to, to_len, data, n, ecn));
        runs_.back().socket = socket;
        run_open_ = gso_segments_ > 1;
    }

    /// The most one GSO message carries: a UDP datagram's limit over IPv4 (65535 - 20 - 8). Reached
    /// only with packets above 1452 bytes (path-MTU discovery on ngtcp2 1.x).
    static constexpr std::size_t max_run_bytes = 65507;

    /// What follows starts a new run (the buffer may start over once the outbox is sent).
    void end_run() noexcept { run_open_ = false; }

    /// Holds a send's worth: a full GSO run, or a sendmmsg's worth of packets without GSO.
    bool ready_to_send() const noexcept { return packets_ >= send_threshold_; }

    bool empty() const noexcept { return runs_.empty(); }
    std::span<datagram_run> runs() noexcept { return runs_; }

    /// The first `done` runs were sent, and `next`, when given, is what is left of the run after
    /// them. Once everything is sent the buffer starts over (what is written next is still in cache).
    void sent(std::size_t done, const datagram_run* next) {
        runs_.erase(runs_.begin(), runs_.begin() + static_cast<std::ptrdiff_t>(std::min(done, runs_.size())));
        if (next && !runs_.empty()) {
            runs_.front().data = next->data;
            runs_.front().len = next->len;
        }
        if (runs_.empty()) {
            packets_ = 0;
            used_ = 0;
            run_open_ = false;
        }
    }

    /// Drops everything not sent yet (a connection close replaces it).
    void clear() { sent(runs_.size(), nullptr); }

private:
    static datagram_run run_of(const sockaddr* to, socklen_t to_len, const std::uint8_t* data, std::size_t n,
                               std::uint8_t ecn) {
        datagram_run run;
        run.data = data;
        run.len = run.segment = n;
        run.ecn = ecn;
        run.to_len = std::min<socklen_t>(to_len, sizeof run.to);
        std::memcpy(&run.to, to, run.to_len);
        return run;
    }

    std::size_t gso_segments_;
    std::size_t send_threshold_;
    std::unique_ptr<std::uint8_t[]> buffer_;
    std::size_t capacity_ = 0;
    std::size_t used_ = 0;          ///< [0, used_) of the buffer is in runs_
    std::size_t packets_ = 0;       ///< packets added since the outbox was last empty
    bool run_open_ = false;         ///< the last run may take more packets
    std::vector<datagram_run> runs_;
};

}  // namespace h3co::detail
