// session's packets out (see detail/session.hpp): ngtcp2 and nghttp3 write packets into the
// outbox, which the I/O layer sends; raw test streams and FINs nghttp3 0.8 forgets. Included by
// session.ipp.
#pragma once

#include <h3co/detail/h3/callbacks.hpp>
#include <h3co/detail/h3/compat.hpp>
#include <h3co/detail/h3/header_encoding.hpp>
#include <h3co/detail/quic/callbacks.hpp>
#include <h3co/detail/quic/compat.hpp>
#include <h3co/detail/quic/native_session.hpp>
#include <h3co/detail/session.hpp>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

namespace h3co::detail {

// ---- packets out ----------------------------------------------------------------------------------

H3CO_DECL void session::before_flush() {
    if (openers_pending_) {
        openers_pending_ = false;
        serve_openers();
    }
    machine_.complete_filled_reads();
}

H3CO_DECL void session::check_path_mtu_black_hole(std::uint64_t now) {
    // Suspected when data has been in flight with no stream data acknowledged for three PTOs (at
    // least 1 s) on a path where PMTUD went above the 1200 bytes every path carries. Then every
    // packet is kept to 1200 bytes for the rest of the connection: ngtcp2 has no
    // way to lower a path's size once PMTUD raised it, and probes a path only once. A false alarm
    // (a long loss burst) costs the larger packets, never the connection.
    if (mtu_clamped_ || !established_) return;
    auto* conn = native_->conn;
    const auto p = compat::path_numbers_of(conn);
    if (ngtcp2_conn_get_path_max_tx_udp_payload_size(conn) <= base_udp_payload || p.bytes_in_flight == 0) {
        data_stalled_since_ = 0;
        return;
    }
    if (!data_stalled_since_) {
        data_stalled_since_ = now;
        return;
    }
    const std::uint64_t pto = p.smoothed_rtt + std::max<std::uint64_t>(4 * p.rttvar, 1'000'000) + 25'000'000;
    if (now - data_stalled_since_ >= std::max<std::uint64_t>(3 * pto, 1'000'000'000)) mtu_clamped_ = true;
}

H3CO_DECL bool session::write_packets(std::uint64_t now, flush_round& round) {
    if (terminated_ || first_flight_at_) return false;  // 0-RTT: the first flight waits for a request
    auto& n = *native_;
    now_ = now;
    const std::size_t max_len = ngtcp2_conn_get_max_tx_udp_payload_size(n.conn);
    check_path_mtu_black_hole(now);
    // What ngtcp2 may write in one packet: a destination shorter than the path's size makes it
    // write shorter packets (it splits STREAM frames, retransmissions included). Datagrams and
    // stream data share packets (NGTCP2_ERR_WRITE_MORE), so both get the same length; a datagram
    // too big for it is dropped and counted, as one too big for the peer is.
    const std::size_t packet_len = mtu_clamped_ ? std::min<std::size_t>(max_len, base_udp_payload) : max_len;
    // Once: no allocation per packet. Before the handshake completes a few packets are all that
    // may leave (anti-amplification), and a flood of forged Initials must not cost each half-open
    // connection a whole batch buffer: the full one comes with the handshake.
    outbox_.reserve(established_ ? round.max_packets : std::min<std::size_t>(round.max_packets, 4), max_len);
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    while (round.packets < round.max_packets) {
        key_update_if_due(now);
        if (!outbox_.has_room(max_len)) {  // the small handshake buffer is full: send it, then go on
            outbox_.end_run();
            return true;
        }
        if (datagrams_.has_outgoing()) {  // HTTP/3 datagrams go first (impl/session_extensions.ipp)
            ngtcp2_pkt_info dpi{};
            const auto nwrite = h3_extensions::write_datagram(*this, &ps.path, &dpi, outbox_.tail(), packet_len, now);
            if (nwrite == NGTCP2_ERR_WRITE_MORE) continue;
            if (nwrite < 0) {
                compat::ccerr_set_liberr(n.ccerr, static_cast<int>(nwrite));
                close_with(make_error_code(error::protocol_error), now);
                return false;
            }
            if (nwrite == 0) return false;
            outbox_.add(ps.path.remote.addr, static_cast<socklen_t>(ps.path.remote.addrlen),
                        static_cast<std::size_t>(nwrite), dpi.ecn, socket_of(ps.path));
            ++round.packets;
            ++packets_sent_;
            bytes_sent_ += static_cast<std::uint64_t>(nwrite);
            if (!outbox_.ready_to_send()) continue;
            outbox_.end_run();
            return true;
        }
        std::int64_t stream_id = -1;
        int fin = 0;
        std::array<nghttp3_vec, 16> vec{};
        nghttp3_ssize veccnt = 0;
        const bool window = ngtcp2_conn_get_max_data_left(n.conn) > 0;
        stream_state* raw = raw_streams_.empty() || !window ? nullptr : next_raw_stream();
        const bool lone_fin = !raw && next_lone_fin(stream_id);
        if (lone_fin) {
            fin = 1;
        } else if (raw) {
            stream_id = raw->id;
            fin = raw->send == send_state::finishing ? 1 : 0;
            veccnt = static_cast<nghttp3_ssize>(stream_machine::unsent(*raw, vec.data(), vec.size()).first);
        } else if (window) {
            veccnt = nghttp3_conn_writev_stream(n.h3, &stream_id, &fin, vec.data(), vec.size());
            if (veccnt < 0) {
                compat::ccerr_set_application_error(
                    n.ccerr, nghttp3_err_infer_quic_app_error_code(static_cast<int>(veccnt)), nullptr, 0);
                close_with(make_error_code(error::protocol_error), now);
                return false;
            }
        }
        ngtcp2_ssize datalen = -1;
        std::uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
        if (fin) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        ngtcp2_pkt_info pi{};
        const auto nwrite = ngtcp2_conn_writev_stream(n.conn, &ps.path, &pi, outbox_.tail(), packet_len, &datalen, flags,
                                                      stream_id, reinterpret_cast<const ngtcp2_vec*>(vec.data()),
                                                      static_cast<std::size_t>(veccnt), now);
        if (nwrite < 0) {
            if (lone_fin) lone_fins_.pop_back();  // taken (WRITE_MORE), or the stream is shut
            switch (nwrite) {
            case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                if (raw)
                    raw->raw_blocked = true;
                else
                    nghttp3_conn_block_stream(n.h3, stream_id);
                continue;
            case NGTCP2_ERR_STREAM_SHUT_WR:  // the peer sent STOP_SENDING: no more bytes will be taken
                if (!raw) nghttp3_conn_shutdown_stream_write(n.h3, stream_id);
                if (auto* s = find_stream(stream_id)) machine_.stopped_by_peer(*s->shared_from_this());
                continue;
            case NGTCP2_ERR_WRITE_MORE:
                if (!stream_data_taken(raw, stream_id, datalen, fin, vec.data(), veccnt)) {
                    close_with(make_error_code(error::protocol_error), now);
                    return false;
                }
                continue;
            default:
                compat::ccerr_set_liberr(n.ccerr, static_cast<int>(nwrite));
                close_with(make_error_code(error::protocol_error), now);
                return false;
            }
        }
        if (!stream_data_taken(raw, stream_id, datalen, fin, vec.data(), veccnt)) {
            close_with(make_error_code(error::protocol_error), now);
            return false;
        }
        if (lone_fin && datalen >= 0) lone_fins_.pop_back();
        // nghttp3 0.8 forgets a request stream once it has handed out everything, even when QUIC
        // did not take it (congestion or pacing): a FIN with no data left must then be written
        // without nghttp3, or it would never leave.
        if (!raw && !lone_fin && fin && veccnt == 0 && datalen < 0 && ngtcp2_is_bidi_stream(stream_id))
            lone_fins_.push_back(stream_id);
        if (nwrite == 0) return false;
        outbox_.add(ps.path.remote.addr, static_cast<socklen_t>(ps.path.remote.addrlen),
                    static_cast<std::size_t>(nwrite), pi.ecn, socket_of(ps.path));
        ++round.packets;
        ++packets_sent_;
        bytes_sent_ += static_cast<std::uint64_t>(nwrite);
        if (outbox_.ready_to_send()) {
            outbox_.end_run();  // what follows starts a new run, in a buffer that may start over
            return true;
        }
    }
    return false;
}

H3CO_DECL void session::key_update_if_due(std::uint64_t now) {
    const auto interval = options_.key_update_interval;
    if (interval == 0 || !established_ || packets_sent_ - packets_at_key_update_ < interval) return;
    auto* conn = native_->conn;
    if (!compat::key_update_possible(conn)) return;
    // NGTCP2_ERR_INVALID_STATE: the previous update is unconfirmed or under 3 PTO old, or the next
    // keys are not derived yet; the next packet asks again.
    if (ngtcp2_conn_initiate_key_update(conn, now) != 0) return;
    ++key_updates_initiated_;
    packets_at_key_update_ = packets_sent_;
}

H3CO_DECL void session::end_flush(std::uint64_t now, const flush_round& round) {
    last_flush_packets_ = round.packets;
    if (terminated_) return;
    // Pace once a full packet's worth has been written since the last paced round. A receiver's
    // usual round is one ACK (every fourth with a PING: ngtcp2 makes every fourth ACK-only packet
    // ack-eliciting); paced one by one, each set ngtcp2's pacing time (part of expiry()) up to a
    // millisecond ahead with nothing to send: a timer re-armed, a wake-up and another re-arm per
    // ACK. ngtcp2 keeps counting the bytes of the rounds left out and charges them to the next
    // paced one, so pacing loses nothing, and the bound keeps that charge to one packet's time.
    if (bytes_sent_ - bytes_paced_ < base_udp_payload) return;
    bytes_paced_ = bytes_sent_;
    ngtcp2_conn_update_pkt_tx_time(native_->conn, now);
}

H3CO_DECL bool session::stream_data_taken(stream_state* raw, std::int64_t stream_id, std::ptrdiff_t datalen, int fin,
                                          const void* vecs, std::ptrdiff_t veccnt) {
    const auto* vec = static_cast<const nghttp3_vec*>(vecs);
    if (datalen >= 0 && stream_id >= 0 && ngtcp2_is_bidi_stream(stream_id) && (datalen > 0 || fin)) {
        stream_state* s = raw ? raw : find_stream(stream_id);
        if (s) {
            std::uint64_t offered = 0;
            for (std::ptrdiff_t i = 0; i < veccnt; ++i) offered += vec[i].len;
            s->fin.on_written(static_cast<std::uint64_t>(datalen), fin != 0, offered);
        }
    }
    if (datalen < 0) return true;
    const auto taken = static_cast<std::size_t>(datalen);
    if (raw) {
        machine_.hand_out(*raw, taken);
        return true;
    }
    return nghttp3_conn_add_write_offset(native_->h3, stream_id, taken) == 0;
}

H3CO_DECL bool session::next_lone_fin(std::int64_t& stream_id) {
    while (!lone_fins_.empty()) {
        if (auto* s = find_stream(lone_fins_.back()); s && !s->quic_closed) {
            stream_id = lone_fins_.back();
            return true;
        }
        lone_fins_.pop_back();
    }
    return false;
}

H3CO_DECL stream_state* session::next_raw_stream() {
    std::erase_if(raw_streams_, [this](std::int64_t id) { return !streams_.contains(id); });
    for (auto id : raw_streams_) {
        auto& s = *streams_.find(id)->second;
        const bool has_fin = s.send == send_state::finishing;
        const bool sending = s.send == send_state::open || has_fin;  // not after SHUT_WR or reset
        if (sending && !s.quic_closed && !s.raw_blocked && (s.submitted < s.send_buf.size() || has_fin)) return &s;
    }
    return nullptr;
}

}  // namespace h3co::detail
