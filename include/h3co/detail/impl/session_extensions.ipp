// session's HTTP/3 extensions (see the last block of detail/session.hpp): the peer's SETTINGS as
// h3co reads them, HTTP/3 datagrams (RFC 9297) in QUIC DATAGRAM frames. Included by session.ipp.
#pragma once

#include <h3co/detail/h3/compat.hpp>
#include <h3co/detail/h3/datagrams.hpp>
#include <h3co/detail/quic/compat.hpp>
#include <h3co/detail/quic/native_session.hpp>
#include <h3co/detail/session.hpp>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

#include <utility>

namespace h3co::detail {

/// The packet side of HTTP/3 datagrams, for session::write_packets.
struct h3_extensions {
    /// One 1-RTT packet's overhead besides its frames, at most: first byte, a 20-byte connection ID,
    /// a 4-byte packet number and the AEAD tag.
    static constexpr std::size_t packet_overhead = 1 + 20 + 4 + 16;

    /// Writes the next queued datagram into the packet at `dest`, as ngtcp2_conn_writev_datagram
    /// does with NGTCP2_WRITE_DATAGRAM_FLAG_MORE: the packet's length, 0 when congestion or pacing
    /// hold it back, NGTCP2_ERR_WRITE_MORE when the packet takes more (also after a datagram the
    /// peer will not take was dropped), another negative value on a fatal error.
    static ngtcp2_ssize write_datagram(session& me, ngtcp2_path* path, ngtcp2_pkt_info* pi, std::uint8_t* dest,
                                       std::size_t destlen, std::uint64_t now) {
        auto& d = me.datagrams_;
        const auto& frame = d.next_outgoing();
        ngtcp2_vec v{const_cast<std::uint8_t*>(frame.data()), frame.size()};  // no vector for an empty one
        int accepted = 0;
        // The id (this datagram's ordinal) comes back in the ack_datagram callback
        // (quic/callbacks.hpp), which only needs to know that one was acknowledged.
        const auto nwrite = ngtcp2_conn_writev_datagram(me.native_->conn, path, pi, dest, destlen, &accepted,
                                                        NGTCP2_WRITE_DATAGRAM_FLAG_MORE, d.sent() + 1, &v,
                                                        frame.empty() ? 0 : 1, now);
        if (nwrite == NGTCP2_ERR_INVALID_ARGUMENT || nwrite == NGTCP2_ERR_INVALID_STATE) {
            d.pop_outgoing(false);  // bigger than the peer's max_datagram_frame_size, or it takes none
            return NGTCP2_ERR_WRITE_MORE;
        }
        if (nwrite == 0 && !accepted && frame.size() > max_frame(me)) {
            // Never fits this connection's packets (kept to 1200 bytes since a path-MTU black
            // hole, after it was queued): dropped and counted, or it would hold up everything.
            d.pop_outgoing(false);
            return NGTCP2_ERR_WRITE_MORE;
        }
        if (accepted)
            d.pop_outgoing(true);
        else if (nwrite > 0 && d.missed_packet())
            d.pop_outgoing(false);  // never fits beside what ngtcp2 must send first
        return nwrite;
    }

    /// The largest HTTP/3 datagram (quarter stream ID and payload) the peer takes and a packet on
    /// the current path carries.
    static std::size_t max_frame(const session& me) {
        auto* conn = me.native_->conn;
        const auto* params = ngtcp2_conn_get_remote_transport_params(conn);
        if (!params || params->max_datagram_frame_size == 0) return 0;
        std::size_t path = ngtcp2_conn_get_path_max_tx_udp_payload_size(conn);
        if (me.mtu_clamped_) path = std::min(path, session::base_udp_payload);
        // A DATAGRAM frame: type, length varint, data.
        std::size_t room = std::min<std::uint64_t>(params->max_datagram_frame_size, path > packet_overhead ? path - packet_overhead : 0);
        for (std::size_t header = 3; header <= 9; header += 2) {  // 1 + varint(length) of 2, 4 or 8 bytes
            if (room <= header) return 0;
            if (datagram_framing::varint_size(room - header) + 1 <= header) return room - header;
        }
        return 0;
    }
};

H3CO_DECL void session::after_peer_settings(pending_op<std::error_code> op) {
    if (peer_settings_.complete()) return op.complete({});
    if (auto ec = unusable()) return op.complete(ec);
    settings_waiters_.push_back(std::move(op));
}

H3CO_DECL bool session::peer_uni_stream_data(std::int64_t id, const std::uint8_t* data, std::size_t len) {
    if (peer_settings_.complete() || !peer_settings_.feed(id, data, len)) return true;
    for (auto& waiter : std::exchange(settings_waiters_, {})) waiter.complete({});  // posted: after this callback
    // RFC 9297 §3: SETTINGS_H3_DATAGRAM = 1 without the QUIC DATAGRAM transport parameter.
    const auto* params = ngtcp2_conn_get_remote_transport_params(native_->conn);
    if (peer_settings_.h3_datagram() && params && params->max_datagram_frame_size == 0) {
        const auto code = static_cast<std::uint64_t>(h3_error::settings_error);
        last_error_ = make_h3_error_code(code);
        compat::ccerr_set_application_error(native_->ccerr, code, nullptr, 0);
        return false;
    }
    return true;
}

H3CO_DECL std::error_code session::datagrams_unavailable(const stream_state& s) const {
    if (!h3_compat::h3_datagrams_supported) return make_error_code(error::not_supported);
    if (auto ec = stream_unusable(s)) return ec;
    if (!options_.h3_datagrams) return make_error_code(error::not_negotiated);
    return {};
}

H3CO_DECL std::error_code session::datagrams_unusable(const stream_state& s) const {
    if (auto ec = datagrams_unavailable(s)) return ec;
    // RFC 9297 §2.1.1 and §3: both the SETTINGS and the QUIC transport parameter.
    if (!peer_settings_.complete() || !peer_settings_.h3_datagram() || h3_extensions::max_frame(*this) == 0)
        return make_error_code(error::not_negotiated);
    return {};
}

H3CO_DECL void session::send_datagram(stream_state& s, std::vector<std::uint8_t> payload,
                                      pending_op<std::error_code> op, std::uint64_t op_id, bool raw) {
    if (auto ec = datagrams_unusable(s)) return op.complete(ec);
    auto frame = raw ? std::move(payload) : datagram_framing::frame(s.id, std::move(payload));
    if (frame.size() > h3_extensions::max_frame(*this)) return op.complete(make_error_code(error::datagram_too_large));
    datagrams_.send(s.id, std::move(frame), std::move(op), op_id);
    wake_flush();
}

H3CO_DECL void session::receive_datagram(stream_state& s, std::vector<asio::mutable_buffer> buffers,
                                         pending_op<std::error_code, std::size_t> op, std::uint64_t op_id) {
    if (auto ec = datagrams_unusable(s)) return op.complete(ec, 0);
    datagrams_.receive(s.id, std::move(buffers), std::move(op), op_id);
}

H3CO_DECL void session::cancel_datagram(stream_state& s, std::uint64_t op_id) { datagrams_.cancel(s.id, op_id); }

H3CO_DECL bool session::datagram_received(const std::uint8_t* data, std::size_t len) {
    const auto parsed = datagram_framing::parse(data, len);
    std::uint64_t code = 0;
    if (!parsed)
        code = static_cast<std::uint64_t>(h3_error::datagram_error);  // RFC 9297 §2.1: cut short
    else if (parsed->stream_id > (std::uint64_t{1} << 62) - 1)
        code = static_cast<std::uint64_t>(h3_error::id_error);  // beyond any stream ID
    if (code != 0) {
        last_error_ = make_h3_error_code(code);
        compat::ccerr_set_application_error(native_->ccerr, code, nullptr, 0);
        return false;
    }
    const auto id = static_cast<std::int64_t>(parsed->stream_id);
    const auto* s = find_stream(id);
    if (!s || s->quic_closed || s->raw) {
        datagrams_.drop();  // not open (yet, or any more): RFC 9297 §2.1 lets us drop it
        return true;
    }
    datagrams_.deliver(id, data + parsed->payload_offset, len - parsed->payload_offset);
    return true;
}

}  // namespace h3co::detail
