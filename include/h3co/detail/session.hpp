// The HTTP/3 engine for one connection: an ngtcp2_conn and an nghttp3_conn glued together.
//
// Sans-I/O: it never touches a socket or a timer. Packets come in through read_packet(), the I/O
// layer (detail/connection_io.hpp) calls flush() to get packets out through transmit(), and arms its
// timer from expiry(). All calls happen on the connection's executor; ngtcp2 and nghttp3 call back
// into it synchronously, so user handlers are never run from here (pending_op posts them).
#pragma once

#include <h3co/detail/async_support.hpp>
#include <h3co/detail/stream_state.hpp>
#include <h3co/detail/tls_context.hpp>
#include <h3co/detail/udp_send.hpp>
#include <h3co/error.hpp>
#include <h3co/message.hpp>
#include <h3co/options.hpp>

#include <asio/error.hpp>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace h3co::detail {

enum class session_role { client, server };

/// Where a packet goes or came from, in ngtcp2's terms; holds its own address storage.
struct packet_path {
    ngtcp2_path_storage storage;
    packet_path() { ngtcp2_path_storage_zero(&storage); }
    packet_path(const sockaddr* local, socklen_t local_len, const sockaddr* remote, socklen_t remote_len) {
        ngtcp2_path_storage_init(&storage, local, local_len, remote, remote_len, nullptr);
    }
    explicit packet_path(const ngtcp2_path& p) { assign(p); }
    // ngtcp2_path points into its own storage: copies must re-point, never copy the pointers.
    packet_path(const packet_path& other) { assign(other.storage.path); }
    packet_path& operator=(const packet_path& other) {
        if (this != &other) assign(other.storage.path);
        return *this;
    }
    const ngtcp2_path* get() const noexcept { return &storage.path; }

private:
    void assign(const ngtcp2_path& p) {
        ngtcp2_path_storage_init(&storage, p.local.addr, p.local.addrlen, p.remote.addr, p.remote.addrlen, p.user_data);
    }
};

class session : public std::enable_shared_from_this<session> {
public:
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    virtual ~session() {
        for (auto& [id, stream] : streams_) stream->quic_closed = true;
        if (h3_) nghttp3_conn_del(h3_);
        if (conn_) ngtcp2_conn_del(conn_);
    }

    session_role role() const noexcept { return role_; }
    bool established() const noexcept { return established_; }
    bool terminated() const noexcept { return terminated_; }
    std::error_code close_error() const noexcept { return close_error_; }
    const std::string& close_reason() const noexcept { return close_reason_; }
    bool going_away() const noexcept { return goaway_received_; }
    std::size_t open_stream_count() const noexcept { return streams_.size(); }

    // ---- driven by the I/O layer -------------------------------------------------------------

    /// Feeds one received datagram. Afterwards the caller flushes.
    void read_packet(const ngtcp2_path* path, const std::uint8_t* data, std::size_t len, std::uint8_t ecn) {
        if (terminated_ || closing_) return;
        ngtcp2_pkt_info pi{};
        pi.ecn = ecn;
        const int rv = ngtcp2_conn_read_pkt(conn_, path, &pi, data, len, steady_now_ns());
        if (rv == 0) return;
        switch (rv) {
        case NGTCP2_ERR_DRAINING:  // the peer closed the connection
            return terminate(peer_close_error());
        case NGTCP2_ERR_DROP_CONN:
            return terminate(make_error_code(error::connection_closed));
        case NGTCP2_ERR_CRYPTO: {
            std::error_code ec = tls_->verify_error();
            if (!ec) ec = handshake_error(ngtcp2_conn_get_tls_alert(conn_));
            ngtcp2_connection_close_error_set_transport_error_tls_alert(&local_ccerr_, ngtcp2_conn_get_tls_alert(conn_),
                                                                        nullptr, 0);
            return close_with(ec);
        }
        default:
            if (!last_error_) last_error_ = make_error_code(error::protocol_error);
            // A callback that failed because the peer broke HTTP/3 has set the H3 code to close with.
            if (local_ccerr_.type != NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION)
                ngtcp2_connection_close_error_set_transport_error_liberr(&local_ccerr_, rv, nullptr, 0);
            return close_with(last_error_);
        }
    }

    /// The timer fired.
    void on_timer() {
        if (terminated_) return;
        if (closing_) return terminate(close_error_);
        const int rv = ngtcp2_conn_handle_expiry(conn_, steady_now_ns());
        if (rv == 0) return;
        if (rv == NGTCP2_ERR_IDLE_CLOSE) return terminate(make_error_code(error::idle_timeout));
        if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) return terminate(make_error_code(error::handshake_timeout));
        ngtcp2_connection_close_error_set_transport_error_liberr(&local_ccerr_, rv, nullptr, 0);
        close_with(make_error_code(error::protocol_error));
    }

    /// Packets the last complete flush() wrote.
    std::size_t last_flush_packets() const noexcept { return last_flush_packets_; }

    /// When the timer must fire next, in steady-clock nanoseconds (UINT64_MAX: never).
    std::uint64_t expiry() const noexcept {
        if (terminated_ || !conn_) return std::numeric_limits<std::uint64_t>::max();
        if (closing_) return closing_deadline_;
        return ngtcp2_conn_get_expiry(conn_);
    }

    /// Writes every packet that is ready, up to `max_packets` (pacing: the rest waits for the timer),
    /// into the outbox, where packets of one size to one peer form one GSO run. What was left from
    /// before goes first. The outbox goes to transmit() whenever it holds a send's worth (a full GSO
    /// run, or udp_sendmmsg_messages packets without GSO), so that the peer can start on it while
    /// more are written, and at the end; false means the socket is full: call again when it is
    /// writable. With `keep_tail`, what is left at the end stays in the outbox for a caller that
    /// sends several connections' packets at once (see outbox()).
    bool flush(std::size_t max_packets = 64, bool keep_tail = false) {
        if (terminated_ || closing_) return true;
        if (!submit_outbox()) return false;  // from here on the outbox is empty and the buffer free
        const std::size_t max_len = ngtcp2_conn_get_max_tx_udp_payload_size(conn_);
        if (!batch_ || batch_capacity_ < max_packets * max_len) {
            batch_capacity_ = max_packets * max_len;
            batch_ = std::make_unique_for_overwrite<std::uint8_t[]>(batch_capacity_);  // once: no allocation per packet
            outbox_.reserve(max_packets);
        }
        packet_path path;
        std::size_t packets = 0;
        bool run_open = false;  // the outbox's last run may take more packets
        const auto ts = steady_now_ns();
        while (packets < max_packets && batch_used_ + max_len <= batch_capacity_) {
            std::int64_t stream_id = -1;
            int fin = 0;
            std::array<nghttp3_vec, 16> vec{};
            nghttp3_ssize veccnt = 0;
            const bool window = ngtcp2_conn_get_max_data_left(conn_) > 0;
            stream_state* raw = raw_streams_.empty() || !window ? nullptr : next_raw_stream();
            const bool lone_fin = !raw && next_lone_fin(stream_id);
            if (lone_fin) {
                fin = 1;
            } else if (raw) {
                stream_id = raw->id;
                veccnt = raw_vectors(*raw, vec, fin);
            } else if (h3_ && window) {
                veccnt = nghttp3_conn_writev_stream(h3_, &stream_id, &fin, vec.data(), vec.size());
                if (veccnt < 0) {
                    ngtcp2_connection_close_error_set_application_error(
                        &local_ccerr_, nghttp3_err_infer_quic_app_error_code(static_cast<int>(veccnt)), nullptr, 0);
                    close_with(make_error_code(error::protocol_error));
                    return true;
                }
            }
            ngtcp2_ssize datalen = -1;
            std::uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
            if (fin) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
            ngtcp2_pkt_info pi{};
            std::uint8_t* out = batch_.get() + batch_used_;
            const auto nwrite = ngtcp2_conn_writev_stream(conn_, &path.storage.path, &pi, out, max_len, &datalen, flags,
                                                          stream_id, reinterpret_cast<const ngtcp2_vec*>(vec.data()),
                                                          static_cast<std::size_t>(veccnt), ts);
            if (nwrite < 0) {
                if (lone_fin) lone_fins_.pop_back();  // taken (WRITE_MORE), or the stream is shut
                switch (nwrite) {
                case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                    if (raw)
                        raw->raw_blocked = true;
                    else
                        nghttp3_conn_block_stream(h3_, stream_id);
                    continue;
                case NGTCP2_ERR_STREAM_SHUT_WR:  // the peer sent STOP_SENDING: no more bytes will be taken
                    if (!raw) nghttp3_conn_shutdown_stream_write(h3_, stream_id);
                    if (auto it = streams_.find(stream_id); it != streams_.end()) {
                        auto st = it->second;
                        if (st->send != send_state::reset && st->send != send_state::finished) {
                            fail_send(*st, make_error_code(error::stream_stopped));
                            serve_write(*st);
                            serve_finish(*st);
                        }
                    }
                    continue;
                case NGTCP2_ERR_WRITE_MORE:
                    if (!stream_data_taken(raw, stream_id, datalen, fin, vec, veccnt)) {
                        close_with(make_error_code(error::protocol_error));
                        return true;
                    }
                    continue;
                default:
                    ngtcp2_connection_close_error_set_transport_error_liberr(&local_ccerr_, static_cast<int>(nwrite),
                                                                            nullptr, 0);
                    close_with(make_error_code(error::protocol_error));
                    return true;
                }
            }
            if (!stream_data_taken(raw, stream_id, datalen, fin, vec, veccnt)) {
                close_with(make_error_code(error::protocol_error));
                return true;
            }
            if (lone_fin && datalen >= 0) lone_fins_.pop_back();
            // nghttp3 0.8 forgets a request stream once it has handed out everything, even when
            // QUIC did not take it (congestion or pacing): a FIN with no data left must then be
            // written without nghttp3, or it would never leave.
            if (!raw && !lone_fin && fin && veccnt == 0 && datalen < 0 && ngtcp2_is_bidi_stream(stream_id))
                lone_fins_.push_back(stream_id);
            if (nwrite == 0) break;
            add_to_outbox(*path.get(), out, static_cast<std::size_t>(nwrite), pi.ecn, run_open);
            ++packets;
            if (outbox_packets_ >= send_threshold()) {
                run_open = false;  // what follows starts a new run, in a buffer that may start over
                if (!submit_outbox()) {
                    last_flush_packets_ = packets;
                    ngtcp2_conn_update_pkt_tx_time(conn_, ts);
                    return false;
                }
            }
        }
        last_flush_packets_ = packets;
        ngtcp2_conn_update_pkt_tx_time(conn_, ts);
        return keep_tail || submit_outbox();
    }

    /// Packets flush() wrote that the socket has yet to take, in order (for a caller that sends
    /// several connections' packets at once; see flush's `keep_tail`).
    std::span<datagram_run> outbox() noexcept { return outbox_; }

    /// The first `done` runs of the outbox were sent, and `next`, when given, is what is left of
    /// the run after them.
    void outbox_sent(std::size_t done, const datagram_run* next) {
        outbox_.erase(outbox_.begin(), outbox_.begin() + static_cast<std::ptrdiff_t>(done));
        if (next && !outbox_.empty()) {
            outbox_.front().data = next->data;
            outbox_.front().len = next->len;
        }
        if (outbox_.empty()) {  // the buffer starts over: what is written next is still in cache
            outbox_packets_ = 0;
            batch_used_ = 0;
        }
    }

    /// ngtcp2 took `datalen` bytes (-1: none) of `stream_id`: tell whoever supplied them, nghttp3 or
    /// a raw stream (whose FIN goes too once everything is out). False on a fatal nghttp3 error.
    bool stream_data_taken(stream_state* raw, std::int64_t stream_id, ngtcp2_ssize datalen, int fin,
                           const std::array<nghttp3_vec, 16>& vec, nghttp3_ssize veccnt) {
        note_written(raw, stream_id, datalen, fin, vec, veccnt);
        if (datalen < 0) return true;
        const auto n = static_cast<std::size_t>(datalen);
        if (raw) {
            hand_out(*raw, n);
            return true;
        }
        return nghttp3_conn_add_write_offset(h3_, stream_id, n) == 0;
    }

    /// Counts the bytes a request stream handed to QUIC (HTTP/3 framing included) and where its FIN
    /// went, so that finish() can wait for the FIN's acknowledgement (see quic_acked).
    void note_written(stream_state* s, std::int64_t stream_id, ngtcp2_ssize datalen, int fin,
                      const std::array<nghttp3_vec, 16>& vec, nghttp3_ssize veccnt) {
        if (datalen < 0 || stream_id < 0 || !ngtcp2_is_bidi_stream(stream_id) || (datalen == 0 && !fin)) return;
        if (!s) {
            auto it = streams_.find(stream_id);
            if (it == streams_.end()) return;
            s = it->second.get();
        }
        s->quic_sent += static_cast<std::uint64_t>(datalen);
        if (!fin || s->fin_offset != stream_state::no_fin) return;
        std::size_t offered = 0;
        for (nghttp3_ssize i = 0; i < veccnt; ++i) offered += vec[static_cast<std::size_t>(i)].len;
        if (static_cast<std::size_t>(datalen) != offered) return;  // ngtcp2 took only part: no FIN yet
        s->fin_offset = s->quic_sent;
        s->fin_alone = datalen == 0 && s->quic_acked == s->quic_sent;
    }

    /// ngtcp2 reports each acknowledged STREAM frame as the growth of the acknowledged prefix
    /// [0, offset + datalen), and calls with datalen 0 only for a frame that carries the FIN. When
    /// the FIN went alone after everything else was acknowledged, nothing can merge it into a data
    /// frame, so only that call confirms it. Otherwise ngtcp2 may merge a lost FIN into a lost data
    /// frame's retransmission, and the prefix reaching the FIN is taken as confirmation.
    void quic_acked(stream_state& s, std::uint64_t offset, std::uint64_t datalen) {
        s.quic_acked = offset + datalen;
        if (datalen == 0 && s.fin_offset != stream_state::no_fin) s.fin_frame_acked = true;
    }

    /// Closes the connection with an application error code (H3_NO_ERROR for a clean close).
    void close(std::uint64_t app_error_code = NGHTTP3_H3_NO_ERROR, std::string_view reason = {}) {
        if (terminated_ || closing_) return;
        if (!established_) return terminate(make_error_code(error::connection_closed));
        ngtcp2_connection_close_error_set_application_error(
            &local_ccerr_, app_error_code, reinterpret_cast<const std::uint8_t*>(reason.data()), reason.size());
        close_with(app_error_code == NGHTTP3_H3_NO_ERROR ? make_error_code(error::connection_closed)
                                                         : make_h3_error_code(app_error_code));
    }

    /// Server: GOAWAY, so the client opens no new requests; existing ones go on.
    void send_goaway() {
        if (!h3_ || terminated_ || closing_ || goaway_sent_) return;
        goaway_sent_ = true;
        nghttp3_conn_submit_shutdown_notice(h3_);
        nghttp3_conn_shutdown(h3_);
        wake_flush();
    }

    // ---- stream operations (called by the public stream types) -----------------------------

    /// Client: allocates a request stream, or queues `op` until the peer grants stream credit.
    using open_op = pending_op<std::error_code, std::shared_ptr<stream_state>>;
    void open_stream(open_op op) {
        if (auto ec = unusable()) return op.complete(ec, nullptr);
        if (goaway_received_) return op.complete(make_error_code(error::going_away), nullptr);
        openers_.push_back(std::move(op));
        serve_openers();
    }

    void submit_request(stream_state& s, const request& req, pending_op<std::error_code> op) {
        if (s.send != send_state::idle) return op.complete(make_error_code(error::already_open));
        if (auto ec = stream_unusable(s)) return op.complete(ec);
        std::vector<std::string> storage;
        auto nva = make_request_headers(req, storage);
        if (!nva) return op.complete(make_error_code(error::invalid_request));
        nghttp3_data_reader reader{&read_body};
        const int rv = nghttp3_conn_submit_request(h3_, s.id, nva->data(), nva->size(), &reader, &s);
        if (rv != 0) return op.complete(make_error_code(error::invalid_request));
        s.send = send_state::open;
        s.send_buf.reserve();
        keep_alive_update();
        wake_flush();
        op.complete({});
    }

    /// Sends exactly `raw` as the request's header block, unchecked: pseudo-headers, case and
    /// characters as given. For testing how servers treat malformed requests.
    void submit_raw_request(stream_state& s, const fields& raw, pending_op<std::error_code> op) {
        if (s.send != send_state::idle) return op.complete(make_error_code(error::already_open));
        if (auto ec = stream_unusable(s)) return op.complete(ec);
        std::vector<nghttp3_nv> nva;
        for (const auto& f : raw) nva.push_back(make_nv(f.name, f.value));
        nghttp3_data_reader reader{&read_body};
        if (nghttp3_conn_submit_request(h3_, s.id, nva.data(), nva.size(), &reader, &s) != 0)
            return op.complete(make_error_code(error::invalid_request));
        s.send = send_state::open;
        s.send_buf.reserve();
        wake_flush();
        op.complete({});
    }

    /// Takes the stream out of HTTP/3: from now on write() and finish() put bytes on the QUIC stream
    /// as they are, and reads return the peer's bytes unparsed. For testing how peers treat frames
    /// nghttp3 would never send (DATA before HEADERS, unknown or HTTP/2-only frame types).
    void start_raw(stream_state& s, pending_op<std::error_code> op) {
        if (s.send != send_state::idle) return op.complete(make_error_code(error::already_open));
        if (auto ec = stream_unusable(s)) return op.complete(ec);
        s.raw = true;
        s.send = send_state::open;
        s.recv = recv_state::body;
        s.send_buf.reserve();
        raw_streams_.push_back(s.id);
        keep_alive_update();
        op.complete({});
    }

    void submit_response(stream_state& s, int status, const fields& headers, pending_op<std::error_code> op) {
        if (s.send != send_state::idle) return op.complete(make_error_code(error::already_open));
        if (auto ec = stream_unusable(s)) return op.complete(ec);
        if (status < 100 || status > 999) return op.complete(make_error_code(error::invalid_request));
        std::vector<std::string> storage;
        storage.reserve(1 + 2 * headers.size());
        storage.push_back(std::to_string(status));
        std::vector<nghttp3_nv> nva;
        nva.push_back(make_nv(":status", storage.back()));
        if (!append_fields(headers, nva, storage)) return op.complete(make_error_code(error::invalid_request));
        nghttp3_data_reader reader{&read_body};
        if (nghttp3_conn_submit_response(h3_, s.id, nva.data(), nva.size(), &reader) != 0)
            return op.complete(make_error_code(error::invalid_request));
        s.send = send_state::open;
        s.send_buf.reserve();
        wake_flush();
        op.complete({});
    }

    void read_response(stream_state& s, pending_op<std::error_code, response_head> op) {
        if (s.response_op) return op.complete(make_error_code(error::operation_in_progress), {});
        s.response_op = std::move(op);
        serve_response(s);
    }

    template <class MutableBufferSequence>
    void read(stream_state& s, const MutableBufferSequence& buffers, stream_state::io_op op) {
        if (s.read_op) return op.complete(make_error_code(error::operation_in_progress), 0);
        s.read_buffers.assign(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
        s.read_op = std::move(op);
        serve_read(s);
    }

    template <class ConstBufferSequence>
    void write(stream_state& s, const ConstBufferSequence& buffers, bool all, stream_state::io_op op) {
        if (s.write_op) return op.complete(make_error_code(error::operation_in_progress), 0);
        if (s.send != send_state::open) return op.complete(send_error(s), 0);
        s.write_buffers.assign(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
        s.write_progress = 0;
        s.write_all = all;
        s.write_op = std::move(op);
        serve_write(s);
    }

    /// Ends the body: FIN after the buffered bytes. Completes when the peer has acknowledged them all
    /// and the FIN.
    void finish(stream_state& s, pending_op<std::error_code> op) {
        if (s.finish_op) return op.complete(make_error_code(error::operation_in_progress));
        if (s.send == send_state::idle || s.send == send_state::reset) return op.complete(send_error(s));
        if (s.send == send_state::open) {
            if (s.write_op) return op.complete(make_error_code(error::operation_in_progress));
            s.send = send_state::finishing;
            resume(s);
        }
        s.finish_op = std::move(op);
        serve_finish(s);
    }

    /// Aborts both directions with `app_error_code` (RESET_STREAM + STOP_SENDING); pending operations
    /// complete with `reason`.
    void reset(stream_state& s, std::uint64_t app_error_code, std::error_code reason) {
        const bool send_open = s.send != send_state::reset && s.send != send_state::finished;
        const bool recv_open = s.recv != recv_state::reset && s.recv != recv_state::eof;
        if (!s.quic_closed && conn_ && !terminated_ && !closing_) {
            if (send_open && recv_open)
                ngtcp2_conn_shutdown_stream(conn_, s.id, app_error_code);
            else if (send_open)
                ngtcp2_conn_shutdown_stream_write(conn_, s.id, app_error_code);
            else if (recv_open)
                ngtcp2_conn_shutdown_stream_read(conn_, s.id, app_error_code);
            if (h3_ && !s.raw && (send_open || recv_open)) nghttp3_conn_shutdown_stream_read(h3_, s.id);
            wake_flush();
        }
        if (send_open) fail_send(s, reason);
        if (recv_open) fail_recv(s, reason);
        fail_send_ops(s, reason);
        fail_recv_ops(s, reason);
    }

    /// Stops reading (STOP_SENDING with `app_error_code`): a server that has its answer and does not
    /// need the rest of the body. Unread bytes are dropped and their credit returned.
    void stop_reading(stream_state& s, std::uint64_t app_error_code) {
        if (s.recv == recv_state::eof || s.recv == recv_state::reset) return;
        if (!s.quic_closed && !terminated_ && !closing_) {
            ngtcp2_conn_shutdown_stream_read(conn_, s.id, app_error_code);
            if (h3_ && !s.raw) nghttp3_conn_shutdown_stream_read(h3_, s.id);
            wake_flush();
        }
        discard_received(s);
        fail_recv(s, make_error_code(error::eof));
    }

    void cancel_stream(stream_state& s) {
        reset(s, NGHTTP3_H3_REQUEST_CANCELLED, make_error_code(asio::error::operation_aborted));
    }

protected:
    session(session_role role, const connection_options& options, std::shared_ptr<tls_context> tls)
        : role_(role), options_(options), tls_ctx_(std::move(tls)) {
        ngtcp2_connection_close_error_default(&local_ccerr_);
        conn_ref_.get_conn = [](ngtcp2_crypto_conn_ref* ref) { return static_cast<session*>(ref->user_data)->conn_; };
        conn_ref_.user_data = this;
    }

    /// Client: creates the QUIC connection towards `path`, verifying the certificate for `host`.
    void start_client(const packet_path& path, std::string_view host) {
        ngtcp2_cid dcid, scid;
        random_cid(dcid, 18);
        random_cid(scid, 17);
        ngtcp2_settings settings;
        ngtcp2_transport_params params;
        default_settings(settings, params);
        settings.qlog.odcid = dcid;  // qlog names a connection by its original destination CID
        params.initial_max_streams_bidi = 0;  // HTTP/3 servers open no bidirectional streams
        auto callbacks = make_callbacks();
        callbacks.client_initial = ngtcp2_crypto_client_initial_cb;
        callbacks.recv_retry = ngtcp2_crypto_recv_retry_cb;
        tls_ = std::make_unique<tls_session>(tls_ctx_, &conn_ref_);
        tls_->setup_client(host);
        check(ngtcp2_conn_client_new(&conn_, &dcid, &scid, path.get(), NGTCP2_PROTO_VER_V1, &callbacks, &settings, &params,
                                     nullptr, this),
              "ngtcp2_conn_client_new");
        ngtcp2_conn_set_tls_native_handle(conn_, tls_->native());
        create_h3();
    }

    /// Server: accepts the connection whose first Initial packet had header `hd`, from `path`.
    void start_server(const packet_path& path, const ngtcp2_pkt_hd& hd, const ngtcp2_cid& our_scid,
                      const std::uint8_t* static_secret, std::size_t secret_len) {
        static_secret_ = static_secret;
        static_secret_len_ = secret_len;
        ngtcp2_settings settings;
        ngtcp2_transport_params params;
        default_settings(settings, params);
        settings.qlog.odcid = hd.dcid;
        params.initial_max_streams_bidi = options_.max_concurrent_streams;
        params.original_dcid = hd.dcid;
        params.stateless_reset_token_present = 1;
        check(ngtcp2_crypto_generate_stateless_reset_token(params.stateless_reset_token, static_secret, secret_len,
                                                           &our_scid),
              "generate_stateless_reset_token");
        auto callbacks = make_callbacks();
        callbacks.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
        tls_ = std::make_unique<tls_session>(tls_ctx_, &conn_ref_);
        tls_->setup_server();
        check(ngtcp2_conn_server_new(&conn_, &hd.scid, &our_scid, path.get(), hd.version, &callbacks, &settings, &params,
                                     nullptr, this),
              "ngtcp2_conn_server_new");
        ngtcp2_conn_set_tls_native_handle(conn_, tls_->native());
        create_h3();
    }

    // ---- hooks the I/O layer implements --------------------------------------------------------
    /// Sends the runs in order with as few system calls as the kernel allows. Returns how many were
    /// sent entirely (a partly sent run is advanced in place); fewer than given: the socket is full.
    virtual std::size_t transmit(std::span<datagram_run> runs) = 0;
    /// Asks for flush() soon, from outside any library callback.
    virtual void wake_flush() = 0;
    virtual void on_established() {}
    virtual void on_terminated(std::error_code) {}
    /// Server: a request's HEADERS are complete; start its handler.
    virtual void on_request(std::shared_ptr<stream_state>) {}
    /// Server: a connection ID to route (added) or to forget.
    virtual void on_connection_id(const ngtcp2_cid&, bool /*added*/) {}

    /// Ends the connection for good: every stream and waiting operation fails with `ec`.
    void terminate(std::error_code ec) {
        if (terminated_) return;
        terminated_ = true;
        if (!close_error_) close_error_ = ec;
        fail_everything(close_error_);
        on_terminated(close_error_);
    }

    ngtcp2_conn* native_conn() const noexcept { return conn_; }
    const connection_options& options() const noexcept { return options_; }

private:
    // ---- setup ---------------------------------------------------------------------------------

    static void check(int rv, const char* what) {
        if (rv != 0) throw std::system_error(make_error_code(error::protocol_error), std::string(what) + ": " + ngtcp2_strerror(rv));
    }

    static void random_cid(ngtcp2_cid& cid, std::size_t len) {
        cid.datalen = len;
        random_bytes(cid.data, len);
    }

    void default_settings(ngtcp2_settings& settings, ngtcp2_transport_params& params) {
        ngtcp2_settings_default(&settings);
        settings.initial_ts = steady_now_ns();
        settings.handshake_timeout = static_cast<ngtcp2_duration>(options_.handshake_timeout.count()) * NGTCP2_MILLISECONDS;
        settings.max_tx_udp_payload_size = options_.max_udp_payload;
        // Windows stay fixed: memory per stream is then bounded by what the options say.
        settings.max_stream_window = options_.stream_receive_window;
        settings.max_window = options_.connection_receive_window;
        if (!options_.qlog_dir.empty()) setup_qlog(settings);
        if (std::getenv("H3CO_DEBUG_NGTCP2")) settings.log_printf = &debug_log;
        ngtcp2_transport_params_default(&params);
        params.initial_max_stream_data_bidi_local = options_.stream_receive_window;
        params.initial_max_stream_data_bidi_remote = options_.stream_receive_window;
        params.initial_max_stream_data_uni = options_.stream_receive_window;
        params.initial_max_data = options_.connection_receive_window;
        params.initial_max_streams_uni = 3;
        params.max_idle_timeout = static_cast<ngtcp2_duration>(options_.idle_timeout.count()) * NGTCP2_MILLISECONDS;
        params.active_connection_id_limit = 7;
    }

    /// H3CO_DEBUG_NGTCP2=1 in the environment prints ngtcp2's own frame log to stderr.
    static void debug_log(void*, const char* format, ...) {
        va_list args;
        va_start(args, format);
        std::vfprintf(stderr, format, args);
        va_end(args);
        std::fputc('\n', stderr);
    }

    void setup_qlog(ngtcp2_settings& settings) {
        std::array<std::uint8_t, 8> id;
        random_bytes(id.data(), id.size());
        std::string name = options_.qlog_dir + (role_ == session_role::client ? "/client-" : "/server-");
        static constexpr char hex[] = "0123456789abcdef";
        for (auto b : id) {
            name += hex[b >> 4];
            name += hex[b & 15];
        }
        name += ".sqlog";
        qlog_.reset(std::fopen(name.c_str(), "w"));
        if (!qlog_) return;
        settings.qlog.write = [](void* user_data, std::uint32_t, const void* data, std::size_t len) {
            auto* self = static_cast<session*>(user_data);
            if (self->qlog_) std::fwrite(data, 1, len, self->qlog_.get());
        };
    }

    ngtcp2_callbacks make_callbacks() {
        ngtcp2_callbacks cb{};
        cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
        cb.encrypt = ngtcp2_crypto_encrypt_cb;
        cb.decrypt = ngtcp2_crypto_decrypt_cb;
        cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
        cb.update_key = ngtcp2_crypto_update_key_cb;
        cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
        cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
        cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
        cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
        cb.rand = [](std::uint8_t* dest, std::size_t len, const ngtcp2_rand_ctx*) { random_bytes(dest, len); };
        cb.get_new_connection_id = &on_get_new_connection_id;
        cb.remove_connection_id = &on_remove_connection_id;
        cb.handshake_completed = &on_handshake_completed;
        cb.recv_stream_data = &on_recv_stream_data;
        cb.acked_stream_data_offset = &on_acked_stream_data_offset;
        cb.stream_close = &on_stream_close;
        cb.stream_reset = &on_stream_reset;
        cb.stream_stop_sending = &on_stream_stop_sending;
        cb.extend_max_stream_data = &on_extend_max_stream_data;
        cb.extend_max_local_streams_bidi = &on_extend_max_local_streams_bidi;
        return cb;
    }

    void create_h3() {
        nghttp3_callbacks cb{};
        cb.acked_stream_data = &h3_acked_stream_data;
        cb.stream_close = &h3_stream_close;
        cb.recv_data = &h3_recv_data;
        cb.deferred_consume = &h3_deferred_consume;
        cb.begin_headers = &h3_begin_headers;
        cb.recv_header = &h3_recv_header;
        cb.end_headers = &h3_end_headers;
        cb.end_stream = &h3_end_stream;
        cb.stop_sending = &h3_stop_sending;
        cb.reset_stream = &h3_reset_stream;
        cb.shutdown = &h3_shutdown;
        nghttp3_settings settings;
        nghttp3_settings_default(&settings);
        settings.max_field_section_size = options_.max_header_bytes;
        settings.qpack_max_dtable_capacity = 4096;
        settings.qpack_blocked_streams = 100;
        const int rv = role_ == session_role::client
                           ? nghttp3_conn_client_new(&h3_, &cb, &settings, nullptr, this)
                           : nghttp3_conn_server_new(&h3_, &cb, &settings, nullptr, this);
        if (rv != 0) throw std::system_error(make_error_code(error::protocol_error), nghttp3_strerror(rv));
        if (role_ == session_role::server)
            nghttp3_conn_set_max_client_streams_bidi(h3_, options_.max_concurrent_streams);
    }

    /// After the handshake: the three unidirectional streams every HTTP/3 endpoint opens.
    int setup_h3_streams() {
        std::int64_t control, qenc, qdec;
        if (ngtcp2_conn_open_uni_stream(conn_, &control, nullptr) != 0 ||
            ngtcp2_conn_open_uni_stream(conn_, &qenc, nullptr) != 0 ||
            ngtcp2_conn_open_uni_stream(conn_, &qdec, nullptr) != 0)
            return -1;
        if (nghttp3_conn_bind_control_stream(h3_, control) != 0) return -1;
        if (nghttp3_conn_bind_qpack_streams(h3_, qenc, qdec) != 0) return -1;
        return 0;
    }

    // ---- sending ---------------------------------------------------------------------------

    /// Adds a packet of `n` bytes at `data` (just after the outbox's last run) to the outbox. It
    /// joins the last run when GSO can carry both: equal segments but for a shorter last one, one
    /// ECN mark, one peer, at most udp_gso_segments packets.
    void add_to_outbox(const ngtcp2_path& path, const std::uint8_t* data, std::size_t n, std::uint8_t ecn,
                       bool& run_open) {
        batch_used_ += n;
        ++outbox_packets_;
        if (run_open) {
            datagram_run& run = outbox_.back();
            if (n <= run.segment && ecn == run.ecn && run.len / run.segment < options_.udp_gso_segments &&
                run.data + run.len == data && static_cast<socklen_t>(path.remote.addrlen) == run.to_len &&
                std::memcmp(path.remote.addr, &run.to, run.to_len) == 0) {
                run.len += n;
                run_open = n == run.segment;  // a shorter packet ends the run
                return;
            }
        }
        outbox_.push_back(run_of(path, data, n, ecn));
        run_open = options_.udp_gso_segments > 1;
    }

    /// A run of one packet of `n` bytes at `data` to the path's remote address.
    static datagram_run run_of(const ngtcp2_path& path, const std::uint8_t* data, std::size_t n, std::uint8_t ecn) {
        datagram_run run;
        run.data = data;
        run.len = run.segment = n;
        run.ecn = ecn;
        run.to_len = static_cast<socklen_t>(std::min<std::size_t>(path.remote.addrlen, sizeof run.to));
        std::memcpy(&run.to, path.remote.addr, run.to_len);
        return run;
    }

    /// Packets worth one send: a full GSO run, or a sendmmsg's worth of packets without GSO.
    std::size_t send_threshold() const noexcept {
        return options_.udp_gso_segments > 1 ? options_.udp_gso_segments
                                             : std::max<std::size_t>(options_.udp_sendmmsg_messages, 1);
    }

    /// Gives the outbox to transmit(); true when the socket took all of it.
    bool submit_outbox() {
        if (outbox_.empty()) return true;
        outbox_sent(transmit(outbox_), nullptr);  // a partly sent run was advanced in place
        return outbox_.empty();
    }

    // ---- errors and closing ----------------------------------------------------------------

    std::error_code unusable() const {
        if (terminated_ || closing_) return close_error_ ? close_error_ : make_error_code(error::connection_closed);
        return {};
    }

    std::error_code stream_unusable(const stream_state& s) const {
        if (auto ec = unusable()) return ec;
        if (s.quic_closed) return make_error_code(error::connection_closed);
        return {};
    }

    static std::error_code send_error(const stream_state& s) {
        if (s.send == send_state::reset && s.send_error) return s.send_error;
        return make_error_code(error::not_writable);
    }

    std::error_code handshake_error(std::uint8_t alert) const {
        if (alert == 120) return make_error_code(error::alpn_mismatch);  // no_application_protocol
        return make_error_code(error::handshake_failed);
    }

    /// The peer's CONNECTION_CLOSE as an error code: a clean close is error::connection_closed.
    std::error_code peer_close_error() {
        ngtcp2_connection_close_error ccerr;
        ngtcp2_conn_get_connection_close_error(conn_, &ccerr);
        close_reason_.assign(reinterpret_cast<const char*>(ccerr.reason), ccerr.reasonlen);
        switch (ccerr.type) {
        case NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT:
            if (ccerr.error_code == NGTCP2_NO_ERROR) return make_error_code(error::connection_closed);
            if (!established_ && tls_->verify_error()) return tls_->verify_error();
            if (ccerr.error_code == NGTCP2_CRYPTO_ERROR + 120)  // the peer's no_application_protocol alert
                return make_error_code(error::alpn_mismatch);
            return make_quic_error_code(ccerr.error_code);
        case NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION:
            if (ccerr.error_code == NGHTTP3_H3_NO_ERROR) return make_error_code(error::connection_closed);
            return make_h3_error_code(ccerr.error_code);
        default:
            return make_error_code(error::connection_closed);
        }
    }

    /// Sends CONNECTION_CLOSE (from local_ccerr_) and ends the connection.
    void close_with(std::error_code ec) {
        if (terminated_ || closing_) return;
        closing_ = true;
        close_error_ = ec;
        std::array<std::uint8_t, NGTCP2_MAX_UDP_PAYLOAD_SIZE> packet;
        packet_path path;
        ngtcp2_pkt_info pi{};
        const auto n = ngtcp2_conn_write_connection_close(conn_, &path.storage.path, &pi, packet.data(), packet.size(),
                                                          &local_ccerr_, steady_now_ns());
        outbox_sent(outbox_.size(), nullptr);  // the close replaces whatever was waiting
        if (n > 0) {
            auto run = run_of(*path.get(), packet.data(), static_cast<std::size_t>(n), pi.ecn);
            transmit({&run, 1});
        }
        terminate(ec);
    }

    void fail_everything(std::error_code ec) {
        while (!openers_.empty()) {
            auto op = std::move(openers_.front());
            openers_.pop_front();
            op.complete(ec, nullptr);
        }
        auto streams = std::move(streams_);
        streams_.clear();
        for (auto& [id, s] : streams) {
            s->quic_closed = true;
            if (s->send != send_state::finished && s->send != send_state::reset) fail_send(*s, ec);
            if (s->recv != recv_state::eof && s->recv != recv_state::reset) fail_recv(*s, ec);
            fail_send_ops(*s, ec);
            fail_recv_ops(*s, ec);
        }
    }

    // ---- stream bookkeeping ------------------------------------------------------------------

    static stream_state* state_of(void* stream_user_data) { return static_cast<stream_state*>(stream_user_data); }

    std::shared_ptr<stream_state> new_stream(std::int64_t id) {
        auto s = std::make_shared<stream_state>(weak_from_this(), id, options_.stream_send_buffer);
        s->recv_buf.set_max_capacity(options_.stream_receive_window);
        streams_.emplace(id, s);
        keep_alive_update();
        return s;
    }

    void serve_openers() {
        while (!openers_.empty() && !terminated_ && !closing_) {
            std::int64_t id = -1;
            const int rv = ngtcp2_conn_open_bidi_stream(conn_, &id, nullptr);
            if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) return;  // on_extend_max_local_streams_bidi retries
            auto op = std::move(openers_.front());
            openers_.pop_front();
            if (rv != 0) {
                op.complete(make_error_code(error::protocol_error), nullptr);
                continue;
            }
            auto s = new_stream(id);
            ngtcp2_conn_set_stream_user_data(conn_, id, s.get());
            op.complete({}, std::move(s));
        }
    }

    void keep_alive_update() {
        if (!conn_) return;
        auto interval = options_.keep_alive.count() > 0 ? options_.keep_alive : options_.idle_timeout / 2;
        // 0 turns keep-alive off (UINT64_MAX would overflow ngtcp2's deadline into a PING storm).
        ngtcp2_conn_set_keep_alive_timeout(
            conn_, streams_.empty() ? 0 : static_cast<ngtcp2_duration>(interval.count()) * NGTCP2_MILLISECONDS);
    }

    void resume(stream_state& s) {
        if (s.blocked_in_h3 && h3_ && !s.quic_closed) {
            s.blocked_in_h3 = false;
            nghttp3_conn_resume_stream(h3_, s.id);
        }
        wake_flush();
    }

    /// Drops body bytes nobody will read, returning their flow-control credit.
    void discard_received(stream_state& s) {
        consume(s, s.recv_buf.size());
        s.recv_buf.consume(s.recv_buf.size());
    }

    /// Returns flow-control credit for `n` body bytes the application has taken.
    void consume(stream_state& s, std::size_t n) {
        if (n == 0 || terminated_ || closing_) return;
        if (!s.quic_closed) ngtcp2_conn_extend_max_stream_offset(conn_, s.id, n);
        ngtcp2_conn_extend_max_offset(conn_, n);
        wake_flush();
    }

    void fail_send(stream_state& s, std::error_code ec) {
        s.send = send_state::reset;
        if (!s.send_error) s.send_error = ec;
    }
    void fail_recv(stream_state& s, std::error_code ec) {
        s.recv = recv_state::reset;
        if (!s.recv_error) s.recv_error = ec;
    }
    void fail_send_ops(stream_state& s, std::error_code ec) {
        if (s.write_op) s.write_op.complete(ec, s.write_progress);
        if (s.finish_op) s.finish_op.complete(ec);
    }
    void fail_recv_ops(stream_state& s, std::error_code ec) {
        if (s.response_op) s.response_op.complete(ec, {});
        if (s.read_op && s.read_filled > 0)
            complete_filled_read(s);  // bytes it holds first; the next read gets the error
        else if (s.read_op && s.recv_buf.empty())
            s.read_op.complete(ec, 0);
    }

    // Completes what can complete. Each is called after any change that might unblock it.

    void serve_response(stream_state& s) {
        if (!s.response_op) return;
        if (s.response_ready()) return s.response_op.complete({}, s.response);
        if (s.recv == recv_state::reset) return s.response_op.complete(s.recv_error, {});
        if (s.recv == recv_state::eof) return s.response_op.complete(make_error_code(error::eof), {});
        if (s.quic_closed) s.response_op.complete(make_error_code(error::connection_closed), {});
    }

    void serve_read(stream_state& s) {
        if (!s.read_op) return;
        if (s.read_filled > 0) return complete_filled_read(s);  // what it holds comes first
        if (asio::buffer_size(s.read_buffers) == 0) return s.read_op.complete({}, 0);
        if (!s.recv_buf.empty()) {
            std::size_t n = 0;
            for (const auto& b : s.read_buffers) {
                if (s.recv_buf.empty()) break;
                n += s.recv_buf.read(b.data(), b.size());
            }
            consume(s, n);
            if (s.recv_buf.empty() && s.recv != recv_state::body) s.recv_buf.shrink();
            return s.read_op.complete({}, n);
        }
        switch (s.recv) {
        case recv_state::headers:
        case recv_state::body:
            if (s.quic_closed) s.read_op.complete(make_error_code(error::connection_closed), 0);
            return;
        case recv_state::eof: return s.read_op.complete(make_error_code(error::eof), 0);
        case recv_state::reset: return s.read_op.complete(s.recv_error, 0);
        }
    }

    void serve_write(stream_state& s) {
        if (!s.write_op) return;
        if (s.send != send_state::open) return s.write_op.complete(send_error(s), s.write_progress);
        const std::size_t taken = for_each_buffer_from(
            s.write_buffers, s.write_progress, [&](const void* p, std::size_t n) { return s.send_buf.write(p, n); });
        s.write_progress += taken;
        if (taken > 0) resume(s);
        const bool done = s.write_progress == asio::buffer_size(s.write_buffers);
        if (done || (!s.write_all && s.write_progress > 0)) s.write_op.complete({}, s.write_progress);
    }

    void serve_finish(stream_state& s) {
        if (!s.finish_op) return;
        if (s.send == send_state::reset) return s.finish_op.complete(send_error(s));
        if (s.send == send_state::finished && s.send_buf.empty() && s.fin_acked()) s.finish_op.complete({});
    }

    void on_stream_closed(stream_state& s, std::uint64_t app_error_code) {
        s.quic_closed = true;
        // Closed with our send side still open: the peer stopped reading (with H3_NO_ERROR when it
        // simply had its answer) or reset the stream.
        const auto code = make_h3_error_code(app_error_code);
        if (s.send == send_state::open || s.send == send_state::finishing || s.send == send_state::idle)
            fail_send(s, app_error_code == NGHTTP3_H3_NO_ERROR ? make_error_code(error::stream_stopped) : code);
        if (s.recv == recv_state::headers || s.recv == recv_state::body) fail_recv(s, code);
        if (s.send == send_state::finished) s.send_buf.consume(s.send_buf.size());
        serve_response(s);
        serve_read(s);
        serve_write(s);
        serve_finish(s);
        auto keep = streams_.find(s.id);
        if (keep != streams_.end()) {
            auto holder = std::move(keep->second);  // may be the last reference: erase first, free after
            streams_.erase(keep);
            keep_alive_update();
            if (role_ == session_role::server && conn_ && !terminated_) ngtcp2_conn_extend_max_streams_bidi(conn_, 1);
        }
    }

    /// The next FIN that nghttp3 handed out but QUIC did not take (see flush); forgets streams
    /// that are gone.
    bool next_lone_fin(std::int64_t& stream_id) {
        while (!lone_fins_.empty()) {
            auto it = streams_.find(lone_fins_.back());
            if (it != streams_.end() && !it->second->quic_closed) {
                stream_id = lone_fins_.back();
                return true;
            }
            lone_fins_.pop_back();
        }
        return false;
    }

    // ---- body bytes on their way out ------------------------------------------------------------

    /// Points `vec` at the buffered body bytes not yet handed out, at most `max` spans; returns
    /// how many spans and bytes.
    static std::pair<std::size_t, std::size_t> unsent_vectors(const stream_state& s, nghttp3_vec* vec, std::size_t max) {
        std::size_t count = 0, bytes = 0;
        for (auto span : s.send_buf.spans(s.submitted)) {
            if (span.empty() || count == max) break;
            vec[count++] = {const_cast<std::uint8_t*>(span.data()), span.size()};
            bytes += span.size();
        }
        return {count, bytes};
    }

    /// `n` more buffered bytes were handed to nghttp3 or QUIC. Returns true when that was the last
    /// of a finished body: the FIN goes with them.
    bool hand_out(stream_state& s, std::size_t n) {
        s.submitted += n;
        s.bytes_sent += n;
        if (s.send != send_state::finishing || s.submitted != s.send_buf.size()) return false;
        s.send = send_state::finished;
        // With every byte already acknowledged no ACK callback will come to finish the wait.
        serve_finish(s);
        return true;
    }

    // ---- raw streams (see start_raw) ----------------------------------------------------------

    /// A raw stream with bytes or a FIN to send and window to send them in; forgets closed ones.
    stream_state* next_raw_stream() {
        std::erase_if(raw_streams_, [this](std::int64_t id) { return !streams_.contains(id); });
        for (auto id : raw_streams_) {
            auto& s = *streams_.find(id)->second;
            const bool has_fin = s.send == send_state::finishing;
            const bool sending = s.send == send_state::open || has_fin;  // not after SHUT_WR or reset
            if (sending && !s.quic_closed && !s.raw_blocked && (s.submitted < s.send_buf.size() || has_fin)) return &s;
        }
        return nullptr;
    }

    nghttp3_ssize raw_vectors(stream_state& s, std::array<nghttp3_vec, 16>& vec, int& fin) {
        fin = s.send == send_state::finishing ? 1 : 0;
        return static_cast<nghttp3_ssize>(unsent_vectors(s, vec.data(), vec.size()).first);
    }

    void raw_received(stream_state& s, const std::uint8_t* data, std::size_t len, bool fin) {
        if (s.recv == recv_state::body) {
            if (!receive_body(s, data, len)) {  // flow control makes this impossible
                reset(s, NGHTTP3_H3_INTERNAL_ERROR, make_error_code(error::protocol_error));
                return;
            }
            if (fin) s.recv = recv_state::eof;
        } else {
            consume(s, len);
        }
        if (s.read_filled == 0 || s.recv != recv_state::body) serve_read(s);
    }

    /// Body bytes arrived. While a read waits and nothing is queued before them, they are copied
    /// straight into its buffers (one copy; their credit goes back at once). The read then
    /// completes when its buffers are full or before the next flush, so one completion carries a
    /// whole receive batch. The rest waits in recv_buf. False when recv_buf cannot hold it, which
    /// flow control forbids.
    bool receive_body(stream_state& s, const std::uint8_t* data, std::size_t len) {
        s.bytes_received += len;
        if (s.read_op && s.recv_buf.empty() && len > 0) {
            const std::size_t n = for_each_buffer_from(s.read_buffers, s.read_filled, [&](void* p, std::size_t room) {
                const std::size_t k = std::min(room, len);
                std::memcpy(p, data, k);
                data += k;
                len -= k;
                return k;
            });
            if (n > 0) {
                consume(s, n);
                s.read_filled += n;
            }
            if (s.read_filled == asio::buffer_size(s.read_buffers)) {
                complete_filled_read(s);
            } else if (s.read_filled > 0 && !s.read_fill_listed) {
                if (auto it = streams_.find(s.id); it != streams_.end()) {
                    s.read_fill_listed = true;
                    filling_reads_.push_back(it->second);
                } else {
                    complete_filled_read(s);
                }
            }
        }
        return s.recv_buf.write(data, len) == len;
    }

    void complete_filled_read(stream_state& s) {
        const std::size_t n = s.read_filled;
        s.read_filled = 0;
        s.read_op.complete({}, n);
    }

    // ---- limits on what a peer may send ------------------------------------------------------

    /// A header block over max_header_bytes: a server answers 431 without running a handler; a
    /// client fails the response with error::header_too_large. Other streams are unaffected.
    void refuse_oversized_headers(stream_state& s) {
        s.request = request_head{};
        s.response = response_head{};
        if (role_ == session_role::server && s.send == send_state::idle) {
            submit_response(s, 431, {}, pending_op<std::error_code>());
            stop_reading(s, NGHTTP3_H3_NO_ERROR);
            finish(s, pending_op<std::error_code>());
            return;
        }
        reset(s, NGHTTP3_H3_EXCESSIVE_LOAD, make_error_code(error::header_too_large));
    }

    /// A request body over max_request_body: 413 if nothing was answered yet, and the handler's
    /// read fails with error::body_too_large.
    void refuse_oversized_body(stream_state& s, std::size_t len) {
        consume(s, len);
        fail_recv(s, make_error_code(error::body_too_large));
        discard_received(s);
        if (!s.quic_closed && conn_) {
            ngtcp2_conn_shutdown_stream_read(conn_, s.id, NGHTTP3_H3_NO_ERROR);
            wake_flush();
        }
        if (s.send == send_state::idle) {
            submit_response(s, 413, {}, pending_op<std::error_code>());
            finish(s, pending_op<std::error_code>());
        }
        serve_read(s);
    }

    // ---- request headers -------------------------------------------------------------------

    static nghttp3_nv make_nv(std::string_view name, std::string_view value) {
        return nghttp3_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                          reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                          NGHTTP3_NV_FLAG_NONE};
    }

    /// Appends user fields with lowercased names; false if a name or value is not allowed.
    static bool append_fields(const fields& headers, std::vector<nghttp3_nv>& nva, std::vector<std::string>& storage) {
        for (const auto& f : headers) {
            std::string name = f.name;
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (name.empty() || name.front() == ':') return false;
            if (!nghttp3_check_header_name(reinterpret_cast<const std::uint8_t*>(name.data()), name.size())) return false;
            if (!nghttp3_check_header_value(reinterpret_cast<const std::uint8_t*>(f.value.data()), f.value.size()))
                return false;
            storage.push_back(std::move(name));
            nva.push_back(make_nv(storage.back(), f.value));
        }
        return true;
    }

    std::optional<std::vector<nghttp3_nv>> make_request_headers(const request& req, std::vector<std::string>& storage) {
        std::string scheme = "https", authority = default_authority_, path = req.url;
        if (auto pos = req.url.find("://"); pos != std::string::npos) {
            scheme = req.url.substr(0, pos);
            const auto rest = pos + 3;
            const auto slash = req.url.find_first_of("/?#", rest);
            authority = req.url.substr(rest, slash == std::string::npos ? std::string::npos : slash - rest);
            path = slash == std::string::npos ? "/" : req.url.substr(slash);
        }
        if (auto hash = path.find('#'); hash != std::string::npos) path.resize(hash);
        if (path.empty()) path = "/";
        if (path.front() != '/' && path != "*") return std::nullopt;
        if (req.method.empty() || authority.empty()) return std::nullopt;
        storage.reserve(4 + req.headers.size());
        storage.push_back(scheme);
        storage.push_back(authority);
        storage.push_back(path);
        std::vector<nghttp3_nv> nva;
        nva.push_back(make_nv(":method", req.method));
        nva.push_back(make_nv(":scheme", storage[0]));
        nva.push_back(make_nv(":authority", storage[1]));
        nva.push_back(make_nv(":path", storage[2]));
        if (!append_fields(req.headers, nva, storage)) return std::nullopt;
        return nva;
    }

protected:
    std::string default_authority_;  ///< client: "host:port" for requests given as a bare path

private:
    // ---- ngtcp2 callbacks ----------------------------------------------------------------------

    static session* self(void* user_data) { return static_cast<session*>(user_data); }

    static int on_get_new_connection_id(ngtcp2_conn*, ngtcp2_cid* cid, std::uint8_t* token, std::size_t cidlen,
                                        void* user_data) {
        auto* me = self(user_data);
        random_cid(*cid, cidlen);
        if (me->static_secret_) {
            if (ngtcp2_crypto_generate_stateless_reset_token(token, me->static_secret_, me->static_secret_len_, cid) != 0)
                return NGTCP2_ERR_CALLBACK_FAILURE;
        } else {
            random_bytes(token, NGTCP2_STATELESS_RESET_TOKENLEN);
        }
        me->on_connection_id(*cid, true);
        return 0;
    }

    static int on_remove_connection_id(ngtcp2_conn*, const ngtcp2_cid* cid, void* user_data) {
        self(user_data)->on_connection_id(*cid, false);
        return 0;
    }

    static int on_handshake_completed(ngtcp2_conn*, void* user_data) {
        auto* me = self(user_data);
        if (!me->tls_->negotiated_h3()) {
            me->last_error_ = make_error_code(error::alpn_mismatch);
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        if (me->setup_h3_streams() != 0) {
            me->last_error_ = make_error_code(error::protocol_error);
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        me->established_ = true;
        me->on_established();
        return 0;
    }

    static int on_recv_stream_data(ngtcp2_conn*, std::uint32_t flags, std::int64_t stream_id, std::uint64_t,
                                   const std::uint8_t* data, std::size_t len, void* user_data, void* sud) {
        auto* me = self(user_data);
        if (auto* s = state_of(sud); s && s->raw) {
            me->raw_received(*s, data, len, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
            return 0;
        }
        const auto consumed =
            nghttp3_conn_read_stream(me->h3_, stream_id, data, len, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
        const bool malformed_message =
            consumed == NGHTTP3_ERR_MALFORMED_HTTP_MESSAGING || consumed == NGHTTP3_ERR_MALFORMED_HTTP_HEADER;
        if (malformed_message && ngtcp2_is_bidi_stream(stream_id)) {
            // A malformed message (e.g. content-length that does not match the body) is a stream
            // error, RFC 9114 §4.1.2: reset this request with H3_MESSAGE_ERROR, keep the connection.
            // Frame errors (DATA before HEADERS, say) are connection errors and close below.
            if (auto it = me->streams_.find(stream_id); it != me->streams_.end()) {
                auto keep = it->second;
                me->reset(*keep, NGHTTP3_H3_MESSAGE_ERROR,
                          make_error_code(consumed == NGHTTP3_ERR_MALFORMED_HTTP_MESSAGING ? error::content_length_mismatch
                                                                                         : error::invalid_request));
            } else {
                ngtcp2_conn_shutdown_stream(me->conn_, stream_id, NGHTTP3_H3_MESSAGE_ERROR);
            }
            ngtcp2_conn_extend_max_stream_offset(me->conn_, stream_id, len);
            ngtcp2_conn_extend_max_offset(me->conn_, len);
            return 0;
        }
        if (consumed < 0) {
            // The peer broke HTTP/3 (or nghttp3 failed): close with the matching H3 code and
            // report that code locally too.
            const auto code = nghttp3_err_infer_quic_app_error_code(static_cast<int>(consumed));
            me->last_error_ = nghttp3_err_is_fatal(static_cast<int>(consumed)) ? make_error_code(error::protocol_error)
                                                                               : make_h3_error_code(code);
            ngtcp2_connection_close_error_set_application_error(&me->local_ccerr_, code, nullptr, 0);
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        ngtcp2_conn_extend_max_stream_offset(me->conn_, stream_id, static_cast<std::uint64_t>(consumed));
        ngtcp2_conn_extend_max_offset(me->conn_, static_cast<std::uint64_t>(consumed));
        return 0;
    }

    static int on_acked_stream_data_offset(ngtcp2_conn*, std::int64_t stream_id, std::uint64_t offset, std::uint64_t datalen,
                                           void* user_data, void* sud) {
        auto* me = self(user_data);
        auto* s = state_of(sud);
        if (s) me->quic_acked(*s, offset, datalen);
        if (s && s->raw) {
            me->body_acked(*s, datalen);
            return 0;
        }
        if (nghttp3_conn_add_ack_offset(me->h3_, stream_id, datalen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
        if (s) me->serve_finish(*s);  // an ACK of the FIN alone frees no body byte: nghttp3 stays silent
        return 0;
    }

    static int on_stream_close(ngtcp2_conn*, std::uint32_t flags, std::int64_t stream_id, std::uint64_t app_error_code,
                               void* user_data, void* stream_user_data) {
        auto* me = self(user_data);
        if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET)) app_error_code = NGHTTP3_H3_NO_ERROR;
        // nghttp3's close callback may drop the last reference: hold one across both calls.
        std::shared_ptr<stream_state> keep;
        if (auto it = me->streams_.find(stream_id); it != me->streams_.end()) keep = it->second;
        const int rv = nghttp3_conn_close_stream(me->h3_, stream_id, app_error_code);
        if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND) return NGTCP2_ERR_CALLBACK_FAILURE;
        (void)stream_user_data;
        if (keep && !keep->quic_closed) me->on_stream_closed(*keep, app_error_code);
        return 0;
    }

    static int on_stream_reset(ngtcp2_conn*, std::int64_t stream_id, std::uint64_t, std::uint64_t app_error_code,
                               void* user_data, void* stream_user_data) {
        auto* me = self(user_data);
        const bool raw = state_of(stream_user_data) && state_of(stream_user_data)->raw;
        if (!raw && nghttp3_conn_shutdown_stream_read(me->h3_, stream_id) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
        if (auto* s = state_of(stream_user_data);
            s && s->recv != recv_state::eof && s->recv != recv_state::reset) {
            me->fail_recv(*s, make_h3_error_code(app_error_code));
            // Bytes already buffered are dropped: a reset stream's data is not to be trusted as complete.
            me->discard_received(*s);
            me->serve_response(*s);
            me->serve_read(*s);
        }
        return 0;
    }

    static int on_stream_stop_sending(ngtcp2_conn*, std::int64_t stream_id, std::uint64_t app_error_code,
                                      void* user_data, void* stream_user_data) {
        // Called when WE stop reading (not on the peer's STOP_SENDING, which ngtcp2 answers itself
        // with RESET_STREAM; flush() sees it as NGTCP2_ERR_STREAM_SHUT_WR).
        (void)app_error_code;
        if (auto* s = state_of(stream_user_data); s && s->raw) return 0;
        return nghttp3_conn_shutdown_stream_read(self(user_data)->h3_, stream_id) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
    }

    static int on_extend_max_stream_data(ngtcp2_conn*, std::int64_t stream_id, std::uint64_t, void* user_data,
                                         void* sud) {
        if (auto* s = state_of(sud); s && s->raw) {
            s->raw_blocked = false;
            return 0;
        }
        return nghttp3_conn_unblock_stream(self(user_data)->h3_, stream_id) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
    }

    static int on_extend_max_local_streams_bidi(ngtcp2_conn*, std::uint64_t, void* user_data) {
        self(user_data)->wake_flush();  // openers are served from flush context, not inside a callback
        self(user_data)->openers_pending_ = true;
        return 0;
    }

    // ---- nghttp3 callbacks -------------------------------------------------------------------

    static session* h3self(void* conn_user_data) { return static_cast<session*>(conn_user_data); }

    static int h3_acked_stream_data(nghttp3_conn*, std::int64_t, std::uint64_t datalen, void* user_data, void* sud) {
        if (auto* s = state_of(sud)) h3self(user_data)->body_acked(*s, datalen);
        return 0;
    }

    /// The peer acknowledged `datalen` more body bytes: they leave the send buffer.
    void body_acked(stream_state& s, std::uint64_t datalen) {
        s.send_buf.consume(datalen);
        s.submitted -= std::min<std::size_t>(s.submitted, datalen);
        serve_write(s);
        serve_finish(s);
    }

    static int h3_stream_close(nghttp3_conn*, std::int64_t, std::uint64_t app_error_code, void* user_data, void* sud) {
        if (auto* s = state_of(sud); s && !s->quic_closed) h3self(user_data)->on_stream_closed(*s, app_error_code);
        return 0;
    }

    static int h3_recv_data(nghttp3_conn*, std::int64_t, const std::uint8_t* data, std::size_t len, void* user_data,
                            void* sud) {
        auto* s = state_of(sud);
        auto* me = h3self(user_data);
        if (!s || s->recv != recv_state::body) {
            // Nobody will read these bytes (we stopped reading): return their credit at once.
            if (s) me->consume(*s, len);
            return 0;
        }
        if (me->role_ == session_role::server && s->bytes_received + len > me->options_.max_request_body) {
            me->refuse_oversized_body(*s, len);
            return 0;
        }
        // Flow control bounds what the peer may send to what we have room for.
        if (!me->receive_body(*s, data, len)) return NGHTTP3_ERR_CALLBACK_FAILURE;
        if (s->read_filled == 0) me->serve_read(*s);  // a read being filled completes before the flush
        return 0;
    }

    static int h3_deferred_consume(nghttp3_conn*, std::int64_t stream_id, std::size_t consumed, void* user_data, void*) {
        auto* me = h3self(user_data);
        ngtcp2_conn_extend_max_stream_offset(me->conn_, stream_id, consumed);
        ngtcp2_conn_extend_max_offset(me->conn_, consumed);
        return 0;
    }

    static int h3_begin_headers(nghttp3_conn* h3, std::int64_t stream_id, void* user_data, void* sud) {
        auto* me = h3self(user_data);
        if (me->role_ == session_role::server && !sud) {
            auto s = me->new_stream(stream_id);
            nghttp3_conn_set_stream_user_data(h3, stream_id, s.get());
            ngtcp2_conn_set_stream_user_data(me->conn_, stream_id, s.get());
            return 0;
        }
        if (auto* s = state_of(sud); s && me->role_ == session_role::client) {
            s->response = response_head{};  // a final response may follow interim 1xx ones
            s->header_bytes = 0;
        }
        return 0;
    }

    static int h3_recv_header(nghttp3_conn*, std::int64_t, std::int32_t token, nghttp3_rcbuf* name,
                              nghttp3_rcbuf* value, std::uint8_t, void* user_data, void* sud) {
        auto* s = state_of(sud);
        if (!s) return 0;
        auto* me = h3self(user_data);
        const auto n = nghttp3_rcbuf_get_buf(name);
        const auto v = nghttp3_rcbuf_get_buf(value);
        const std::string_view nv(reinterpret_cast<const char*>(n.base), n.len);
        const std::string_view vv(reinterpret_cast<const char*>(v.base), v.len);
        s->header_bytes += n.len + v.len + 32;  // the RFC 9114 §4.2.2 size: name + value + 32
        if (s->header_bytes > me->options_.max_header_bytes) {
            s->header_overflow = true;
            return 0;
        }

        if (me->role_ == session_role::server) {
            switch (token) {
            case NGHTTP3_QPACK_TOKEN__METHOD: s->request.method = vv; break;
            case NGHTTP3_QPACK_TOKEN__SCHEME: s->request.scheme = vv; break;
            case NGHTTP3_QPACK_TOKEN__AUTHORITY: s->request.authority = vv; break;
            case NGHTTP3_QPACK_TOKEN__PATH: s->request.path = vv; break;
            default:
                if (!nv.empty() && nv.front() != ':') s->request.headers.push_back({std::string(nv), std::string(vv)});
            }
        } else {
            if (token == NGHTTP3_QPACK_TOKEN__STATUS) {
                int status = 0;
                for (char c : vv) status = status * 10 + (c - '0');
                s->response.status = status;
            } else if (!nv.empty() && nv.front() != ':') {
                s->response.headers.push_back({std::string(nv), std::string(vv)});
            }
        }
        return 0;
    }

    static int h3_end_headers(nghttp3_conn*, std::int64_t, int fin, void* user_data, void* sud) {
        auto* s = state_of(sud);
        if (!s) return 0;
        auto* me = h3self(user_data);
        if (s->header_overflow) {
            me->refuse_oversized_headers(*s);
            return 0;
        }

        if (me->role_ == session_role::client && s->response.status < 200) return 0;  // interim: wait for more
        if (s->recv == recv_state::headers) s->recv = fin ? recv_state::eof : recv_state::body;
        if (me->role_ == session_role::server) {
            auto it = me->streams_.find(s->id);
            if (it != me->streams_.end()) me->on_request(it->second);
        } else {
            me->serve_response(*s);
        }
        return 0;
    }

    static int h3_end_stream(nghttp3_conn*, std::int64_t, void* user_data, void* sud) {
        auto* s = state_of(sud);
        if (!s) return 0;
        if (s->recv == recv_state::body || s->recv == recv_state::headers) s->recv = recv_state::eof;
        auto* me = h3self(user_data);
        me->serve_response(*s);
        me->serve_read(*s);
        return 0;
    }

    static int h3_stop_sending(nghttp3_conn*, std::int64_t stream_id, std::uint64_t app_error_code, void* user_data,
                               void*) {
        ngtcp2_conn_shutdown_stream_read(h3self(user_data)->conn_, stream_id, app_error_code);
        return 0;
    }

    static int h3_reset_stream(nghttp3_conn*, std::int64_t stream_id, std::uint64_t app_error_code, void* user_data,
                               void*) {
        ngtcp2_conn_shutdown_stream_write(h3self(user_data)->conn_, stream_id, app_error_code);
        return 0;
    }

    static int h3_shutdown(nghttp3_conn*, std::int64_t, void* user_data) {
        auto* me = h3self(user_data);
        me->goaway_received_ = true;
        // Requests waiting for a stream will never get one on this connection.
        while (!me->openers_.empty()) {
            auto op = std::move(me->openers_.front());
            me->openers_.pop_front();
            op.complete(make_error_code(error::going_away), nullptr);
        }
        return 0;
    }

    /// nghttp3 asks for body bytes: hand out what is buffered, or pause (WOULDBLOCK) until more.
    static nghttp3_ssize read_body(nghttp3_conn*, std::int64_t, nghttp3_vec* vec, std::size_t veccnt,
                                   std::uint32_t* pflags, void* user_data, void* sud) {
        auto* s = state_of(sud);
        if (!s) return NGHTTP3_ERR_CALLBACK_FAILURE;
        const auto [count, bytes] = unsent_vectors(*s, vec, veccnt);
        if (h3self(user_data)->hand_out(*s, bytes)) {
            *pflags |= NGHTTP3_DATA_FLAG_EOF;
            return static_cast<nghttp3_ssize>(count);
        }
        if (count == 0) {
            s->blocked_in_h3 = true;
            return NGHTTP3_ERR_WOULDBLOCK;
        }
        return static_cast<nghttp3_ssize>(count);
    }

protected:
    /// Called by the I/O layer at the start of every flush: work that must not run inside callbacks.
    void before_flush() {
        if (openers_pending_) {
            openers_pending_ = false;
            serve_openers();
        }
        // Reads filled straight from this receive batch's packets complete now, once each.
        for (auto& st : filling_reads_) {
            st->read_fill_listed = false;
            if (st->read_op && st->read_filled > 0) complete_filled_read(*st);
        }
        filling_reads_.clear();
    }

private:
    session_role role_;
    connection_options options_;
    std::shared_ptr<tls_context> tls_ctx_;
    std::unique_ptr<tls_session> tls_;
    ngtcp2_crypto_conn_ref conn_ref_{};
    ngtcp2_conn* conn_ = nullptr;
    nghttp3_conn* h3_ = nullptr;
    ngtcp2_connection_close_error local_ccerr_{};
    const std::uint8_t* static_secret_ = nullptr;
    std::size_t static_secret_len_ = 0;

    std::unique_ptr<std::uint8_t[]> batch_;  ///< packets written and not yet sent
    std::size_t batch_capacity_ = 0;
    std::size_t batch_used_ = 0;             ///< [0, batch_used_) of batch_ is in the outbox
    std::vector<datagram_run> outbox_;       ///< runs of batch_ the socket has yet to take
    std::size_t outbox_packets_ = 0;         ///< packets added since the outbox was last empty
    std::size_t last_flush_packets_ = 0;

    std::unordered_map<std::int64_t, std::shared_ptr<stream_state>> streams_;
    std::deque<open_op> openers_;
    std::vector<std::int64_t> raw_streams_;  ///< streams in raw mode (tests only; usually empty)
    std::vector<std::int64_t> lone_fins_;    ///< FINs without data that QUIC has yet to take
    std::vector<std::shared_ptr<stream_state>> filling_reads_;  ///< reads to complete before the flush
    bool openers_pending_ = false;

    bool established_ = false;
    bool closing_ = false;
    bool terminated_ = false;
    bool goaway_sent_ = false;
    bool goaway_received_ = false;
    std::uint64_t closing_deadline_ = 0;
    std::error_code close_error_;
    std::error_code last_error_;
    std::string close_reason_;

    struct file_close {
        void operator()(std::FILE* f) const noexcept { std::fclose(f); }
    };
    std::unique_ptr<std::FILE, file_close> qlog_;
};

}  // namespace h3co::detail
