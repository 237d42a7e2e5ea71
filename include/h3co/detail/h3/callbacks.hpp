// nghttp3's callbacks for a session: each hands what happened to the stream machine (or records it
// in the session) and returns; none runs user code. Included only by the engine's implementation
// files.
#pragma once

#include <h3co/detail/h3/header_encoding.hpp>
#include <h3co/detail/h3/received_headers.hpp>
#include <h3co/detail/quic/native_session.hpp>
#include <h3co/detail/session.hpp>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace h3co::detail {

struct h3_callbacks {
    static session& self(void* conn_user_data) { return *static_cast<session*>(conn_user_data); }
    static stream_state* state_of(void* stream_user_data) { return static_cast<stream_state*>(stream_user_data); }

    static nghttp3_callbacks table() {
        nghttp3_callbacks cb{};
        cb.acked_stream_data = &acked_stream_data;
        cb.stream_close = &stream_close;
        cb.recv_data = &recv_data;
        cb.deferred_consume = &deferred_consume;
        cb.begin_headers = &begin_headers;
        cb.recv_header = &recv_header;
        cb.end_headers = &end_headers;
        cb.begin_trailers = &begin_trailers;
        cb.recv_trailer = &recv_trailer;
        cb.end_trailers = &end_trailers;
        cb.end_stream = &end_stream;
        cb.stop_sending = &stop_sending;
        cb.reset_stream = &reset_stream;
        cb.shutdown = &shutdown;
        return cb;
    }

    static int acked_stream_data(nghttp3_conn*, std::int64_t, std::uint64_t datalen, void* user_data, void* sud) {
        if (auto* s = state_of(sud)) self(user_data).machine_.body_acked(*s, datalen);
        return 0;
    }

    static int stream_close(nghttp3_conn*, std::int64_t, std::uint64_t app_error_code, void* user_data, void* sud) {
        if (auto* s = state_of(sud); s && !s->quic_closed) self(user_data).stream_closed(*s, app_error_code);
        return 0;
    }

    static int recv_data(nghttp3_conn*, std::int64_t, const std::uint8_t* data, std::size_t len, void* user_data,
                         void* sud) {
        auto* s = state_of(sud);
        if (!s) return 0;
        return self(user_data).machine_.body_received(*s, data, len) ? 0 : NGHTTP3_ERR_CALLBACK_FAILURE;
    }

    static int deferred_consume(nghttp3_conn*, std::int64_t stream_id, std::size_t consumed, void* user_data, void*) {
        self(user_data).credit(stream_id, consumed);
        return 0;
    }

    static int begin_headers(nghttp3_conn* h3, std::int64_t stream_id, void* user_data, void* sud) {
        auto& me = self(user_data);
        const bool server = me.role_ == session_role::server;
        if (server && !sud) {  // known since its first frame (quic_callbacks::stream_open)
            auto* s = me.find_stream(stream_id);
            if (!s) {
                s = me.new_stream(stream_id).get();
                ngtcp2_conn_set_stream_user_data(me.native_->conn, stream_id, s);
            }
            nghttp3_conn_set_stream_user_data(h3, stream_id, s);
            return 0;
        }
        if (auto* s = state_of(sud)) begin_received_headers(*s, server);
        return 0;
    }

    static header_token token_of(std::int32_t token) noexcept {
        switch (token) {
        case NGHTTP3_QPACK_TOKEN__METHOD: return header_token::method;
        case NGHTTP3_QPACK_TOKEN__SCHEME: return header_token::scheme;
        case NGHTTP3_QPACK_TOKEN__AUTHORITY: return header_token::authority;
        case NGHTTP3_QPACK_TOKEN__PATH: return header_token::path;
        case NGHTTP3_QPACK_TOKEN__STATUS: return header_token::status;
        case NGHTTP3_QPACK_TOKEN__PROTOCOL: return header_token::protocol;
        default: return header_token::other;
        }
    }

    static int recv_header(nghttp3_conn*, std::int64_t, std::int32_t token, nghttp3_rcbuf* name, nghttp3_rcbuf* value,
                           std::uint8_t, void* user_data, void* sud) {
        auto* s = state_of(sud);
        if (!s) return 0;
        auto& me = self(user_data);
        const auto n = nghttp3_rcbuf_get_buf(name);
        const auto v = nghttp3_rcbuf_get_buf(value);
        add_received_field(*s, me.role_ == session_role::server, token_of(token),
                           std::string_view(reinterpret_cast<const char*>(n.base), n.len),
                           std::string_view(reinterpret_cast<const char*>(v.base), v.len), me.options_.max_header_bytes);
        return 0;
    }

    static int end_headers(nghttp3_conn*, std::int64_t, int fin, void* user_data, void* sud) {
        auto* s = state_of(sud);
        if (!s) return 0;
        auto& me = self(user_data);
        if (me.role_ == session_role::server) s->early_data = !me.established_;  // came in 0-RTT
        // The handler starts after this callback: on_request only schedules it.
        if (me.machine_.headers_complete(*s, fin != 0, me.options_.max_interim_responses))
            me.on_request(s->shared_from_this());
        return 0;
    }

    static int begin_trailers(nghttp3_conn*, std::int64_t, void*, void* sud) {
        if (auto* s = state_of(sud)) begin_received_trailers(*s);
        return 0;
    }

    static int recv_trailer(nghttp3_conn*, std::int64_t, std::int32_t, nghttp3_rcbuf* name, nghttp3_rcbuf* value,
                            std::uint8_t, void* user_data, void* sud) {
        auto* s = state_of(sud);
        if (!s) return 0;
        const auto n = nghttp3_rcbuf_get_buf(name);
        const auto v = nghttp3_rcbuf_get_buf(value);
        add_received_trailer(*s, std::string_view(reinterpret_cast<const char*>(n.base), n.len),
                             std::string_view(reinterpret_cast<const char*>(v.base), v.len),
                             self(user_data).options_.max_header_bytes);
        return 0;
    }

    static int end_trailers(nghttp3_conn*, std::int64_t, int, void* user_data, void* sud) {
        // An oversized trailer block fails the body's reader; a handler may be running with the head.
        if (auto* s = state_of(sud); s && s->header_overflow) self(user_data).machine_.refuse_oversized_trailers(*s);
        return 0;
    }

    static int end_stream(nghttp3_conn*, std::int64_t, void* user_data, void* sud) {
        if (auto* s = state_of(sud)) self(user_data).machine_.end_of_stream(*s);
        return 0;
    }

    static int stop_sending(nghttp3_conn*, std::int64_t stream_id, std::uint64_t app_error_code, void* user_data,
                            void*) {
        auto& me = self(user_data);
        auto* conn = me.native_->conn;
        compat::shutdown_stream_read(conn, stream_id, app_error_code);
        // nghttp3 stops reading a peer's unidirectional stream of a reserved or unknown type. ngtcp2
        // 0.12 never closes it, so stream_close never lets another take its place: do it here.
        if (!compat::closes_remote_uni_streams && !ngtcp2_is_bidi_stream(stream_id) &&
            !ngtcp2_conn_is_local_stream(conn, stream_id) &&
            me.replaced_remote_uni_streams_ < compat::max_replaced_remote_uni_streams) {
            ++me.replaced_remote_uni_streams_;
            ngtcp2_conn_extend_max_streams_uni(conn, 1);
        }
        return 0;
    }

    static int reset_stream(nghttp3_conn*, std::int64_t stream_id, std::uint64_t app_error_code, void* user_data,
                            void*) {
        compat::shutdown_stream_write(self(user_data).native_->conn, stream_id, app_error_code);
        return 0;
    }

    static int shutdown(nghttp3_conn*, std::int64_t, void* user_data) {
        auto& me = self(user_data);
        me.goaway_received_ = true;
        // Requests waiting for a stream will never get one on this connection.
        while (!me.openers_.empty()) {
            auto o = std::move(me.openers_.front());
            me.openers_.pop_front();
            o.op.complete(make_error_code(error::going_away), nullptr);
        }
        return 0;
    }

    /// nghttp3 asks for body bytes: hand out what is buffered, or pause (WOULDBLOCK) until more.
    static nghttp3_ssize read_body(nghttp3_conn*, std::int64_t, nghttp3_vec* vec, std::size_t veccnt,
                                   std::uint32_t* pflags, void* user_data, void* sud) {
        auto* s = state_of(sud);
        if (!s) return NGHTTP3_ERR_CALLBACK_FAILURE;
        const auto [count, bytes] = stream_machine::unsent(*s, vec, veccnt);
        auto& me = self(user_data);
        if (me.machine_.hand_out(*s, bytes)) {
            *pflags |= NGHTTP3_DATA_FLAG_EOF;
            if (s->trailers_to_send) {  // the FIN goes with the trailers, after the body
                header_encoding::name_storage storage;
                std::vector<nghttp3_nv> nva;
                if (!header_encoding::append_fields(*s->trailers_to_send, nva, storage) ||
                    nghttp3_conn_submit_trailers(me.native_->h3, s->id, nva.data(), nva.size()) != 0) {
                    // finish_with_trailers checked them; should nghttp3 still refuse them, this
                    // stream alone ends, not the connection and every request on it.
                    me.machine_.trailers_unsendable(*s);
                    return NGHTTP3_ERR_WOULDBLOCK;
                }
                *pflags |= NGHTTP3_DATA_FLAG_NO_END_STREAM;
                // Kept while the stream may go again after a rejected 0-RTT (session::resend_rejected).
                if (!s->early_request) s->trailers_to_send.reset();
            }
            return static_cast<nghttp3_ssize>(count);
        }
        if (count == 0) {
            s->blocked_in_h3 = true;
            return NGHTTP3_ERR_WOULDBLOCK;
        }
        return static_cast<nghttp3_ssize>(count);
    }
};

}  // namespace h3co::detail
