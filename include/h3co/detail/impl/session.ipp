// session (see detail/session.hpp): the connection's life, packets in, timers, streams and
// connection-level operations. Packets out: session_packets.ipp; the stream machine's
// stream_transport: session_transport.ipp; HTTP/3 extensions: session_extensions.ipp.
#pragma once

#include <h3co/detail/h3/callbacks.hpp>
#include <h3co/detail/h3/compat.hpp>
#include <h3co/detail/h3/header_encoding.hpp>
#include <h3co/detail/quic/callbacks.hpp>
#include <h3co/detail/quic/error_mapping.hpp>
#include <h3co/detail/quic/native_session.hpp>
#include <h3co/detail/quic/transport_config.hpp>
#include <h3co/detail/session.hpp>
#include <h3co/detail/impl/session_extensions.ipp>
#include <h3co/detail/impl/session_packets.ipp>
#include <h3co/detail/impl/session_transport.ipp>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace h3co::detail {

namespace session_detail {

inline void check(int rv, const char* what) {
    if (rv != 0)
        throw std::system_error(make_error_code(error::protocol_error), std::string(what) + ": " + ngtcp2_strerror(rv));
}

inline void random_cid(ngtcp2_cid& cid, std::size_t len) {
    cid.datalen = len;
    random_bytes(cid.data, len);
}

/// The server's port (the session_cache authority names it).
inline std::uint16_t remote_port(const network_path& path) noexcept {
    const auto* sa = path.remote_address();
    if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
    if (sa->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
    return 0;
}

}  // namespace session_detail

H3CO_DECL void native_session_delete::operator()(native_session* n) const noexcept { delete n; }

H3CO_DECL session::session(session_role role, const connection_options& options, std::shared_ptr<tls_context> tls)
    : role_(role),
      options_(options),
      native_(new native_session),
      machine_(*this, role == session_role::server, options.max_request_body),
      outbox_(options.udp_gso_segments, options.udp_sendmmsg_messages),
      window_(options.connection_receive_window) {
    native_->tls_ctx = std::move(tls);
    native_->conn_ref.get_conn = [](ngtcp2_crypto_conn_ref* ref) {
        return static_cast<session*>(ref->user_data)->native_->conn;
    };
    native_->conn_ref.user_data = this;
}

H3CO_DECL session::~session() {
    for (auto& [id, stream] : streams_) stream->quic_closed = true;
    for (auto& stream : rejected_streams_) stream->quic_closed = true;
}

// ---- setting up --------------------------------------------------------------------------------------

H3CO_DECL void session::start_client(const network_path& path, std::string_view host, std::uint64_t now) {
    auto& n = *native_;
    now_ = window_.epoch_start = now;
    ngtcp2_cid dcid, scid;
    session_detail::random_cid(dcid, 18);
    session_detail::random_cid(scid, 17);
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    transport_config::fill(options_, true, now, n, &quic_callbacks::qlog_write, settings, params);
    compat::set_qlog_odcid(settings, dcid);  // qlog names a connection by its original destination CID
    params.initial_max_streams_bidi = 0;  // HTTP/3 servers open no bidirectional streams
    // A token from an earlier connection to this server (NEW_TOKEN): no Retry round trip.
    const auto& token = options_.address_token;
    if (!token.empty())
        transport_config::set_token(settings, reinterpret_cast<const std::uint8_t*>(token.data()), token.size());
    const auto callbacks = quic_callbacks::table(true);
    n.tls = std::make_unique<tls_session>(n.tls_ctx, &n.conn_ref);
    const auto early_params =
        n.tls->setup_client(host, session_detail::remote_port(path), options_.session_cache, options_.early_data);
    const auto p = ngtcp2_path_of(path);
    session_detail::check(ngtcp2_conn_client_new(&n.conn, &dcid, &scid, &p, NGTCP2_PROTO_VER_V1, &callbacks,
                                                 &settings, &params, nullptr, this),
                          "ngtcp2_conn_client_new");
    ngtcp2_conn_set_tls_native_handle(n.conn, n.tls->native());
    create_h3();
    if (options_.handshake_timeout.count() > 0)
        confirm_by_ = now + static_cast<std::uint64_t>(options_.handshake_timeout.count()) * NGTCP2_MILLISECONDS;
    if (early_params.empty()) return;
    // 0-RTT: with the server's earlier limits, streams open now; HTTP/3's own streams go first,
    // as nghttp3 needs them bound before any request (ngtcp2's example client does the same).
    if (compat::set_0rtt_params(n.conn, early_params.data(), early_params.size()) != 0) {
        n.tls->disable_early_data();
        return;
    }
    session_detail::check(setup_h3_streams(), "0-RTT: opening the HTTP/3 control streams");
    early_data_attempted_ = true;
    first_flight_at_ = now + 5 * NGTCP2_MILLISECONDS;  // connect() completes now; requests follow at once
}

H3CO_DECL void session::start_server(const network_path& path, std::span<const std::uint8_t> initial,
                                     std::span<const std::uint8_t> scid_bytes, std::span<const std::uint8_t> secret,
                                     const server_admission& admission, std::uint64_t now) {
    auto& n = *native_;
    now_ = window_.epoch_start = now;
    ngtcp2_pkt_hd hd;
    session_detail::check(ngtcp2_accept(&hd, initial.data(), initial.size()), "ngtcp2_accept");
    ngtcp2_cid scid;
    ngtcp2_cid_init(&scid, scid_bytes.data(), scid_bytes.size());
    n.static_secret.assign(secret.begin(), secret.end());
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    transport_config::fill(options_, false, now, n, &quic_callbacks::qlog_write, settings, params);
    compat::set_qlog_odcid(settings, hd.dcid);
    params.initial_max_streams_bidi = options_.max_concurrent_streams;
    compat::set_original_dcid(params, hd.dcid);
    // A validated address (Retry or NEW_TOKEN token): ngtcp2 lifts the 3x amplification limit.
    if (!admission.token.empty()) transport_config::set_token(settings, admission.token.data(), admission.token.size());
    if (!admission.original_dcid.empty()) {  // after a Retry (RFC 9000 §7.3): both IDs, for the client to check
        ngtcp2_cid odcid;
        ngtcp2_cid_init(&odcid, admission.original_dcid.data(), admission.original_dcid.size());
        compat::set_original_dcid(params, odcid);
        params.retry_scid = hd.dcid;
        params.retry_scid_present = 1;
        compat::set_qlog_odcid(settings, odcid);
    }
    params.stateless_reset_token_present = 1;
    session_detail::check(ngtcp2_crypto_generate_stateless_reset_token(
                              params.stateless_reset_token, n.static_secret.data(), n.static_secret.size(), &scid),
                          "generate_stateless_reset_token");
    // server_options::preferred_address: the address, and the connection ID (sequence 1) and
    // reset token the client uses there (RFC 9000 §18.2).
    ngtcp2_cid preferred_cid{};
    if (preferred_len_ > 0) {
        auto& pa = compat::preferred_address(params);
        preferred_cid.datalen = scid.datalen;
        // From the server's ID factory, as every ID it issues: the worker and QUIC-LB routing hold.
        if (cid_maker_)
            cid_maker_(preferred_cid.data, preferred_cid.datalen);
        else
            random_bytes(preferred_cid.data, preferred_cid.datalen);
        pa.cid = preferred_cid;
        if (preferred_.ss_family == AF_INET) {
            std::memcpy(&pa.ipv4, &preferred_, sizeof pa.ipv4);
            pa.ipv4_present = 1;
        } else {
            std::memcpy(&pa.ipv6, &preferred_, sizeof pa.ipv6);
            pa.ipv6_present = 1;
        }
        session_detail::check(ngtcp2_crypto_generate_stateless_reset_token(pa.stateless_reset_token,
                                                                           n.static_secret.data(),
                                                                           n.static_secret.size(), &preferred_cid),
                              "generate_stateless_reset_token");
    }
    const auto callbacks = quic_callbacks::table(false);
    n.tls = std::make_unique<tls_session>(n.tls_ctx, &n.conn_ref);
    // 0-RTT under a ticket is accepted only if the limits it relied on are still ours
    // (server_options::early_data enables it on the context).
    std::array<std::uint8_t, 128> early_context;
    const auto early_len = compat::encode_early_data_context(params, early_context.data(), early_context.size());
    if (early_len < 0) session_detail::check(static_cast<int>(early_len), "encoding the 0-RTT context");
    n.tls->setup_server({early_context.data(), static_cast<std::size_t>(early_len)});
    const auto p = ngtcp2_path_of(path);
    session_detail::check(ngtcp2_conn_server_new(&n.conn, &hd.scid, &scid, &p, hd.version, &callbacks, &settings,
                                                 &params, nullptr, this),
                          "ngtcp2_conn_server_new");
    ngtcp2_conn_set_tls_native_handle(n.conn, n.tls->native());
    create_h3();
    // Datagrams come addressed to the ID the client chose and, from now on, to ours.
    on_connection_id({hd.dcid.data, hd.dcid.datalen}, true);
    on_connection_id({scid.data, scid.datalen}, true);
    if (preferred_cid.datalen > 0) on_connection_id({preferred_cid.data, preferred_cid.datalen}, true);
}

H3CO_DECL void session::create_h3() {
    auto& n = *native_;
    const auto cb = h3_callbacks::table();
    nghttp3_settings settings;
    nghttp3_settings_default(&settings);
    settings.max_field_section_size = options_.max_header_bytes;
    settings.qpack_max_dtable_capacity = 4096;
    settings.qpack_blocked_streams = 100;
    h3_compat::set_h3_datagram(settings, options_.h3_datagrams);  // RFC 9297; nghttp3 1.x only
    settings.enable_connect_protocol = role_ == session_role::server && options_.extended_connect;  // RFC 9220
    const int rv = role_ == session_role::client ? nghttp3_conn_client_new(&n.h3, &cb, &settings, nullptr, this)
                                                 : nghttp3_conn_server_new(&n.h3, &cb, &settings, nullptr, this);
    if (rv != 0) throw std::system_error(make_error_code(error::protocol_error), nghttp3_strerror(rv));
    if (role_ == session_role::server) nghttp3_conn_set_max_client_streams_bidi(n.h3, options_.max_concurrent_streams);
}

H3CO_DECL int session::setup_h3_streams() {
    auto& n = *native_;
    if (h3_streams_ready_) return 0;  // opened already for 0-RTT
    h3_streams_ready_ = true;
    std::int64_t control, qenc, qdec;
    if (ngtcp2_conn_open_uni_stream(n.conn, &control, nullptr) != 0 ||
        ngtcp2_conn_open_uni_stream(n.conn, &qenc, nullptr) != 0 ||
        ngtcp2_conn_open_uni_stream(n.conn, &qdec, nullptr) != 0)
        return -1;
    if (nghttp3_conn_bind_control_stream(n.h3, control) != 0) return -1;
    if (nghttp3_conn_bind_qpack_streams(n.h3, qenc, qdec) != 0) return -1;
    return 0;
}

H3CO_DECL bool session::may_go_early(const request& req) noexcept {
    // RFC 9110 §9.2.1's safe methods that HTTP/3 clients commonly send; CONNECT never goes early.
    return req.early_data || req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS";
}

H3CO_DECL void session::on_early_data_rejected() {
    early_data_rejected_ = true;
    // ngtcp2 forgot every stream (ours and HTTP/3's own) without closing them, and starts stream
    // IDs from 0 again; nghttp3 starts over as well, its streams open again when the handshake
    // completes. Nothing of the 0-RTT reached the server, nothing of it was acknowledged (ngtcp2
    // drops the 0-RTT packets from its retransmission buffer without ACK callbacks, in 0.12 and
    // 1.x alike) and nothing came back (1-RTT keys come later): each request stream still holds
    // every body byte written, and owes no receive credit.
    assert(ledger_.tracked_streams() == 0);
    auto streams = std::move(streams_);
    streams_.clear();
    raw_streams_.clear();
    lone_fins_.clear();
    std::vector<std::shared_ptr<stream_state>> in_order;
    for (auto& [id, s] : streams) in_order.push_back(std::move(s));
    std::sort(in_order.begin(), in_order.end(), [](const auto& a, const auto& b) { return a->id < b->id; });
    const auto rejected = make_error_code(error::early_data_rejected);
    for (auto& s : in_order) {
        // A request goes again if the application has not given up on it and h3co can send it
        // again: its HEADERS are known (or not sent yet, or held for the handshake anyway).
        const bool resendable = ngtcp2_is_bidi_stream(s->id) && !s->raw && !s->quic_closed &&
                                s->send != send_state::reset && s->recv == recv_state::headers &&
                                s->fin.acked == 0 &&
                                (s->send == send_state::idle || s->held_for_handshake || s->early_request);
        if (!resendable) {
            s->held_for_handshake.reset();
            s->early_request.reset();
            machine_.connection_ended(*s, rejected);
            continue;
        }
        s->awaiting_resend = true;
        s->blocked_in_h3 = false;
        rejected_streams_.push_back(std::move(s));
    }
    auto& n = *native_;
    nghttp3_conn_del(n.h3);
    n.h3 = nullptr;
    h3_streams_ready_ = false;
    create_h3();
    keep_alive_update();
}

H3CO_DECL void session::resend_rejected() {
    while (!rejected_streams_.empty() && established_ && !terminated_) {
        auto s = rejected_streams_.front();
        if (s->send == send_state::reset || s->quic_closed) {  // reset by the application meanwhile
            rejected_streams_.pop_front();
            s->awaiting_resend = false;
            s->quic_closed = true;
            s->send_buf.release();
            continue;
        }
        std::int64_t id = -1;
        const int rv = ngtcp2_conn_open_bidi_stream(native_->conn, &id, nullptr);
        if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) return;  // extend_max_local_streams_bidi: serve_openers()
        rejected_streams_.pop_front();
        s->awaiting_resend = false;
        if (rv != 0) {
            s->early_request.reset();
            machine_.connection_ended(*s, make_error_code(error::early_data_rejected));
            continue;
        }
        // The same stream_state under its new ID: the handles and their operations stay on it. The
        // bytes the old stream handed out go again from the start of send_buf.
        s->id = id;
        s->submitted = 0;
        s->bytes_sent = 0;
        s->fin = fin_tracker{};
        s->window.epoch_start = now_;
        streams_.emplace(id, s);
        ngtcp2_conn_set_stream_user_data(native_->conn, id, s.get());
        keep_alive_update();
        std::optional<request> req;
        if (s->held_for_handshake) {
            req = std::move(s->held_for_handshake);
            s->held_for_handshake.reset();
        } else if (s->early_request) {
            req = std::move(s->early_request);
            s->early_request.reset();
            ++early_requests_resent_;
            // The FIN went with the rejected 0-RTT: it goes again after the bytes (read_body).
            if (s->send == send_state::finished) s->send = send_state::finishing;
        }
        if (!req) continue;  // opened early, HEADERS not sent yet: they go whenever the application sends them
        if (auto ec = submit_request_header(*s, *req)) {
            machine_.reset(*s, static_cast<std::uint64_t>(h3_error::internal_error), ec);
            continue;
        }
        resume_sending(*s);
    }
}

H3CO_DECL bool session::submit_held_requests() {
    // A 0-RTT the server accepted: what was sent early stays sent.
    for (auto& [id, s] : streams_) s->early_request.reset();
    resend_rejected();
    for (auto& weak : std::exchange(held_requests_, {})) {
        auto s = weak.lock();
        // Streams still waiting for an ID after a rejected 0-RTT submit theirs in resend_rejected().
        if (!s || !s->held_for_handshake || s->quic_closed || s->awaiting_resend) continue;
        const request req = std::move(*s->held_for_handshake);
        s->held_for_handshake.reset();
        if (s->send == send_state::reset) continue;
        if (auto ec = submit_request_header(*s, req)) {
            machine_.reset(*s, static_cast<std::uint64_t>(h3_error::internal_error), ec);
            continue;
        }
    }
    return true;
}

// ---- packets in -----------------------------------------------------------------------------------

H3CO_DECL void session::read_packet(const network_path& path, const std::uint8_t* data, std::size_t len,
                                    std::uint8_t ecn, std::uint64_t now) {
    if (terminated_) return;
    auto& n = *native_;
    now_ = now;
    ++packets_received_;
    bytes_received_ += len;
    ngtcp2_pkt_info pi{};
    pi.ecn = ecn;
    const auto p = ngtcp2_path_of(path);
    const int rv = ngtcp2_conn_read_pkt(n.conn, &p, &pi, data, len, now);
    if (rv == 0) {
        if (goaway_deferred_ && established_) send_goaway(now);  // the control stream exists now
        return;
    }
    switch (rv) {
    case NGTCP2_ERR_DRAINING:  // the peer closed the connection, or reset it (it lost its state)
        if (stateless_reset_) return terminate(make_error_code(error::stateless_reset));
        return terminate(peer_close_error(n.conn, *n.tls, established_, close_reason_));
    case NGTCP2_ERR_DROP_CONN:
        return terminate(make_error_code(error::connection_closed));
    case NGTCP2_ERR_CRYPTO: {
        std::error_code ec = n.tls->verify_error();
        if (!ec) ec = handshake_error(ngtcp2_conn_get_tls_alert(n.conn));
        compat::ccerr_set_tls_alert(n.ccerr, ngtcp2_conn_get_tls_alert(n.conn));
        return close_with(ec, now);
    }
    default:
        if (!last_error_) last_error_ = make_error_code(error::protocol_error);
        // A callback that failed because the peer broke HTTP/3 has set the H3 code to close with.
        if (!compat::ccerr_is_application(n.ccerr)) compat::ccerr_set_liberr(n.ccerr, rv);
        return close_with(last_error_, now);
    }
}

H3CO_DECL void session::on_timer(std::uint64_t now) {
    if (terminated_) return;
    auto& n = *native_;
    now_ = now;
    if (first_flight_at_ && now >= first_flight_at_) first_flight_at_ = 0;  // no request came: handshake alone
    if (now >= next_timeout_check_) check_request_timeouts(now);
    if (now >= confirm_by_) return terminate(make_error_code(error::handshake_timeout));
    if (now >= final_goaway_at_) {  // send_goaway's wait is over: the GOAWAY that refuses
        final_goaway_at_ = std::numeric_limits<std::uint64_t>::max();
        nghttp3_conn_shutdown(n.h3);
    }
    const int rv = ngtcp2_conn_handle_expiry(n.conn, now);
    if (rv == 0) return;
    if (rv == NGTCP2_ERR_IDLE_CLOSE) return terminate(make_error_code(error::idle_timeout));
    if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) return terminate(make_error_code(error::handshake_timeout));
    compat::ccerr_set_liberr(n.ccerr, rv);
    close_with(make_error_code(error::protocol_error), now);
}

H3CO_DECL std::uint64_t session::expiry() const noexcept {
    if (terminated_ || !native_->conn) return std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t first_flight = first_flight_at_ ? first_flight_at_ : UINT64_MAX;
    return std::min(
        {ngtcp2_conn_get_expiry(native_->conn), next_timeout_check_, final_goaway_at_, first_flight, confirm_by_});
}

// ---- connection-level operations ---------------------------------------------------------------------

H3CO_DECL void session::close(std::uint64_t now, std::uint64_t app_error_code, std::string_view reason) {
    if (terminated_) return;
    if (!established_) return terminate(make_error_code(error::connection_closed));
    if (role_ == session_role::client && !goaway_sent_ && native_->h3) {
        // A client says it is going away too (RFC 9114 §5.2): GOAWAY, in the packets just before the
        // CONNECTION_CLOSE.
        goaway_sent_ = true;
        nghttp3_conn_submit_shutdown_notice(native_->h3);
        flush_round round;
        write_packets(now, round);
        end_flush(now, round);
    }
    compat::ccerr_set_application_error(
        native_->ccerr, app_error_code, reinterpret_cast<const std::uint8_t*>(reason.data()), reason.size());
    close_with(app_error_code == NGHTTP3_H3_NO_ERROR ? make_error_code(error::connection_closed)
                                                     : make_h3_error_code(app_error_code),
               now);
}

H3CO_DECL void session::close_with(std::error_code ec, std::uint64_t now) {
    if (terminated_) return;
    auto& n = *native_;
    close_error_ = ec;
    // The close goes after what is waiting (a client's GOAWAY), or replaces it if there is no room.
    const std::size_t max_len = NGTCP2_MAX_UDP_PAYLOAD_SIZE;
    if (!outbox_.has_room(max_len)) outbox_.clear();
    outbox_.end_run();
    outbox_.reserve(1, max_len);
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi{};
    const auto written =
        ngtcp2_conn_write_connection_close(n.conn, &ps.path, &pi, outbox_.tail(), max_len, &n.ccerr, now);
    if (written > 0)
        outbox_.add(ps.path.remote.addr, static_cast<socklen_t>(ps.path.remote.addrlen),
                    static_cast<std::size_t>(written), pi.ecn, socket_of(ps.path));
    terminate(ec);
}

H3CO_DECL void session::terminate(std::error_code ec) {
    if (terminated_) return;
    terminated_ = true;
    ledger_.connection_ended();
    if (!close_error_) close_error_ = ec;
    fail_everything(close_error_);
    on_terminated(close_error_);
}

H3CO_DECL void session::fail_everything(std::error_code ec) {
    while (!openers_.empty()) {
        auto o = std::move(openers_.front());
        openers_.pop_front();
        o.op.complete(ec, nullptr);
    }
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, s] : streams) machine_.connection_ended(*s, ec);
    for (auto& s : std::exchange(rejected_streams_, {})) {
        s->awaiting_resend = false;
        s->held_for_handshake.reset();
        s->early_request.reset();
        machine_.connection_ended(*s, ec);
    }
    datagrams_.connection_ended(ec);
    for (auto& waiter : std::exchange(settings_waiters_, {})) waiter.complete(ec);
}

H3CO_DECL void session::send_goaway(std::uint64_t now) {
    if (!native_->h3 || terminated_ || goaway_sent_) return;
    if (!established_) {  // no control stream before the handshake completes: read_packet sends it then
        goaway_deferred_ = true;
        return;
    }
    goaway_deferred_ = false;
    goaway_sent_ = true;
    // RFC 9114 §5.2: a GOAWAY that refuses nothing first. Requests the client sent before it saw
    // the notice may still be on the way; the final GOAWAY (the first stream not served, from what
    // has arrived) waits 3 PTO for them, as ngtcp2's example server does.
    nghttp3_conn_submit_shutdown_notice(native_->h3);
    final_goaway_at_ = now + 3 * ngtcp2_conn_get_pto(native_->conn);
    wake_flush();
}

H3CO_DECL std::error_code session::send_priority_update(stream_state& s, std::uint32_t urgency, bool incremental) {
    if (auto ec = stream_unusable(s)) return ec;
    if (role_ != session_role::client || s.send == send_state::idle || s.awaiting_resend || urgency > 7)
        return make_error_code(error::invalid_request);
    if (h3_compat::set_client_priority(native_->h3, s.id, urgency, incremental) != 0)
        return make_error_code(error::invalid_request);
    wake_flush();
    return {};
}

H3CO_DECL std::error_code session::send_raw_uni_stream(std::span<const std::uint8_t> bytes) {
    if (auto ec = unusable()) return ec;
    std::int64_t id = -1;
    const int rv = ngtcp2_conn_open_uni_stream(native_->conn, &id, nullptr);
    if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) return make_error_code(asio::error::would_block);
    if (rv != 0) return make_error_code(error::protocol_error);
    auto s = new_stream(id);
    ngtcp2_conn_set_stream_user_data(native_->conn, id, s.get());
    s->raw = true;
    s->recv = recv_state::eof;  // nothing comes back on our own unidirectional stream
    s->send_buf.set_limit(std::max(bytes.size(), s->send_buf.limit()));
    s->send_buf.write(bytes.data(), bytes.size());
    s->send = send_state::finishing;
    start_raw_stream(*s);
    wake_flush();
    return {};
}

H3CO_DECL void session::open_stream(open_op op, std::shared_ptr<void> key) {
    if (auto ec = unusable()) return op.complete(ec, nullptr);
    if (goaway_received_) return op.complete(make_error_code(error::going_away), nullptr);
    openers_.push_back({std::move(op), std::move(key)});
    serve_openers();
}

H3CO_DECL void session::cancel_open(const void* key) {
    auto it = std::find_if(openers_.begin(), openers_.end(), [key](const opener& o) { return o.key.get() == key; });
    if (it == openers_.end()) return;
    auto op = std::move(it->op);
    openers_.erase(it);
    op.complete(make_error_code(asio::error::operation_aborted), nullptr);
}

H3CO_DECL void session::serve_openers() {
    // The streams of a rejected 0-RTT come first: they were opened first.
    resend_rejected();
    if (!rejected_streams_.empty() && established_) return;
    while (!openers_.empty() && !terminated_) {
        std::int64_t id = -1;
        const int rv = ngtcp2_conn_open_bidi_stream(native_->conn, &id, nullptr);
        if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) return;  // extend_max_local_streams_bidi retries
        auto op = std::move(openers_.front().op);
        openers_.pop_front();
        if (rv != 0) {
            op.complete(make_error_code(error::protocol_error), nullptr);
            continue;
        }
        auto s = new_stream(id);
        ngtcp2_conn_set_stream_user_data(native_->conn, id, s.get());
        op.complete({}, std::move(s));
    }
}

// ---- streams -----------------------------------------------------------------------------------------

H3CO_DECL stream_state* session::find_stream(std::int64_t id) const noexcept {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
}

H3CO_DECL std::shared_ptr<stream_state> session::new_stream(std::int64_t id) {
    auto s = std::make_shared<stream_state>(weak_from_this(), id, options_.stream_send_buffer,
                                            options_.stream_receive_window);
    s->window.epoch_start = now_;
    s->progress_at = now_;  // a request's header timeout runs from here
    if (role_ == session_role::server && (header_timeout_ || body_idle_timeout_) && next_timeout_check_ == UINT64_MAX)
        next_timeout_check_ = now_;  // the first check computes the next one
    streams_.emplace(id, s);
    keep_alive_update();
    return s;
}

H3CO_DECL void session::stream_closed(stream_state& s, std::uint64_t app_error_code) {
    machine_.closed(s, app_error_code);
    datagrams_.stream_ended(s.id, app_error_code == NGHTTP3_H3_NO_ERROR ? make_error_code(error::eof)
                                                                      : make_h3_error_code(app_error_code));
    auto it = streams_.find(s.id);
    if (it == streams_.end()) return;
    auto holder = std::move(it->second);  // may be the last reference: erase first, free after
    streams_.erase(it);
    keep_alive_update();
}

// ---- server limits (issue 13) -----------------------------------------------------------------

H3CO_DECL bool session::waiting_on_client(const stream_state& s) noexcept {
    // The handler reads and nothing is buffered: it waits for body bytes.
    const bool awaiting_body = s.recv == recv_state::body && s.read_op && s.recv_buf.empty() && s.read_filled == 0;
    // Response bytes (or the FIN) wait for the client's ACK or flow-control credit.
    const bool sending =
        s.send == send_state::open || s.send == send_state::finishing || s.send == send_state::finished;
    const bool awaiting_client = sending && (!s.send_buf.empty() || (s.send != send_state::open && !s.fin_acked()));
    return awaiting_body || awaiting_client;
}

H3CO_DECL void session::check_request_timeouts(std::uint64_t now) {
    next_timeout_check_ = UINT64_MAX;
    if (role_ != session_role::server || terminated_ || streams_.empty()) return;
    std::vector<std::shared_ptr<stream_state>> headers_late, body_idle;
    for (const auto& [id, sp] : streams_) {
        auto& s = *sp;
        if (s.quic_closed) continue;
        // Sampled progress: anything that moved since the last check restarts the clock.
        const std::uint64_t mark = s.bytes_received + (s.bytes_sent - s.submitted) + (s.fin_acked() ? 1 : 0) +
                                   static_cast<std::uint64_t>(s.recv);
        if (mark != s.progress_mark) {
            s.progress_mark = mark;
            s.progress_at = now;
        }
        if (s.recv == recv_state::headers) {  // from the stream's first frame, however slowly headers trickle
            if (header_timeout_ && now - s.progress_at >= header_timeout_) headers_late.push_back(sp);
        } else if (!waiting_on_client(s)) {
            s.progress_at = now;  // the clock only runs while the server waits on the client
        } else if (body_idle_timeout_ && now - s.progress_at >= body_idle_timeout_) {
            body_idle.push_back(sp);
        }
    }
    const auto timed_out = make_error_code(error::request_timeout);
    for (auto& sp : headers_late) {  // no handler has run: the client may safely retry
        on_request_timeout();
        machine_.reset(*sp, static_cast<std::uint64_t>(h3_error::request_rejected), timed_out);
    }
    for (auto& sp : body_idle) {
        on_request_timeout();
        machine_.reset(*sp, static_cast<std::uint64_t>(h3_error::request_cancelled), timed_out);
    }
    if (streams_.empty() || terminated_) return;
    // Checks at an eighth of the shorter timeout: a request is reset within 1/8 past its limit.
    std::uint64_t shortest = std::max(header_timeout_, body_idle_timeout_);
    if (header_timeout_) shortest = std::min(shortest, header_timeout_);
    if (body_idle_timeout_) shortest = std::min(shortest, body_idle_timeout_);
    next_timeout_check_ = now + std::clamp<std::uint64_t>(shortest / 8, 10 * NGTCP2_MILLISECONDS, NGTCP2_SECONDS);
}

H3CO_DECL void session::submit_new_token(std::span<const std::uint8_t> token) {
    if (terminated_ || token.empty() || role_ != session_role::server) return;
    if (ngtcp2_conn_submit_new_token(native_->conn, token.data(), token.size()) == 0) wake_flush();
}

H3CO_DECL std::uint64_t session::closing_period() const noexcept {
    // A connection that never sent a packet has no CONNECTION_CLOSE for late packets to overtake:
    // a server connection whose first Initial did not decrypt (ngtcp2's NGTCP2_ERR_DROP_CONN: a damaged
    // copy, or a forgery with the client's connection ID). The client's intact Initial, with the
    // same connection ID, must start a connection at once, not be dropped for 3 PTOs (h3co_sim
    // seed 345).
    if (!native_->conn || packets_sent_ == 0) return 0;
    return 3 * ngtcp2_conn_get_pto(native_->conn);
}

H3CO_DECL void session::keep_alive_update() {
    if (!native_->conn) return;
    const auto interval = options_.keep_alive.count() > 0 ? options_.keep_alive : options_.idle_timeout / 2;
    // 0 turns keep-alive off (UINT64_MAX would overflow ngtcp2 0.12's deadline into a PING storm).
    ngtcp2_conn_set_keep_alive_timeout(
        native_->conn, streams_.empty() ? 0 : static_cast<ngtcp2_duration>(interval.count()) * NGTCP2_MILLISECONDS);
}

H3CO_DECL std::error_code session::unusable() const {
    if (terminated_) return close_error_ ? close_error_ : make_error_code(error::connection_closed);
    return {};
}

// ---- connection migration ------------------------------------------------------------------------------

H3CO_DECL std::error_code session::start_migration(const network_path& path, std::uint64_t now) {
    if (terminated_ || !native_->conn) return close_error_ ? close_error_ : make_error_code(error::connection_closed);
    now_ = now;
    const auto p = ngtcp2_path_of(path);
    // Validate first, move after: the old path keeps carrying data meanwhile (RFC 9000 §9.2).
    const int rv = ngtcp2_conn_initiate_migration(native_->conn, &p, now);
    if (rv == 0) return {};
    if (rv == NGTCP2_ERR_NOMEM) return make_error_code(std::errc::not_enough_memory);
    return make_error_code(error::migration_unavailable);  // INVALID_STATE, CONN_ID_BLOCKED, same address
}

H3CO_DECL void session::set_local_address(const network_path& path) {
    if (terminated_ || !native_->conn) return;
    const auto p = ngtcp2_path_of(path);
    ngtcp2_conn_set_local_addr(native_->conn, &p.local);
}

// ---- statistics ----------------------------------------------------------------------------------------

H3CO_DECL connection_stats session::stats() const {
    connection_stats out;
    out.algorithm = options_.congestion_control;
    out.resumed = native_->tls && native_->tls->resumed();
    if (native_->conn) out.quic_version = ngtcp2_conn_get_negotiated_version(native_->conn);
    if (native_->tls) {
        out.early_data_offered = role_ == session_role::client ? early_data_attempted_ : native_->tls->early_data_offered();
        out.early_data_accepted = established_ && native_->tls->early_data_accepted();
        out.early_requests_resent = early_requests_resent_;
    }
    out.packets_sent = packets_sent_;
    out.packets_received = packets_received_;
    out.bytes_sent = bytes_sent_;
    out.bytes_received = bytes_received_;
    out.connection_receive_window = window_.size;
    out.stream_receive_window = std::max<std::uint64_t>(largest_stream_window_, options_.stream_receive_window);
    out.credit_delivered = ledger_.delivered_total();
    out.credit_extended = ledger_.extended_total();
    out.credit_held = ledger_.held();
    out.credit_released_at_end = ledger_.released_at_end();
    out.key_updates_initiated = key_updates_initiated_;
    out.key_generations_derived = key_generations_derived_;
    out.paths_validated = paths_validated_;
    out.path_validations_failed = path_validations_failed_;
    out.stream_send_buffer = options_.stream_send_buffer;
    for (const auto& [id, s] : streams_) out.stream_send_buffer = std::max<std::uint64_t>(out.stream_send_buffer, s->send_buf.limit());
    auto* conn = native_->conn;
    if (!conn || terminated_) return out;
    const auto cs = compat::path_numbers_of(conn);  // ngtcp2_conn_stat (0.12) or ngtcp2_conn_info (1.x)
    out.smoothed_rtt = std::chrono::nanoseconds(cs.smoothed_rtt);
    out.min_rtt = std::chrono::nanoseconds(cs.min_rtt);
    out.latest_rtt = std::chrono::nanoseconds(cs.latest_rtt);
    out.rtt_variance = std::chrono::nanoseconds(cs.rttvar);
    out.congestion_window = cs.cwnd;
    out.slow_start_threshold = cs.ssthresh;
    out.bytes_in_flight = cs.bytes_in_flight;
    out.delivery_rate = cs.delivery_rate;
    out.max_udp_payload = ngtcp2_conn_get_path_max_tx_udp_payload_size(conn);
    if (mtu_clamped_) out.max_udp_payload = std::min<std::uint64_t>(out.max_udp_payload, base_udp_payload);
    out.packets_lost = lost_in_closed_streams_;
    for (const auto& [id, s] : streams_) out.packets_lost += ngtcp2_conn_get_stream_loss_count(conn, id);
    out.connection_send_credit = ngtcp2_conn_get_max_data_left(conn);
    out.datagrams_sent = datagrams_.sent();
    out.datagrams_received = datagrams_.received();
    out.datagrams_dropped = datagrams_.dropped();
    return out;
}

}  // namespace h3co::detail
