// stream_machine's non-template functions (see detail/stream_machine.hpp).
#pragma once

#include <h3co/detail/ascii.hpp>
#include <h3co/detail/stream_machine.hpp>

#include <asio/error.hpp>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

namespace h3co::detail {

// The codes RFC 9114 §8.1 gives; h3_error has them, but the engine speaks in raw codes.
inline constexpr std::uint64_t h3_no_error = static_cast<std::uint64_t>(h3_error::no_error);

H3CO_DECL bool stream_machine::header_may_start(stream_state& s, status_op& op) {
    if (s.send != send_state::idle) {
        // A send side that ended (the connection closed, the stream was reset) says why, rather than
        // "already done" for a header that was never sent.
        op.complete(s.send == send_state::reset && s.send_error ? s.send_error : make_error_code(error::already_open));
        return false;
    }
    if (auto ec = transport_.stream_unusable(s)) {
        op.complete(ec);
        return false;
    }
    return true;
}

H3CO_DECL void stream_machine::send_request_header(stream_state& s, const request& req, status_op op) {
    if (!header_may_start(s, op)) return;
    if (auto ec = transport_.submit_request_header(s, req)) return op.complete(ec);
    s.send = send_state::open;
    transport_.resume_sending(s);
    op.complete({});
}

H3CO_DECL void stream_machine::send_raw_request_header(stream_state& s, const fields& raw, status_op op) {
    if (!header_may_start(s, op)) return;
    if (auto ec = transport_.submit_raw_request_header(s, raw)) return op.complete(ec);
    s.send = send_state::open;
    transport_.resume_sending(s);
    op.complete({});
}

H3CO_DECL void stream_machine::start_raw(stream_state& s, status_op op) {
    if (!header_may_start(s, op)) return;
    s.raw = true;
    s.send = send_state::open;
    s.recv = recv_state::body;
    transport_.start_raw_stream(s);
    op.complete({});
}

H3CO_DECL void stream_machine::send_response_header(stream_state& s, int status, const fields& headers, status_op op) {
    if (!header_may_start(s, op)) return;
    if (status < 200 || status > 999) return op.complete(make_error_code(error::invalid_request));
    // RFC 9110 §6.4.1: no content in responses to HEAD, nor in 204 and 304; and a 204 says no
    // content-length either (§8.6), which clients treat as malformed.
    if (status == 204 && headers.find("content-length")) return op.complete(make_error_code(error::invalid_request));
    const bool body = status != 204 && status != 304 && s.request.method != "HEAD";
    if (auto ec = transport_.submit_response_header(s, status, headers, body)) return op.complete(ec);
    s.continue_sent = true;  // a final response makes 100 Continue moot
    s.send = body ? send_state::open : send_state::finished;
    transport_.resume_sending(s);
    op.complete({});
}

H3CO_DECL void stream_machine::send_interim_header(stream_state& s, int status, const fields& headers, status_op op) {
    if (!header_may_start(s, op)) return;
    // 101 Switching Protocols does not exist in HTTP/3 (RFC 9114 §4.5).
    if (status < 100 || status > 199 || status == 101) return op.complete(make_error_code(error::invalid_request));
    if (auto ec = transport_.submit_interim_header(s, status, headers)) return op.complete(ec);
    if (status == 100) s.continue_sent = true;
    transport_.resume_sending(s);
    op.complete({});
}

H3CO_DECL void stream_machine::continue_if_expected(stream_state& s) {
    if (!server_ || !s.expect_continue || s.continue_sent || s.send != send_state::idle) return;
    s.continue_sent = true;
    if (transport_.stream_unusable(s)) return;
    if (!transport_.submit_interim_header(s, 100, {})) transport_.resume_sending(s);
}

H3CO_DECL void stream_machine::read_interim(stream_state& s, head_op op) {
    if (s.interim_op) return op.complete(make_error_code(error::operation_in_progress), {});
    s.interim_op = std::move(op);
    serve_interim(s);
}

H3CO_DECL void stream_machine::read_response(stream_state& s, head_op op) {
    if (s.response_op) return op.complete(make_error_code(error::operation_in_progress), {});
    s.response_op = std::move(op);
    serve_response(s);
}

// RFC 9110 §5.6.2's tchar. ':' is none, so no pseudo-header passes.
inline constexpr bool is_field_name_char(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// What nghttp3 will encode (names are lowercased when encoded), checked when finish_with_trailers
// is called: one refused later could only end the stream with a reset.
inline bool sendable_trailer_field(const field& f) noexcept {
    if (f.name.empty() || !std::all_of(f.name.begin(), f.name.end(), is_field_name_char)) return false;
    const std::string_view v = f.value;
    const auto ws = [](char c) { return c == ' ' || c == '\t'; };
    if (!v.empty() && (ws(v.front()) || ws(v.back()))) return false;
    return std::none_of(v.begin(), v.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return (u < 0x20 && u != '\t') || u == 0x7f;  // CR, LF, NUL and the other controls
    });
}

H3CO_DECL void stream_machine::finish_with_trailers(stream_state& s, fields trailers, status_op op) {
    if (!std::all_of(trailers.begin(), trailers.end(), sendable_trailer_field))
        return op.complete(make_error_code(error::invalid_request));
    if (s.send != send_state::open || s.raw) return finish(s, std::move(op));  // finish() tells why not
    if (s.finish_op || s.write_op) return op.complete(make_error_code(error::operation_in_progress));
    s.trailers_to_send = std::move(trailers);
    finish(s, std::move(op));
}

H3CO_DECL void stream_machine::finish(stream_state& s, status_op op) {
    if (s.finish_op) return op.complete(make_error_code(error::operation_in_progress));
    if (s.send == send_state::idle || s.send == send_state::reset) return op.complete(send_error(s));
    if (s.send == send_state::open) {
        if (s.write_op) return op.complete(make_error_code(error::operation_in_progress));
        s.send = send_state::finishing;
        transport_.resume_sending(s);
    }
    s.finish_op = std::move(op);
    serve_finish(s);
}

H3CO_DECL void stream_machine::reset(stream_state& s, std::uint64_t app_error_code, std::error_code reason) {
    const bool send_open = s.send != send_state::reset && s.send != send_state::finished;
    const bool recv_open = s.recv != recv_state::reset && s.recv != recv_state::eof;
    if (send_open || recv_open) transport_.shutdown_stream(s, app_error_code, send_open, recv_open);
    if (send_open) fail_send(s, reason);
    // A reset stream's buffered bytes are dropped, a complete body's too: reads fail with `reason`.
    discard_received(s);
    if (s.recv != recv_state::reset) fail_recv(s, reason);
    fail_send_ops(s, reason);
    fail_recv_ops(s, reason);
}

H3CO_DECL void stream_machine::stop_reading(stream_state& s, std::uint64_t app_error_code) {
    // After the FIN (or a reset) there is nothing to stop, but what is buffered is still dropped.
    discard_received(s);
    if (s.recv == recv_state::eof || s.recv == recv_state::reset) return;
    transport_.shutdown_stream(s, app_error_code, false, true);
    fail_recv(s, h3co::end_of_stream());
}

H3CO_DECL void stream_machine::take_over(stream_state& s) { s.taken_over = true; }

H3CO_DECL void stream_machine::cancel(stream_state& s) {
    reset(s, static_cast<std::uint64_t>(h3_error::request_cancelled), make_error_code(asio::error::operation_aborted));
}

H3CO_DECL void stream_machine::abandon(stream_state& s) {
    if (s.fully_closed())
        discard_received(s);  // a complete message nobody read: its credit is still owed
    else
        cancel(s);
}

H3CO_DECL void stream_machine::cancel(stream_state& s, stream_op_kind kind, asio::cancellation_type type) {
    using ct = asio::cancellation_type;
    if ((type & ct::terminal) != ct::none) return cancel(s);
    const bool partial_ok = (type & ct::partial) != ct::none;
    const auto aborted = make_error_code(asio::error::operation_aborted);
    switch (kind) {
    case stream_op_kind::response:  // waiting for the response changes nothing
        if (s.response_op) s.response_op.complete(aborted, {});
        return;
    case stream_op_kind::interim:  // likewise: an interim response that comes later is skipped
        if (s.interim_op) s.interim_op.complete(aborted, {});
        return;
    case stream_op_kind::read:  // unread bytes stay for the next read; bytes already handed over are kept
        if (s.read_op && (s.read_filled == 0 || partial_ok)) {
            const std::size_t n = std::exchange(s.read_filled, 0);
            s.read_op.complete(aborted, n);
        }
        return;
    case stream_op_kind::write:  // what was buffered stays and goes out; the rest is not written
        if (s.write_op && (s.write_progress == 0 || partial_ok)) s.write_op.complete(aborted, s.write_progress);
        return;
    case stream_op_kind::finish:  // the FIN was requested and will go: only the wait ends
        if (s.finish_op && partial_ok) s.finish_op.complete(aborted);
        return;
    case stream_op_kind::header:  // completes at once: nothing pending to cancel
        return;
    }
}

// ---- protocol events ----------------------------------------------------------------------------

H3CO_DECL bool stream_machine::headers_complete(stream_state& s, bool fin, std::size_t max_interim) {
    if (s.header_overflow) {
        refuse_oversized_headers(s);
        return false;
    }
    if (!server_ && s.response.status < 200) {  // interim: keep it for read_interim, wait for the final one
        s.interim.push_back(s.response);
        serve_interim(s);
        if (s.interim.size() > max_interim) {  // a server must not grow our memory with endless 1xx
            s.interim.clear();
            reset(s, static_cast<std::uint64_t>(h3_error::excessive_load), make_error_code(error::excessive_load));
        }
        return false;
    }
    if (s.recv == recv_state::headers) s.recv = fin ? recv_state::eof : recv_state::body;
    if (server_) {
        if (auto expect = s.request.headers.find("expect")) s.expect_continue = ascii_iequals(*expect, "100-continue");
        return true;
    }
    serve_response(s);
    serve_interim(s);
    return false;
}

H3CO_DECL bool stream_machine::body_received(stream_state& s, const std::uint8_t* data, std::size_t len) {
    if (s.recv != recv_state::body) {
        transport_.release_credit(s);  // nobody will read these bytes (we stopped reading): their credit goes back now
        return true;
    }
    if (server_ && !s.taken_over && s.bytes_received + len > max_request_body_) {
        refuse_oversized_body(s, len);
        return true;
    }
    // Flow control bounds what the peer may send to what we have room for.
    if (!receive_body(s, data, len)) return false;
    if (s.read_filled == 0) serve_read(s);  // a read being filled completes before the flush
    return true;
}

H3CO_DECL void stream_machine::raw_received(stream_state& s, const std::uint8_t* data, std::size_t len, bool fin) {
    if (s.recv == recv_state::body) {
        if (!receive_body(s, data, len)) {  // flow control makes this impossible
            reset(s, static_cast<std::uint64_t>(h3_error::internal_error), make_error_code(error::protocol_error));
            return;
        }
        if (fin) s.recv = recv_state::eof;
    } else {
        transport_.release_credit(s);
    }
    if (s.read_filled == 0 || s.recv != recv_state::body) serve_read(s);
}

H3CO_DECL void stream_machine::end_of_stream(stream_state& s) {
    if (s.recv == recv_state::body || s.recv == recv_state::headers) s.recv = recv_state::eof;
    serve_response(s);
    serve_interim(s);
    serve_read(s);
}

H3CO_DECL void stream_machine::reset_by_peer(stream_state& s, std::uint64_t app_error_code) {
    if (s.recv == recv_state::reset) return discard_received(s);  // we stopped or reset first: nothing is read
    if (s.recv == recv_state::eof) return;  // the body was complete: RFC 9000 §3.2 lets the reset be ignored
    fail_recv(s, make_h3_error_code(app_error_code));
    // Bytes already buffered are dropped: a reset stream's data is not to be trusted as complete.
    discard_received(s);
    serve_response(s);
    serve_interim(s);
    serve_read(s);
}

H3CO_DECL void stream_machine::stopped_by_peer(stream_state& s) {
    if (s.send == send_state::reset || s.send == send_state::finished) return;
    fail_send(s, make_error_code(error::stream_stopped));
    serve_write(s);
    serve_finish(s);
}

H3CO_DECL void stream_machine::body_acked(stream_state& s, std::uint64_t n) {
    s.send_buf.consume(n);
    s.submitted -= std::min<std::size_t>(s.submitted, n);
    serve_write(s);
    serve_finish(s);
}

H3CO_DECL void stream_machine::frame_acked(stream_state& s) { serve_finish(s); }

H3CO_DECL void stream_machine::closed(stream_state& s, std::uint64_t app_error_code) {
    s.quic_closed = true;
    // Closed with our send side still open: the peer stopped reading (with H3_NO_ERROR when it
    // simply had its answer) or reset the stream.
    const auto code = make_h3_error_code(app_error_code);
    if (s.send == send_state::open || s.send == send_state::finishing || s.send == send_state::idle)
        fail_send(s, app_error_code == h3_no_error ? make_error_code(error::stream_stopped) : code);
    if (s.recv == recv_state::headers || s.recv == recv_state::body) fail_recv(s, code);
    s.send_buf.release();  // QUIC is done with the stream: nothing will be sent again
    serve_response(s);
    serve_interim(s);
    serve_read(s);
    serve_write(s);
    serve_finish(s);
}

H3CO_DECL void stream_machine::connection_ended(stream_state& s, std::error_code ec) {
    s.quic_closed = true;
    if (s.send != send_state::finished && s.send != send_state::reset) fail_send(s, ec);
    if (s.recv != recv_state::eof && s.recv != recv_state::reset) fail_recv(s, ec);
    fail_send_ops(s, ec);
    fail_recv_ops(s, ec);
    s.send_buf.release();
}

H3CO_DECL void stream_machine::refuse_oversized_headers(stream_state& s) {
    s.request = request_head{};
    s.response = response_head{};
    if (server_ && s.send == send_state::idle) {
        send_response_header(s, 431, {}, status_op());
        stop_reading(s, h3_no_error);
        finish(s, status_op());
        return;
    }
    reset(s, static_cast<std::uint64_t>(h3_error::excessive_load), make_error_code(error::header_too_large));
}

H3CO_DECL void stream_machine::refuse_oversized_trailers(stream_state& s) {
    // The head is left alone: a running handler holds it, and views into it, for its whole life.
    s.trailers.clear();
    if (s.recv != recv_state::headers && s.recv != recv_state::body) return;  // nobody reads on
    reset(s, static_cast<std::uint64_t>(h3_error::excessive_load), make_error_code(error::header_too_large));
}

H3CO_DECL void stream_machine::trailers_unsendable(stream_state& s) {
    s.trailers_to_send.reset();
    // hand_out() took the body as finished, but its FIN was to go with the trailers: the send side
    // is still open, and reset() must end it.
    if (s.send == send_state::finished) s.send = send_state::finishing;
    reset(s, static_cast<std::uint64_t>(h3_error::internal_error), make_error_code(error::invalid_request));
}

H3CO_DECL void stream_machine::refuse_oversized_body(stream_state& s, std::size_t) {
    fail_recv(s, make_error_code(error::body_too_large));
    discard_received(s);  // these bytes and any before them
    transport_.shutdown_stream(s, h3_no_error, false, true);
    if (s.send == send_state::idle) {
        send_response_header(s, 413, {}, status_op());
        finish(s, status_op());
    }
    serve_read(s);
}

// ---- sending ------------------------------------------------------------------------------------

H3CO_DECL bool stream_machine::hand_out(stream_state& s, std::size_t n) {
    s.submitted += n;
    s.bytes_sent += n;
    if (s.send != send_state::finishing || s.submitted != s.send_buf.size()) return false;
    s.send = send_state::finished;
    // With every byte already acknowledged no ACK callback will come to finish the wait.
    serve_finish(s);
    return true;
}

// ---- receiving ----------------------------------------------------------------------------------

H3CO_DECL bool stream_machine::receive_body(stream_state& s, const std::uint8_t* data, std::size_t len) {
    // While a read waits and nothing is queued before them, the bytes are copied straight into its
    // buffers (one copy; their credit goes back at once). The read then completes when its buffers
    // are full or before the next flush, so one completion carries a whole receive batch.
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
            s.read_fill_listed = true;
            filling_reads_.push_back(s.shared_from_this());
        }
    }
    return s.recv_buf.write(data, len) == len;
}

H3CO_DECL void stream_machine::complete_filled_read(stream_state& s) {
    const std::size_t n = s.read_filled;
    s.read_filled = 0;
    s.read_op.complete({}, n);
}

H3CO_DECL void stream_machine::complete_filled_reads() {
    for (auto& st : filling_reads_) {
        st->read_fill_listed = false;
        if (st->read_op && st->read_filled > 0) complete_filled_read(*st);
    }
    filling_reads_.clear();
}

H3CO_DECL void stream_machine::discard_received(stream_state& s) {
    s.recv_buf.consume(s.recv_buf.size());
    transport_.release_credit(s);
}

H3CO_DECL void stream_machine::consume(stream_state& s, std::size_t n) {
    if (n > 0) transport_.return_credit(s, n);
}

// ---- completing what can complete; each runs after any change that might unblock it -------------

H3CO_DECL void stream_machine::serve_response(stream_state& s) {
    if (!s.response_op) return;
    if (s.response_ready()) return s.response_op.complete({}, s.response);
    if (s.recv == recv_state::reset) return s.response_op.complete(s.recv_error, {});
    if (s.recv == recv_state::eof) return s.response_op.complete(h3co::end_of_stream(), {});
    if (s.quic_closed) s.response_op.complete(make_error_code(error::connection_closed), {});
}

H3CO_DECL void stream_machine::serve_interim(stream_state& s) {
    if (!s.interim_op) return;
    if (!s.interim.empty()) {
        auto head = std::move(s.interim.front());
        s.interim.pop_front();
        return s.interim_op.complete({}, std::move(head));
    }
    if (s.response_ready() || s.recv == recv_state::eof) return s.interim_op.complete(make_error_code(error::no_interim_response), {});
    if (s.recv == recv_state::reset) return s.interim_op.complete(s.recv_error, {});
    if (s.quic_closed) s.interim_op.complete(make_error_code(error::connection_closed), {});
}

H3CO_DECL void stream_machine::serve_read(stream_state& s) {
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
    case recv_state::eof: return s.read_op.complete(h3co::end_of_stream(), 0);
    case recv_state::reset: return s.read_op.complete(s.recv_error, 0);
    }
}

H3CO_DECL void stream_machine::serve_write(stream_state& s) {
    if (!s.write_op) return;
    if (s.send != send_state::open) return s.write_op.complete(send_error(s), s.write_progress);
    s.send_buf.set_limit(transport_.send_buffer_limit(s));
    const std::size_t taken = for_each_buffer_from(
        s.write_buffers, s.write_progress, [&](const void* p, std::size_t n) { return s.send_buf.write(p, n); });
    s.write_progress += taken;
    if (taken > 0) transport_.resume_sending(s);
    const bool done = s.write_progress == asio::buffer_size(s.write_buffers);
    if (done || (!s.write_all && s.write_progress > 0)) s.write_op.complete({}, s.write_progress);
}

H3CO_DECL void stream_machine::serve_finish(stream_state& s) {
    if (!s.finish_op) return;
    if (s.send == send_state::reset) return s.finish_op.complete(send_error(s));
    if (s.send == send_state::finished && s.send_buf.empty() && s.fin_acked()) s.finish_op.complete({});
}

H3CO_DECL void stream_machine::fail_send(stream_state& s, std::error_code ec) {
    s.send = send_state::reset;
    if (!s.send_error) s.send_error = ec;
}

H3CO_DECL void stream_machine::fail_recv(stream_state& s, std::error_code ec) {
    s.recv = recv_state::reset;
    if (!s.recv_error) s.recv_error = ec;
}

H3CO_DECL void stream_machine::fail_send_ops(stream_state& s, std::error_code ec) {
    if (s.write_op) s.write_op.complete(ec, s.write_progress);
    if (s.finish_op) s.finish_op.complete(ec);
}

H3CO_DECL void stream_machine::fail_recv_ops(stream_state& s, std::error_code ec) {
    if (s.response_op) s.response_op.complete(ec, {});
    if (s.interim_op) s.interim_op.complete(ec, {});
    if (s.read_op && s.read_filled > 0)
        complete_filled_read(s);  // bytes it holds first; the next read gets the error
    else if (s.read_op && s.recv_buf.empty())
        s.read_op.complete(ec, 0);
}

}  // namespace h3co::detail
