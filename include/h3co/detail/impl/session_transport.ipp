// session as the stream machine's stream_transport (see detail/stream_machine.hpp): headers
// submitted to nghttp3, stream shutdowns, credit returned and send-buffer limits. Included by
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
#include <cassert>
#include <array>
#include <limits>
#include <utility>

namespace h3co::detail {

// ---- stream_transport ------------------------------------------------------------------------------

H3CO_DECL std::error_code session::stream_unusable(const stream_state& s) const {
    if (auto ec = unusable()) return ec;
    if (s.quic_closed) return make_error_code(error::connection_closed);
    return {};
}

H3CO_DECL std::error_code session::submit_request_header(stream_state& s, const request& req) {
    header_encoding::name_storage storage;
    auto nva = header_encoding::request(req, default_authority_, storage);
    if (!nva) return make_error_code(error::invalid_request);
    // RFC 9220 §3: :protocol only after the server's SETTINGS_ENABLE_CONNECT_PROTOCOL.
    if (!req.protocol.empty() && !peer_settings_.enable_connect_protocol()) return make_error_code(error::not_negotiated);
    first_flight_at_ = 0;  // 0-RTT: the first flight goes now, with this request if it may go early
    // 0-RTT can be replayed: an unsafe request waits for the handshake (its body in send_buf). So
    // does every request once the server refused the 0-RTT, and one whose stream awaits a new ID.
    if (role_ == session_role::client && !established_ && (!may_go_early(req) || !early_data_pending())) {
        s.held_for_handshake = req;
        held_requests_.push_back(s.weak_from_this());
        return {};
    }
    if (s.awaiting_resend) {  // after the handshake, until the peer's stream limit lets it have an ID
        s.held_for_handshake = req;
        return {};
    }
    nghttp3_data_reader reader{&h3_callbacks::read_body};
    if (nghttp3_conn_submit_request(native_->h3, s.id, nva->data(), nva->size(), &reader, &s) != 0)
        return make_error_code(error::invalid_request);
    if (role_ == session_role::client && !established_) s.early_request = req;  // to resend if 0-RTT is refused
    keep_alive_update();
    return {};
}

H3CO_DECL std::error_code session::submit_raw_request_header(stream_state& s, const fields& raw) {
    if (s.awaiting_resend) return make_error_code(error::early_data_rejected);
    auto nva = header_encoding::raw(raw);
    nghttp3_data_reader reader{&h3_callbacks::read_body};
    if (nghttp3_conn_submit_request(native_->h3, s.id, nva.data(), nva.size(), &reader, &s) != 0)
        return make_error_code(error::invalid_request);
    return {};
}

H3CO_DECL std::error_code session::submit_response_header(stream_state& s, int status, const fields& headers,
                                                          bool body) {
    header_encoding::name_storage storage;
    auto nva = header_encoding::response(status, headers, storage);
    if (!nva) return make_error_code(error::invalid_request);
    nghttp3_data_reader reader{&h3_callbacks::read_body};
    if (nghttp3_conn_submit_response(native_->h3, s.id, nva->data(), nva->size(), body ? &reader : nullptr) != 0)
        return make_error_code(error::invalid_request);
    return {};
}

H3CO_DECL std::error_code session::submit_interim_header(stream_state& s, int status, const fields& headers) {
    header_encoding::name_storage storage;
    auto nva = header_encoding::response(status, headers, storage);
    if (!nva) return make_error_code(error::invalid_request);
    if (nghttp3_conn_submit_info(native_->h3, s.id, nva->data(), nva->size()) != 0)
        return make_error_code(error::invalid_request);
    return {};
}

H3CO_DECL void session::start_raw_stream(stream_state& s) {
    raw_streams_.push_back(s.id);
    keep_alive_update();
}

H3CO_DECL void session::resume_sending(stream_state& s) {
    if (s.awaiting_resend) return;  // its bytes go once it has a stream again (resend_rejected)
    if (s.blocked_in_h3 && native_->h3 && !s.quic_closed) {
        s.blocked_in_h3 = false;
        nghttp3_conn_resume_stream(native_->h3, s.id);
    }
    wake_flush();
}

H3CO_DECL void session::return_credit(stream_state& s, std::size_t read) {
    if (s.awaiting_resend) return;  // nothing was received on it; its old ID may be another stream's now
    const std::uint64_t n = ledger_.extend(s.id, read, true);
    if (n == 0 || terminated_) return;
    auto* conn = native_->conn;
    const std::uint64_t srtt = smoothed_rtt();
    std::uint64_t conn_credit = window_.on_read(n, now_, srtt, options_.max_connection_receive_window);
    if (!s.quic_closed) {
        const std::uint64_t before = s.window.size;
        ngtcp2_conn_extend_max_stream_offset(conn, s.id, s.window.on_read(n, now_, srtt, options_.max_stream_receive_window));
        if (s.window.size != before) {
            s.recv_buf.set_max_capacity(s.window.size);
            largest_stream_window_ = std::max(largest_stream_window_, s.window.size);
            // The connection's window keeps room for its fastest stream and a half (as quic-go does).
            conn_credit += window_.grow_to(
                std::min<std::uint64_t>(s.window.size + s.window.size / 2, options_.max_connection_receive_window));
        }
    }
    ngtcp2_conn_extend_max_offset(conn, conn_credit);
    wake_flush();
}

H3CO_DECL void session::release_credit(stream_state& s) {
    if (!s.awaiting_resend) release_credit(s.id);  // else it owes nothing, and its old ID may be reused
}

H3CO_DECL void session::release_credit(std::int64_t stream_id) {
    const auto* s = find_stream(stream_id);
    extend_windows(stream_id, s && !s->quic_closed, ledger_.release(stream_id));
}

H3CO_DECL void session::credit(std::int64_t stream_id, std::size_t n) {
    const auto* s = find_stream(stream_id);
    extend_windows(stream_id, !s || !s->quic_closed, ledger_.extend(stream_id, n, false));
}

H3CO_DECL void session::extend_windows(std::int64_t stream_id, bool stream_open, std::uint64_t n) {
    if (n == 0 || terminated_) return;
    if (stream_open) ngtcp2_conn_extend_max_stream_offset(native_->conn, stream_id, n);
    ngtcp2_conn_extend_max_offset(native_->conn, n);
    wake_flush();
}

H3CO_DECL void session::credit_stream_closed(std::int64_t stream_id, const stream_state* s) {
    // nghttp3 has closed the stream too (and handed back what it held): only the receive buffer,
    // waiting for the application, may still owe credit. A stream nobody can read owes nothing.
    // Except a stream nghttp3 still holds QPACK-blocked (quic_callbacks::stream_close; ours is
    // then still open): its held bytes come back through deferred_consume and the reads.
    if (!s) release_credit(stream_id);
    assert(s && !s->quic_closed ? ledger_.owed(stream_id) >= s->recv_buf.size()
                                : ledger_.owed(stream_id) == (s ? s->recv_buf.size() : 0));
    ledger_.closed(stream_id);
}

H3CO_DECL std::size_t session::send_buffer_limit(const stream_state& s) const {
    const std::size_t initial = options_.stream_send_buffer;
    const std::size_t max = std::max(initial, options_.max_stream_send_buffer);
    if (max == initial || terminated_ || !native_->conn || s.quic_closed || s.awaiting_resend) return initial;
    auto* conn = native_->conn;
    // Beyond its initial size, a stream holds what can leave now (the bytes in flight and the peer's
    // flow-control credit, never more than twice the congestion window) and its initial size again
    // queued behind it. A slow reader's small credit keeps it small; a fast path lets it grow.
    const auto cs = compat::path_numbers_of(conn);
    const std::uint64_t credit =
        std::min(ngtcp2_conn_get_max_stream_data_left(conn, s.id), ngtcp2_conn_get_max_data_left(conn));
    const std::uint64_t want = std::min<std::uint64_t>(2 * cs.cwnd, s.submitted + credit);
    // Growth beyond the initial size comes from the connection's budget, shared by its streams.
    std::uint64_t budget = options_.max_connection_send_buffer;
    for (const auto& [id, other] : streams_) {
        if (other.get() == &s || other->send_buf.size() <= initial) continue;
        const std::uint64_t used = other->send_buf.size() - initial;
        budget = budget > used ? budget - used : 0;
    }
    return initial + static_cast<std::size_t>(std::min<std::uint64_t>({max - initial, budget, want}));
}

H3CO_DECL std::uint64_t session::smoothed_rtt() const noexcept {
    if (!native_->conn) return 0;
    return compat::path_numbers_of(native_->conn).smoothed_rtt;
}

H3CO_DECL void session::shutdown_stream(stream_state& s, std::uint64_t app_error_code, bool send, bool recv) {
    if (s.quic_closed || terminated_ || (!send && !recv)) return;
    if (s.awaiting_resend) return;  // never reached the server: resend_rejected() drops it
    auto& n = *native_;
    if (send && recv)
        compat::shutdown_stream(n.conn, s.id, app_error_code);
    else if (send)
        compat::shutdown_stream_write(n.conn, s.id, app_error_code);
    else
        compat::shutdown_stream_read(n.conn, s.id, app_error_code);
    if (!s.raw) nghttp3_conn_shutdown_stream_read(n.h3, s.id);
    wake_flush();
}

}  // namespace h3co::detail
