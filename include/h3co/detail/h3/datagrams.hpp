// HTTP/3 datagrams (RFC 9297) of one connection, without the C libraries: the frames waiting to go
// out in QUIC DATAGRAM frames, the datagrams received per request stream until the application
// takes them, and the operations waiting on either. nghttp3 has no datagram API, so h3co frames
// each datagram itself: the request stream's quarter stream ID (a QUIC varint) and the payload.
// Both queues are bounded (connection_options::datagram_receive_queue / datagram_send_queue):
// datagrams are unreliable, so a full receive queue drops what arrives, and counts it.
#pragma once

#include <h3co/detail/pending_op.hpp>
#include <h3co/error.hpp>

#include <asio/buffer.hpp>
#include <asio/error.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace h3co::detail {

namespace datagram_framing {

/// Bytes of `v` as a QUIC varint (RFC 9000 §16); v < 2^62.
inline std::size_t varint_size(std::uint64_t v) noexcept { return v < 64 ? 1 : v < 16384 ? 2 : v < (1u << 30) ? 4 : 8; }

inline void put_varint(std::vector<std::uint8_t>& out, std::uint64_t v) {
    const std::size_t n = varint_size(v);
    const std::uint8_t prefix = n == 1 ? 0x00 : n == 2 ? 0x40 : n == 4 ? 0x80 : 0xc0;
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * (n - 1 - i))));
    out[out.size() - n] |= prefix;
}

/// The HTTP/3 datagram for request stream `stream_id`: quarter stream ID, then `payload`.
inline std::vector<std::uint8_t> frame(std::int64_t stream_id, std::vector<std::uint8_t> payload) {
    std::vector<std::uint8_t> out;
    const auto quarter = static_cast<std::uint64_t>(stream_id) / 4;
    out.reserve(varint_size(quarter) + payload.size());
    put_varint(out, quarter);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

/// A received HTTP/3 datagram's stream ID and where its payload starts; nullopt when the quarter
/// stream ID is cut short (H3_DATAGRAM_ERROR, RFC 9297 §2.1).
struct parsed {
    std::uint64_t stream_id;
    std::size_t payload_offset;
};
inline std::optional<parsed> parse(const std::uint8_t* data, std::size_t len) noexcept {
    if (len == 0) return std::nullopt;
    const std::size_t n = std::size_t{1} << (data[0] >> 6);
    if (n > len) return std::nullopt;
    std::uint64_t quarter = data[0] & 0x3f;
    for (std::size_t i = 1; i < n; ++i) quarter = (quarter << 8) | data[i];
    return parsed{quarter * 4, n};  // quarter < 2^62 / 4 is checked by the caller (H3_ID_ERROR)
}

}  // namespace datagram_framing

class datagram_channels {
public:
    using send_op = pending_op<std::error_code>;
    using receive_op = pending_op<std::error_code, std::size_t>;

    datagram_channels(std::size_t receive_queue, std::size_t send_queue)
        : receive_limit_(receive_queue), send_limit_(send_queue == 0 ? 1 : send_queue) {}

    // ---- the application's operations -------------------------------------------------------------

    /// Queues `frame` (already framed) for `stream`; waits while the connection's queue is full.
    /// `op_id` names the op for cancel().
    void send(std::int64_t stream, std::vector<std::uint8_t> frame, send_op op, std::uint64_t op_id) {
        auto& ch = channels_[stream];
        if (ch.send) return op.complete(make_error_code(error::operation_in_progress));
        if (outgoing_.size() < send_limit_) {
            outgoing_.push_back(std::move(frame));
            return op.complete({});
        }
        ch.send = std::move(op);
        ch.send_id = op_id;
        ch.waiting_frame = std::move(frame);
        senders_.push_back(stream);
    }

    /// Takes the next datagram of `stream` into `buffers`, or waits for one; `op_id` names the op
    /// for cancel().
    void receive(std::int64_t stream, std::vector<asio::mutable_buffer> buffers, receive_op op, std::uint64_t op_id) {
        auto& ch = channels_[stream];
        if (ch.receive) return op.complete(make_error_code(error::operation_in_progress), 0);
        if (!ch.inbox.empty()) {
            auto d = std::move(ch.inbox.front());
            ch.inbox.pop_front();
            return complete_receive(op, buffers, d.data(), d.size());
        }
        ch.receive = std::move(op);
        ch.receive_id = op_id;
        ch.buffers = std::move(buffers);
    }

    /// The operation `op_id` of `stream`, if still pending, completes with operation_aborted; the
    /// stream's other operation and the stream go on.
    void cancel(std::int64_t stream, std::uint64_t op_id) {
        auto it = channels_.find(stream);
        if (it == channels_.end()) return;
        auto& ch = it->second;
        const std::error_code aborted = asio::error::operation_aborted;
        if (ch.receive && ch.receive_id == op_id) {
            ch.buffers.clear();
            ch.receive.complete(aborted, 0);
        } else if (ch.send && ch.send_id == op_id) {
            std::erase(senders_, stream);
            ch.waiting_frame = {};
            ch.send.complete(aborted);
        }
    }

    // ---- the protocol's side ----------------------------------------------------------------------

    /// A datagram for `stream` arrived: to a waiting receive, into the stream's queue, or dropped
    /// (counted) when the queue is full.
    void deliver(std::int64_t stream, const std::uint8_t* payload, std::size_t len) {
        auto& ch = channels_[stream];
        ++received_;
        if (ch.receive) {
            auto op = std::move(ch.receive);
            auto buffers = std::move(ch.buffers);
            return complete_receive(op, buffers, payload, len);
        }
        if (ch.inbox.size() >= receive_limit_) {
            ++dropped_;
            return;
        }
        ch.inbox.emplace_back(payload, payload + len);
    }

    /// A datagram that no stream will take (unknown or closed stream, too big for any packet).
    void drop() noexcept { ++dropped_; }

    bool has_outgoing() const noexcept { return !outgoing_.empty(); }
    const std::vector<std::uint8_t>& next_outgoing() const noexcept { return outgoing_.front(); }
    /// The front datagram left in a packet (`sent`) or was given up; a waiting sender moves up.
    void pop_outgoing(bool sent) {
        outgoing_.pop_front();
        attempts_ = 0;
        if (sent)
            ++sent_;
        else
            ++dropped_;
        while (!senders_.empty() && outgoing_.size() < send_limit_) {
            auto& ch = channels_[senders_.front()];
            senders_.pop_front();
            outgoing_.push_back(std::move(ch.waiting_frame));
            ch.waiting_frame = {};
            ch.send.complete({});
        }
    }
    /// A packet went out without the front datagram (it did not fit after other frames); true when
    /// it has been tried often enough to give it up.
    bool missed_packet() noexcept { return ++attempts_ >= max_attempts; }

    /// `stream` is gone: its operations fail with `ec`, its queued datagrams are dropped.
    void stream_ended(std::int64_t stream, std::error_code ec) {
        auto it = channels_.find(stream);
        if (it == channels_.end()) return;
        auto ch = std::move(it->second);
        channels_.erase(it);
        std::erase(senders_, stream);
        dropped_ += ch.inbox.size();
        if (ch.receive) ch.receive.complete(ec, 0);
        if (ch.send) ch.send.complete(ec);
    }

    /// The connection ended: every operation fails with `ec`.
    void connection_ended(std::error_code ec) {
        auto channels = std::move(channels_);
        channels_.clear();
        senders_.clear();
        outgoing_.clear();
        for (auto& [id, ch] : channels) {
            if (ch.receive) ch.receive.complete(ec, 0);
            if (ch.send) ch.send.complete(ec);
        }
    }

    std::uint64_t sent() const noexcept { return sent_; }
    std::uint64_t received() const noexcept { return received_; }
    std::uint64_t dropped() const noexcept { return dropped_; }

private:
    /// Packets a datagram may miss (crowded out by ACKs and other frames) before it is given up.
    static constexpr int max_attempts = 3;

    struct channel {
        std::deque<std::vector<std::uint8_t>> inbox;
        receive_op receive;
        std::uint64_t receive_id = 0;  ///< which op `receive` is, for cancel()
        std::vector<asio::mutable_buffer> buffers;
        send_op send;
        std::uint64_t send_id = 0;
        std::vector<std::uint8_t> waiting_frame;
    };

    static void complete_receive(receive_op& op, const std::vector<asio::mutable_buffer>& buffers,
                                 const std::uint8_t* data, std::size_t len) {
        const std::size_t copied = asio::buffer_copy(buffers, asio::const_buffer(data, len));
        op.complete(copied < len ? make_error_code(error::datagram_truncated) : std::error_code{}, copied);
    }

    std::size_t receive_limit_;
    std::size_t send_limit_;
    std::unordered_map<std::int64_t, channel> channels_;
    std::deque<std::vector<std::uint8_t>> outgoing_;
    std::deque<std::int64_t> senders_;  ///< streams whose send waits for room, in order
    int attempts_ = 0;
    std::uint64_t sent_ = 0;
    std::uint64_t received_ = 0;
    std::uint64_t dropped_ = 0;
};

}  // namespace h3co::detail
