// ngtcp2's callbacks for a session: each records what happened in the session or its stream machine
// and returns; none runs user code. Included only by the engine's implementation files.
#pragma once

#include <h3co/detail/h3/frame_reader.hpp>
#include <h3co/detail/quic/native_session.hpp>
#include <h3co/detail/session.hpp>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <span>

namespace h3co::detail {

struct quic_callbacks {
    static session& self(void* user_data) { return *static_cast<session*>(user_data); }
    static stream_state* state_of(void* stream_user_data) { return static_cast<stream_state*>(stream_user_data); }

    /// The table for a client (`client`) or server connection.
    static ngtcp2_callbacks table(bool client) {
        ngtcp2_callbacks cb{};
        if (client) {
            cb.client_initial = ngtcp2_crypto_client_initial_cb;
            cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
            cb.recv_new_token = &recv_new_token;
            cb.recv_stateless_reset = &recv_stateless_reset;
            cb.select_preferred_addr = &select_preferred_addr;
            cb.handshake_confirmed = &handshake_confirmed;
            compat::set_early_data_rejected(cb, &early_data_rejected);
        } else {
            cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
            cb.stream_open = &stream_open;
        }
        cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
        cb.encrypt = ngtcp2_crypto_encrypt_cb;
        cb.decrypt = ngtcp2_crypto_decrypt_cb;
        cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
        cb.update_key = &update_key;
        cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
        cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
        cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
        cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
        cb.rand = [](std::uint8_t* dest, std::size_t len, const ngtcp2_rand_ctx*) { random_bytes(dest, len); };
        cb.get_new_connection_id = &get_new_connection_id;
        cb.remove_connection_id = &remove_connection_id;
        cb.handshake_completed = &handshake_completed;
        cb.recv_stream_data = &recv_stream_data;
        cb.acked_stream_data_offset = &acked_stream_data_offset;
        cb.stream_close = &stream_close;
        cb.stream_reset = &stream_reset;
        cb.stream_stop_sending = &stream_stop_sending;
        cb.extend_max_stream_data = &extend_max_stream_data;
        cb.extend_max_local_streams_bidi = &extend_max_local_streams_bidi;
        cb.extend_max_remote_streams_bidi = &extend_max_remote_streams_bidi;
        cb.recv_datagram = &recv_datagram;
        cb.ack_datagram = &ack_datagram;
        compat::set_path_validation<&path_validation>(cb);
        return cb;
    }

    static void qlog_write(void* user_data, std::uint32_t, const void* data, std::size_t len) {
        if (std::FILE* file = self(user_data).native_->qlog) std::fwrite(data, 1, len, file);
    }

    /// The next 1-RTT key generation, derived ahead of use: counted for connection_stats, which
    /// sees every key update this way, ours and the peer's (ngtcp2 has no other sign of the latter).
    static int update_key(ngtcp2_conn* conn, std::uint8_t* rx_secret, std::uint8_t* tx_secret,
                          ngtcp2_crypto_aead_ctx* rx_aead_ctx, std::uint8_t* rx_iv, ngtcp2_crypto_aead_ctx* tx_aead_ctx,
                          std::uint8_t* tx_iv, const std::uint8_t* current_rx_secret,
                          const std::uint8_t* current_tx_secret, std::size_t secretlen, void* user_data) {
        const int rv = ngtcp2_crypto_update_key_cb(conn, rx_secret, tx_secret, rx_aead_ctx, rx_iv, tx_aead_ctx, tx_iv,
                                                   current_rx_secret, current_tx_secret, secretlen, user_data);
        if (rv == 0) ++self(user_data).key_generations_derived_;
        return rv;
    }

    /// A new path was validated or not: a server's client moved (NAT rebinding or migration), or
    /// our own migration ended. ngtcp2 has already moved (or stayed); this counts and tells the I/O.
    static int path_validation(ngtcp2_conn*, std::uint32_t, const ngtcp2_path* path, ngtcp2_path_validation_result res,
                               void* user_data) {
        auto& me = self(user_data);
        const bool ok = res == NGTCP2_PATH_VALIDATION_RESULT_SUCCESS;
        ++(ok ? me.paths_validated_ : me.path_validations_failed_);
        me.on_path_validated(network_path_of(*path), ok);
        return 0;
    }

    /// Client: the server offers a preferred address. The I/O layer opens a socket for it, or
    /// declines (dest left as it is); only the family the connection uses is taken.
    static int select_preferred_addr(ngtcp2_conn* conn, ngtcp2_path* dest, const ngtcp2_preferred_addr* paddr,
                                     void* user_data) {
        const auto* current = ngtcp2_conn_get_path(conn);
        const bool v6 = current->remote.addr->sa_family == AF_INET6;
        sockaddr_storage remote{};
        socklen_t len = 0;
        if (!v6 && paddr->ipv4_present) {
            std::memcpy(&remote, &paddr->ipv4, sizeof paddr->ipv4);
            remote.ss_family = AF_INET;
            len = sizeof(sockaddr_in);
        } else if (v6 && paddr->ipv6_present) {
            std::memcpy(&remote, &paddr->ipv6, sizeof paddr->ipv6);
            remote.ss_family = AF_INET6;
            len = sizeof(sockaddr_in6);
        } else {
            return 0;
        }
        network_path path;
        if (!self(user_data).choose_preferred_address(reinterpret_cast<const sockaddr*>(&remote), len, path)) return 0;
        std::memcpy(dest->local.addr, &path.local, path.local_len);
        dest->local.addrlen = static_cast<ngtcp2_socklen>(path.local_len);
        std::memcpy(dest->remote.addr, &path.remote, path.remote_len);
        dest->remote.addrlen = static_cast<ngtcp2_socklen>(path.remote_len);
        return 0;
    }

    static int get_new_connection_id(ngtcp2_conn*, ngtcp2_cid* cid, std::uint8_t* token, std::size_t cidlen,
                                     void* user_data) {
        auto& me = self(user_data);
        auto& n = *me.native_;
        cid->datalen = cidlen;
        if (me.cid_maker_)
            me.cid_maker_(cid->data, cidlen);
        else
            random_bytes(cid->data, cidlen);
        if (!n.static_secret.empty()) {
            if (ngtcp2_crypto_generate_stateless_reset_token(token, n.static_secret.data(), n.static_secret.size(),
                                                             cid) != 0)
                return NGTCP2_ERR_CALLBACK_FAILURE;
        } else {
            random_bytes(token, NGTCP2_STATELESS_RESET_TOKENLEN);
        }
        me.on_connection_id({cid->data, cid->datalen}, true);
        return 0;
    }

    static int remove_connection_id(ngtcp2_conn*, const ngtcp2_cid* cid, void* user_data) {
        self(user_data).on_connection_id({cid->data, cid->datalen}, false);
        return 0;
    }

    // ---- issue 13: stateless reset, NEW_TOKEN, every request stream known from its first frame ----

    static int recv_stateless_reset(ngtcp2_conn*, const ngtcp2_pkt_stateless_reset*, void* user_data) {
        self(user_data).stateless_reset_ = true;  // read_packet reports it once ngtcp2 says DRAINING
        return 0;
    }

#if NGTCP2_VERSION_NUM >= 0x010000
    static int recv_new_token(ngtcp2_conn*, const std::uint8_t* token, std::size_t len, void* user_data) {
        self(user_data).on_new_token({token, len});
        return 0;
    }
#else
    static int recv_new_token(ngtcp2_conn*, const ngtcp2_vec* token, void* user_data) {
        self(user_data).on_new_token({token->base, token->len});
        return 0;
    }
#endif

    /// Server: a client's request stream, from its first frame (even a RESET_STREAM): its header
    /// timeout starts now, and it is known when it closes, whatever came on it.
    static int stream_open(ngtcp2_conn* conn, std::int64_t stream_id, void* user_data) {
        if (!ngtcp2_is_bidi_stream(stream_id)) return 0;
        auto& me = self(user_data);
        if (me.find_stream(stream_id)) return 0;
        auto s = me.new_stream(stream_id);
        ngtcp2_conn_set_stream_user_data(conn, stream_id, s.get());
        return 0;
    }

    static int handshake_completed(ngtcp2_conn*, void* user_data) {
        auto& me = self(user_data);
        if (!me.native_->tls->negotiated_h3()) {
            me.last_error_ = make_error_code(error::alpn_mismatch);
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        if (auto ec = me.native_->tls->policy_error()) {  // tls_ciphers: checked on the outcome
            me.last_error_ = ec;
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        if (me.setup_h3_streams() != 0) {
            me.last_error_ = make_error_code(error::protocol_error);
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        me.established_ = true;
        me.submit_held_requests();  // requests that could not go in 0-RTT
        me.on_established();
        return 0;
    }

    /// Client: HANDSHAKE_DONE came; the handshake can no longer time out (session::confirm_by_).
    static int handshake_confirmed(ngtcp2_conn*, void* user_data) {
        self(user_data).confirm_by_ = UINT64_MAX;
        return 0;
    }

    /// Client: the server refused our 0-RTT (BoringSSL says so before the handshake completes).
    static int early_data_rejected(ngtcp2_conn*, void* user_data) {
        self(user_data).on_early_data_rejected();
        return 0;
    }

    static int recv_stream_data(ngtcp2_conn*, std::uint32_t flags, std::int64_t stream_id, std::uint64_t,
                                const std::uint8_t* data, std::size_t len, void* user_data, void* sud) {
        auto& me = self(user_data);
        auto& n = *me.native_;
        const bool fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
        // Server, 0-RTT: a request before the handshake completed; nghttp3 needs our control and
        // QPACK streams bound before it answers (as in ngtcp2's example server).
        if (me.role_ == session_role::server && !me.h3_streams_ready_ && me.setup_h3_streams() != 0) {
            me.last_error_ = make_error_code(error::protocol_error);
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        me.ledger_.delivered(stream_id, len);  // from here each byte is extended exactly once
        if (auto* s = state_of(sud); s && s->raw) {
            me.machine_.raw_received(*s, data, len, fin);
            return 0;
        }
        if (auto* s = state_of(sud); s && s->taken_over) return taken_over_data(me, *s, data, len, fin);
        if (!ngtcp2_is_bidi_stream(stream_id) && !me.peer_uni_stream_data(stream_id, data, len))  // SETTINGS
            return NGTCP2_ERR_CALLBACK_FAILURE;
        const auto consumed = nghttp3_conn_read_stream(n.h3, stream_id, data, len, fin);
        const bool malformed_message =
            consumed == NGHTTP3_ERR_MALFORMED_HTTP_MESSAGING || consumed == NGHTTP3_ERR_MALFORMED_HTTP_HEADER;
        if (malformed_message && ngtcp2_is_bidi_stream(stream_id)) {
            // A malformed message (e.g. content-length that does not match the body) is a stream
            // error, RFC 9114 §4.1.2: reset this request with H3_MESSAGE_ERROR, keep the connection.
            // Frame errors (DATA before HEADERS, say) are connection errors and close below.
            if (auto* s = me.find_stream(stream_id)) {
                auto keep = s->shared_from_this();
                me.machine_.reset(*keep, NGHTTP3_H3_MESSAGE_ERROR,
                                  make_error_code(consumed == NGHTTP3_ERR_MALFORMED_HTTP_MESSAGING
                                                      ? error::content_length_mismatch
                                                      : error::invalid_request));
            } else {
                compat::shutdown_stream(n.conn, stream_id, NGHTTP3_H3_MESSAGE_ERROR);
            }
            me.release_credit(stream_id);  // this chunk and all before it; body bytes read already excepted
            return 0;
        }
        if (consumed < 0) {
            // The peer broke HTTP/3 (or nghttp3 failed): close with the matching H3 code and
            // report that code locally too.
            const auto code = nghttp3_err_infer_quic_app_error_code(static_cast<int>(consumed));
            me.last_error_ = nghttp3_err_is_fatal(static_cast<int>(consumed)) ? make_error_code(error::protocol_error)
                                                                              : make_h3_error_code(code);
            compat::ccerr_set_application_error(n.ccerr, code, nullptr, 0);
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        // Framing and QPACK bytes nghttp3 consumed itself: their credit goes back now. Body bytes'
        // credit goes back as the application reads them.
        me.credit(stream_id, static_cast<std::size_t>(consumed));
        // A server follows each request's framing (from its first byte: the stream may have been
        // made by this very chunk), so that a handler can take the stream over at any point.
        if (me.role_ == session_role::server && ngtcp2_is_bidi_stream(stream_id))
            if (auto* s = me.find_stream(stream_id)) s->frames.feed(data, len, [](std::uint64_t, const std::uint8_t*, std::size_t) { return true; });
        return 0;
    }

    /// A taken-over stream's bytes, parsed here: DATA payload is the body, other frames (trailers,
    /// unknown and reserved types) are skipped, frames that never belong on a request stream close
    /// the connection with H3_FRAME_UNEXPECTED (RFC 9114 §7.2).
    static int taken_over_data(session& me, stream_state& s, const std::uint8_t* data, std::size_t len, bool fin) {
        auto keep = s.shared_from_this();
        std::size_t skipped = 0;
        bool unexpected = false, overflow = false;
        const auto framing = s.frames.feed(data, len, [&](std::uint64_t type, const std::uint8_t* p, std::size_t n) {
            if (unexpected_on_request_stream(type)) return !(unexpected = true);
            if (type != h3_frame_data) {
                skipped += n;
                return true;
            }
            if (!me.machine_.body_received(s, p, n)) return !(overflow = true);  // flow control forbids it
            return true;
        });
        if (unexpected || overflow) {
            const auto code = unexpected ? NGHTTP3_H3_FRAME_UNEXPECTED : NGHTTP3_H3_INTERNAL_ERROR;
            me.last_error_ = make_h3_error_code(code);
            compat::ccerr_set_application_error(me.native_->ccerr, code, nullptr, 0);
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        me.credit(s.id, static_cast<std::size_t>(framing) + skipped);
        if (fin) me.machine_.end_of_stream(s);
        return 0;
    }

    static int acked_stream_data_offset(ngtcp2_conn*, std::int64_t stream_id, std::uint64_t offset,
                                        std::uint64_t datalen, void* user_data, void* sud) {
        auto& me = self(user_data);
        me.data_stalled_since_ = 0;  // the path carries our packets (path-MTU black-hole detection)
        auto* s = state_of(sud);
        if (s) s->fin.on_acked(offset, datalen);
        if (s && s->raw) {
            me.machine_.body_acked(*s, datalen);
            return 0;
        }
        if (nghttp3_conn_add_ack_offset(me.native_->h3, stream_id, datalen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
        if (s) me.machine_.frame_acked(*s);  // an ACK of the FIN alone frees no body byte: nghttp3 stays silent
        return 0;
    }

    static int stream_close(ngtcp2_conn* conn, std::uint32_t flags, std::int64_t stream_id,
                            std::uint64_t app_error_code, void* user_data, void*) {
        auto& me = self(user_data);
        if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET)) app_error_code = NGHTTP3_H3_NO_ERROR;
        if (ngtcp2_is_bidi_stream(stream_id)) me.lost_in_closed_streams_ += ngtcp2_conn_get_stream_loss_count(conn, stream_id);
        // nghttp3's close callback may drop the last reference: hold one across both calls.
        std::shared_ptr<stream_state> keep;
        if (auto* s = me.find_stream(stream_id)) keep = s->shared_from_this();
        const int rv = nghttp3_conn_close_stream(me.native_->h3, stream_id, app_error_code);
        if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND) return NGTCP2_ERR_CALLBACK_FAILURE;
        // nghttp3 closes an HTTP/3 stream through its own stream_close (h3/callbacks.hpp), which
        // closes ours, except one whose header block waits for QPACK encoder instructions still
        // in flight (lost, on the encoder stream): it keeps that one, delivers the block once they
        // come, and then closes it. Closing it here would fail a complete response. But a stream
        // that ended in error (a reset or STOP_SENDING, ours or the peer's) is not waited for:
        // nobody wants its message any more, and the encoder stream may never unblock it, while
        // nghttp3 keeps it until the connection ends. It closes here, and nghttp3 forgets it.
        const bool h3_keeps = rv == 0 && keep && !keep->raw && !keep->taken_over && !me.terminated_;
        const bool held_by_h3 =
            h3_keeps && keep->recv != recv_state::reset && app_error_code == NGHTTP3_H3_NO_ERROR;
        const bool given_up = h3_keeps && !held_by_h3;
        if (given_up) nghttp3_conn_set_stream_user_data(me.native_->h3, stream_id, nullptr);
        if (keep && held_by_h3 && !keep->quic_closed) keep->held_by_h3 = true;
        if (keep && !keep->quic_closed && !held_by_h3) me.stream_closed(*keep, app_error_code);
        if (given_up) {
            // What nghttp3 holds of it (the blocked block and what follows) is never consumed now:
            // discarded, so its credit comes back; the receive buffer's stays owed to the reader.
            const std::uint64_t owed = me.ledger_.owed(stream_id), buffered = keep->recv_buf.size();
            if (owed > buffered) me.credit(stream_id, static_cast<std::size_t>(owed - buffered));
        }
        me.credit_stream_closed(stream_id, keep.get());
        // The client may open one more request in its place (at most max_concurrent_streams at
        // once): for every stream it opened, whatever came on it, even a reset before HEADERS.
        if (me.role_ == session_role::server && ngtcp2_is_bidi_stream(stream_id) &&
            !ngtcp2_conn_is_local_stream(conn, stream_id) && !me.terminated_)
            ngtcp2_conn_extend_max_streams_bidi(conn, 1);
        // Likewise a unidirectional stream of the peer's beyond its three critical ones (a reserved
        // or GREASE type, RFC 9114 §6.2.3, which nghttp3 stops reading): another may take its place.
        // On 0.12 ngtcp2 never closes them: the stop_sending callback (h3/callbacks.hpp) does it there.
        if (compat::closes_remote_uni_streams && !ngtcp2_is_bidi_stream(stream_id) &&
            !ngtcp2_conn_is_local_stream(conn, stream_id) && !me.terminated_)
            ngtcp2_conn_extend_max_streams_uni(conn, 1);
        return 0;
    }

    /// We let the client open more request streams: nghttp3 checks the IDs PRIORITY_UPDATE names
    /// (RFC 9218 §7.1) against its own count, which must follow ngtcp2's.
    static int extend_max_remote_streams_bidi(ngtcp2_conn*, std::uint64_t max_streams, void* user_data) {
        auto& me = self(user_data);
        if (me.role_ == session_role::server && me.native_->h3)
            nghttp3_conn_set_max_client_streams_bidi(me.native_->h3, max_streams);
        return 0;
    }

    static int stream_reset(ngtcp2_conn*, std::int64_t stream_id, std::uint64_t, std::uint64_t app_error_code,
                            void* user_data, void* sud) {
        auto& me = self(user_data);
        auto* s = state_of(sud);
        if (!(s && s->raw) && nghttp3_conn_shutdown_stream_read(me.native_->h3, stream_id) != 0)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        if (!s) return 0;
        const bool before_request = me.role_ == session_role::server && s->recv == recv_state::headers;
        me.machine_.reset_by_peer(*s, app_error_code);
        // A request reset before its HEADERS were complete will never have a handler to answer
        // it: our side ends too, so that the stream closes and its credit comes back.
        if (before_request)
            me.machine_.reset(*s, NGHTTP3_H3_REQUEST_INCOMPLETE, make_h3_error_code(app_error_code));
        return 0;
    }

    static int stream_stop_sending(ngtcp2_conn*, std::int64_t stream_id, std::uint64_t, void* user_data, void* sud) {
        // Called when WE stop reading (not on the peer's STOP_SENDING, which ngtcp2 answers itself
        // with RESET_STREAM; write_packets sees it as NGTCP2_ERR_STREAM_SHUT_WR).
        if (auto* s = state_of(sud); s && s->raw) return 0;
        return nghttp3_conn_shutdown_stream_read(self(user_data).native_->h3, stream_id) == 0
                   ? 0
                   : NGTCP2_ERR_CALLBACK_FAILURE;
    }

    static int extend_max_stream_data(ngtcp2_conn*, std::int64_t stream_id, std::uint64_t, void* user_data,
                                      void* sud) {
        if (auto* s = state_of(sud); s && s->raw) {
            s->raw_blocked = false;
            return 0;
        }
        return nghttp3_conn_unblock_stream(self(user_data).native_->h3, stream_id) == 0 ? 0
                                                                                         : NGTCP2_ERR_CALLBACK_FAILURE;
    }

    /// A packet with one of our DATAGRAM frames was acknowledged: the path carries our packets, as
    /// for stream data. Without it, a connection whose only data in flight is datagrams for three
    /// PTOs is taken for a path-MTU black hole and kept to 1200-byte packets for good.
    static int ack_datagram(ngtcp2_conn*, std::uint64_t, void* user_data) {
        self(user_data).data_stalled_since_ = 0;
        return 0;
    }

    /// A QUIC DATAGRAM frame: an HTTP/3 datagram (RFC 9297; impl/session_extensions.ipp).
    static int recv_datagram(ngtcp2_conn*, std::uint32_t, const std::uint8_t* data, std::size_t len, void* user_data) {
        return self(user_data).datagram_received(data, len) ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
    }

    static int extend_max_local_streams_bidi(ngtcp2_conn*, std::uint64_t, void* user_data) {
        auto& me = self(user_data);
        me.openers_pending_ = true;  // served before the next flush, not inside a callback
        me.wake_flush();
        return 0;
    }
};

}  // namespace h3co::detail
