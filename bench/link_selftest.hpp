// Traffic for `h3co_bench link-selftest`: a paced UDP sender (its own thread) and a receiver (the
// calling thread) on loopback, with the link emulator in between (a child process). Each datagram
// carries its sequence number and CLOCK_REALTIME at sending; the receiver takes the kernel's receive
// time (SO_TIMESTAMPNS, also CLOCK_REALTIME), so the one-way delay it computes is the emulator's
// doing and not the receiving thread's scheduling. Bounded in time throughout.
#pragma once

#include "link_emulator.hpp"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace bench::link {

inline std::uint64_t realtime_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

struct selftest_result {
    double offered_bps = 0;
    double seconds = 0;              ///< how long the sender sent
    std::uint64_t sent = 0;          ///< datagrams the sender's sendmmsg accepted
    std::uint64_t send_errors = 0;
    std::uint64_t received = 0;
    std::uint64_t out_of_order = 0;  ///< arrived after a higher sequence number
    std::uint64_t receiver_drops = 0;  ///< the receiving socket overflowed (SO_RXQ_OVFL)
    double delivered_bps = 0;        ///< bits received / time from the first to the last arrival
    double delay_min_us = NAN, delay_p50_us = NAN, delay_p99_us = NAN, delay_max_us = NAN;
    double sent_bps() const { return seconds > 0 ? static_cast<double>(sent) * bits_per_datagram / seconds : 0; }
    double bits_per_datagram = 0;
};

/// A UDP socket on 127.0.0.1:0 for the receiving end (the emulator's target), opened before the
/// emulator starts so that its port can be given to it.
class selftest_receiver {
public:
    selftest_receiver() {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
        const int buf = 8 << 20, on = 1;
        if (::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        ::setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
        ::setsockopt(fd_, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
        const auto local = loopback(AF_INET, 0);
        if (::bind(fd_, reinterpret_cast<const sockaddr*>(&local), address_length(local)) != 0) {
            ::close(fd_);
            throw std::system_error(errno, std::generic_category(), "bind");
        }
    }
    selftest_receiver(const selftest_receiver&) = delete;
    selftest_receiver& operator=(const selftest_receiver&) = delete;
    ~selftest_receiver() { ::close(fd_); }
    int fd() const noexcept { return fd_; }
    std::uint16_t port() const {
        sockaddr_storage a{};
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        return address_port(a);
    }

private:
    int fd_ = -1;
};

/// Sends datagrams of `size` bytes (>= 16) to `to` at `offered_bps` for `seconds`, and receives
/// them on `rx` until nothing has come for `quiet_ns` after the sender stopped (at most `seconds` +
/// `quiet_ns` + 10 s in all). With `gso` > 1 the sender hands the kernel up to `gso` datagrams per
/// message (UDP_SEGMENT), as h3co does; the emulator receives such a run as one message (UDP_GRO).
inline selftest_result run_selftest(selftest_receiver& rx, const sockaddr_storage& to, double offered_bps, double seconds,
                                    std::size_t size, std::uint64_t quiet_ns, std::size_t gso = 1) {
    constexpr std::size_t batch = 64;
    size = std::clamp<std::size_t>(size, 16, 65000);
    selftest_result res;
    res.offered_bps = offered_bps;
    res.bits_per_datagram = static_cast<double>(size) * 8;
    std::atomic<bool> sender_done{false};
    std::atomic<std::uint64_t> sent_total{0}, send_errors{0};
    std::atomic<std::uint64_t> send_ns{0};

    std::thread sender([&] {
        const int fd = ::socket(to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&to), address_length(to)) != 0) {
            if (fd >= 0) ::close(fd);
            send_errors = 1;
            sender_done = true;
            return;
        }
        const int buf = 4 << 20;
        if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) != 0) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        std::vector<std::byte> data(batch * size, std::byte{0x5a});
        std::array<mmsghdr, batch> msgs{};
        std::array<iovec, batch> iov{};
        struct alignas(cmsghdr) segment_control {
            char bytes[CMSG_SPACE(sizeof(std::uint16_t))];
        };
        std::array<segment_control, batch> ctrl{};
        const std::size_t per_message = std::clamp<std::size_t>(gso, 1, std::min<std::size_t>(batch, 65000 / size));
        // Message m carries datagrams [m * per_message, (m + 1) * per_message) of the batch.
        auto prepare = [&](std::size_t k) {  // k datagrams; returns the number of messages
            std::size_t m = 0;
            for (std::size_t first = 0; first < k; first += per_message, ++m) {
                const std::size_t n = std::min(per_message, k - first);
                iov[m] = {data.data() + first * size, n * size};
                msghdr& h = msgs[m].msg_hdr;
                h = {};
                h.msg_iov = &iov[m];
                h.msg_iovlen = 1;
                if (per_message > 1) {
                    h.msg_control = ctrl[m].bytes;
                    h.msg_controllen = sizeof ctrl[m].bytes;
                    cmsghdr* cm = CMSG_FIRSTHDR(&h);
                    cm->cmsg_level = SOL_UDP;
                    cm->cmsg_type = UDP_SEGMENT;
                    cm->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
                    const auto seg = static_cast<std::uint16_t>(size);
                    std::memcpy(CMSG_DATA(cm), &seg, sizeof seg);
                }
                msgs[m].msg_len = static_cast<unsigned>(n);  // datagrams in it (read back below)
            }
            return m;
        };
        // Paced by time slots: slot i is due at start + i / rate. The sender wakes at most every
        // 200 us and sends what is due then; if it fell behind by more than 1 ms of slots (it was
        // not scheduled), it skips the missed slots rather than catch up in one burst, which would
        // only measure the queue. What it really sent is reported.
        constexpr std::uint64_t min_sleep_ns = 200'000;
        const double per_ns = offered_bps / (static_cast<double>(size) * 8) / 1e9;  // slots per ns
        const auto max_burst = std::max<std::uint64_t>(16, static_cast<std::uint64_t>(per_ns * 1e6));
        const std::uint64_t start = now_ns(), end = start + static_cast<std::uint64_t>(seconds * 1e9);
        std::uint64_t sent = 0, slot = 0, errors = 0;
        for (std::uint64_t now = start; now < end; now = now_ns()) {
            const auto due = static_cast<std::uint64_t>(static_cast<double>(now - start) * per_ns) + 1;
            if (slot >= due) {  // ahead: sleep until the next slot, at least min_sleep_ns
                const std::uint64_t at = std::max(start + static_cast<std::uint64_t>(static_cast<double>(slot) / per_ns), now + min_sleep_ns);
                const timespec ts{static_cast<time_t>(at / 1'000'000'000u), static_cast<long>(at % 1'000'000'000u)};
                ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
                continue;
            }
            if (due - slot > max_burst) slot = due - max_burst;
            const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(due - slot, batch));
            const std::uint64_t stamp = realtime_ns();
            for (std::size_t i = 0; i < k; ++i) {
                const std::uint64_t seq = sent + i;
                std::memcpy(data.data() + i * size, &seq, 8);
                std::memcpy(data.data() + i * size + 8, &stamp, 8);
            }
            const std::size_t m = prepare(k);
            std::array<unsigned, batch> datagrams_in{};
            for (std::size_t i = 0; i < m; ++i) datagrams_in[i] = msgs[i].msg_len;
            const int r = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(m), 0);
            if (r > 0) {
                std::uint64_t done = 0;
                for (std::size_t i = 0; i < static_cast<std::size_t>(r); ++i) done += datagrams_in[i];
                sent += done;
                slot += done;
            } else if (errno != EINTR) {
                ++errors;  // e.g. ECONNREFUSED: the emulator is gone
                if (errors > 1000) break;
            }
        }
        send_ns = now_ns() - start;
        sent_total = sent;
        send_errors = errors;
        ::close(fd);
        sender_done = true;
    });

    std::vector<double> delays;  // microseconds
    delays.reserve(static_cast<std::size_t>(std::min(offered_bps * seconds / res.bits_per_datagram * 1.05 + 1024, 8e6)));
    std::vector<std::byte> rbuf(batch * size);
    std::array<mmsghdr, batch> msgs{};
    std::array<iovec, batch> iov{};
    struct alignas(cmsghdr) control_buffer {
        char bytes[128];
    };
    std::array<control_buffer, batch> ctrl{};
    std::uint64_t max_seq = 0, first_rx = 0, last_rx = 0, bytes = 0, first_bytes = 0;
    bool any = false;
    std::uint64_t last_activity = now_ns();
    const std::uint64_t hard_end = now_ns() + static_cast<std::uint64_t>((seconds + 10) * 1e9) + quiet_ns;
    for (;;) {
        const std::uint64_t now = now_ns();
        if (now >= hard_end) break;
        if (sender_done && now - last_activity > quiet_ns) break;
        // Drains every millisecond rather than waking for each datagram: the kernel's stamps keep
        // the times exact, and the receiver leaves the CPU to the emulator.
        pollfd p{rx.fd(), POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        const timespec pause{0, 1'000'000};
        ::nanosleep(&pause, nullptr);
        for (int round = 0; round < 1024; ++round) {  // drain (bounded)
            for (std::size_t i = 0; i < batch; ++i) {
                iov[i] = {rbuf.data() + i * size, size};
                msgs[i].msg_hdr = {};
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_control = ctrl[i].bytes;
                msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i].bytes;
            }
            const int n = ::recvmmsg(rx.fd(), msgs.data(), batch, MSG_DONTWAIT, nullptr);
            if (n <= 0) break;
            last_activity = now_ns();
            for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
                if (msgs[i].msg_len < 16) continue;
                std::uint64_t seq = 0, stamp = 0, kernel = 0;
                std::memcpy(&seq, rbuf.data() + i * size, 8);
                std::memcpy(&stamp, rbuf.data() + i * size + 8, 8);
                msghdr& h = msgs[i].msg_hdr;
                for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm; cm = CMSG_NXTHDR(&h, cm)) {
                    if (cm->cmsg_level != SOL_SOCKET) continue;
                    if (cm->cmsg_type == SO_TIMESTAMPNS) {
                        timespec ts{};
                        std::memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                        kernel = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
                    } else if (cm->cmsg_type == SO_RXQ_OVFL) {
                        std::uint32_t drops = 0;
                        std::memcpy(&drops, CMSG_DATA(cm), sizeof drops);
                        res.receiver_drops = std::max<std::uint64_t>(res.receiver_drops, drops);
                    }
                }
                if (kernel == 0) kernel = realtime_ns();
                ++res.received;
                if (any && seq < max_seq) ++res.out_of_order;
                max_seq = std::max(max_seq, seq);
                if (!any) {
                    first_rx = kernel;
                    first_bytes = msgs[i].msg_len;
                    any = true;
                }
                last_rx = std::max(last_rx, kernel);
                bytes += msgs[i].msg_len;
                if (delays.size() < delays.capacity()) delays.push_back(kernel > stamp ? static_cast<double>(kernel - stamp) / 1000.0 : 0.0);
            }
            if (static_cast<std::size_t>(n) < batch) break;
        }
    }
    sender.join();
    res.sent = sent_total;
    res.send_errors = send_errors;
    res.seconds = static_cast<double>(send_ns.load()) / 1e9;
    if (last_rx > first_rx) res.delivered_bps = static_cast<double>(bytes - first_bytes) * 8 / (static_cast<double>(last_rx - first_rx) / 1e9);
    if (!delays.empty()) {
        std::sort(delays.begin(), delays.end());
        auto pct = [&](double p) {
            const auto idx = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(delays.size())));
            return delays[std::min(delays.size() - 1, idx == 0 ? 0 : idx - 1)];
        };
        res.delay_min_us = delays.front();
        res.delay_p50_us = pct(50);
        res.delay_p99_us = pct(99);
        res.delay_max_us = delays.back();
    }
    return res;
}

}  // namespace bench::link
