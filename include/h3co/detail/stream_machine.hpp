// The per-stream operations: what read(), write(), finish(), reset() and the header calls do to a
// stream_state, and what the protocol's events (body bytes, end of stream, resets, ACKs) complete.
// It holds the pending operations and the buffers; the connection under it (stream_transport, the
// session) only sends HEADERS, lets body bytes go, returns flow-control credit and shuts streams.
// No ngtcp2, nghttp3 or socket here: a stream's life can be followed without either.
#pragma once

#include <h3co/detail/buffer_walk.hpp>
#include <h3co/detail/config.hpp>
#include <h3co/detail/pending_op.hpp>
#include <h3co/detail/stream_state.hpp>
#include <h3co/error.hpp>
#include <h3co/message.hpp>

#include <asio/buffer.hpp>
#include <asio/cancellation_type.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

namespace h3co::detail {

/// What the stream machine asks of the connection under it. The session implements it with
/// nghttp3 and ngtcp2.
class stream_transport {
public:
    /// Why no operation can start on `s` (the connection or the stream has ended), or nothing.
    virtual std::error_code stream_unusable(const stream_state& s) const = 0;
    /// Submits HEADERS; the body follows from send_buf as it is written.
    virtual std::error_code submit_request_header(stream_state& s, const request& req) = 0;
    /// Submits exactly `raw` as the header block (tests of how servers treat malformed requests).
    virtual std::error_code submit_raw_request_header(stream_state& s, const fields& raw) = 0;
    /// Submits the final response's HEADERS; `body`: a body follows (else the stream ends with them).
    virtual std::error_code submit_response_header(stream_state& s, int status, const fields& headers, bool body) = 0;
    /// Submits an interim (1xx) response's HEADERS.
    virtual std::error_code submit_interim_header(stream_state& s, int status, const fields& headers) = 0;
    /// Takes `s` out of HTTP/3: its bytes go to QUIC as they are.
    virtual void start_raw_stream(stream_state& s) = 0;
    /// Body bytes or a FIN wait in send_buf: let them go.
    virtual void resume_sending(stream_state& s) = 0;
    /// The application consumed `n` body bytes: the peer may send that many more (and, when it
    /// reads fast enough, more still: the receive window grows).
    virtual void return_credit(stream_state& s, std::size_t n) = 0;
    /// Nobody will read what `s` received so far (its buffer was dropped): all the credit it still
    /// owes goes back, whatever the HTTP/3 layer held of it (detail/credit_ledger.hpp).
    virtual void release_credit(stream_state& s) = 0;
    /// The most `s` may hold written but unacknowledged now: what the congestion window needs.
    virtual std::size_t send_buffer_limit(const stream_state& s) const = 0;
    /// RESET_STREAM (when `send`) and STOP_SENDING (when `recv`) with `app_error_code`.
    virtual void shutdown_stream(stream_state& s, std::uint64_t app_error_code, bool send, bool recv) = 0;

protected:
    ~stream_transport() = default;
};

/// Which pending operation of a stream a cancellation is aimed at.
enum class stream_op_kind { header, response, interim, read, write, finish };

class stream_machine {
public:
    using status_op = pending_op<std::error_code>;
    using head_op = pending_op<std::error_code, response_head>;
    using io_op = stream_state::io_op;

    /// `server`: requests arrive on these streams (body limit `max_request_body`, 431/413 answers).
    stream_machine(stream_transport& transport, bool server, std::uint64_t max_request_body)
        : transport_(transport), server_(server), max_request_body_(max_request_body) {}

    // ---- operations from the public handles (always on the connection's executor) -----------------

    H3CO_DECL void send_request_header(stream_state& s, const request& req, status_op op);
    H3CO_DECL void send_raw_request_header(stream_state& s, const fields& raw, status_op op);
    H3CO_DECL void start_raw(stream_state& s, status_op op);
    /// The final response. For HEAD requests and 204 / 304 it carries no body: the stream ends with
    /// the header, and write() fails with error::not_writable.
    H3CO_DECL void send_response_header(stream_state& s, int status, const fields& headers, status_op op);
    /// An interim response (1xx but 101), before the final one: 103 Early Hints, 100 Continue.
    H3CO_DECL void send_interim_header(stream_state& s, int status, const fields& headers, status_op op);
    H3CO_DECL void read_response(stream_state& s, head_op op);
    /// Client: the next interim (1xx) response, or error::no_interim_response once the final one came.
    H3CO_DECL void read_interim(stream_state& s, head_op op);

    template <class MutableBufferSequence>
    void read(stream_state& s, const MutableBufferSequence& buffers, io_op op) {
        if (s.read_op) return op.complete(make_error_code(error::operation_in_progress), 0);
        s.read_buffers.assign(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
        s.read_op = std::move(op);
        continue_if_expected(s);
        serve_read(s);
    }

    /// `all`: complete only when every byte is buffered (write); else after at least one.
    template <class ConstBufferSequence>
    void write(stream_state& s, const ConstBufferSequence& buffers, bool all, io_op op) {
        if (s.write_op) return op.complete(make_error_code(error::operation_in_progress), 0);
        if (s.send != send_state::open) return op.complete(send_error(s), 0);
        s.write_buffers.assign(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
        s.write_progress = 0;
        s.write_all = all;
        s.write_op = std::move(op);
        serve_write(s);
    }

    /// Ends the body: FIN after the buffered bytes. Completes when the peer has acknowledged them
    /// all and the FIN.
    H3CO_DECL void finish(stream_state& s, status_op op);
    /// finish() with trailer fields after the body. Fields nghttp3 would refuse (a name that is not
    /// a token, such as a pseudo-header; a value with CR, LF, NUL or another control character, or
    /// with white space around it) fail it with error::invalid_request at once; the stream stays
    /// as it was.
    H3CO_DECL void finish_with_trailers(stream_state& s, fields trailers, status_op op);
    /// Aborts both directions with `app_error_code` (RESET_STREAM + STOP_SENDING); pending
    /// operations complete with `reason`.
    H3CO_DECL void reset(stream_state& s, std::uint64_t app_error_code, std::error_code reason);
    /// STOP_SENDING with `app_error_code`: a server that has its answer and does not need the rest of
    /// the body. Unread bytes are dropped and their credit returned.
    H3CO_DECL void stop_reading(stream_state& s, std::uint64_t app_error_code);
    /// Server: the handler takes the stream over (basic_response::take_over()): from now on the
    /// body is whatever DATA frames follow, with no message checks (content-length, body limit).
    H3CO_DECL void take_over(stream_state& s);
    /// An abandoned stream: reset with H3_REQUEST_CANCELLED.
    H3CO_DECL void cancel(stream_state& s);
    /// A cancellation of the pending `kind` operation, as Asio defines its types: terminal resets
    /// the stream (H3_REQUEST_CANCELLED); total ends the operation with operation_aborted only if
    /// it had no effect yet (else it goes on); partial also when what it did is well defined (the
    /// bytes a write buffered stay and go out; a read completes with the bytes it holds).
    H3CO_DECL void cancel(stream_state& s, stream_op_kind kind, asio::cancellation_type type);

    // ---- what the protocol reports (from the session's library callbacks) -------------------------

    /// The peer's HEADERS are complete (`fin`: nothing follows). True when a server should now
    /// start the request's handler. A client holds at most `max_interim` interim responses unread
    /// (connection_options::max_interim_responses); one more resets the stream with
    /// H3_EXCESSIVE_LOAD, and its operations fail with error::excessive_load.
    H3CO_DECL bool headers_complete(stream_state& s, bool fin, std::size_t max_interim);
    /// Body bytes arrived. False when they cannot be held, which flow control forbids.
    H3CO_DECL bool body_received(stream_state& s, const std::uint8_t* data, std::size_t len);
    /// Bytes arrived on a raw stream: they are the body, frames and all.
    H3CO_DECL void raw_received(stream_state& s, const std::uint8_t* data, std::size_t len, bool fin);
    /// The peer's FIN.
    H3CO_DECL void end_of_stream(stream_state& s);
    /// The peer's RESET_STREAM with `app_error_code`.
    H3CO_DECL void reset_by_peer(stream_state& s, std::uint64_t app_error_code);
    /// The peer's STOP_SENDING: nothing more will be taken.
    H3CO_DECL void stopped_by_peer(stream_state& s);
    /// The peer acknowledged `n` more body bytes: they leave the send buffer.
    H3CO_DECL void body_acked(stream_state& s, std::uint64_t n);
    /// The peer acknowledged a frame without body bytes (the FIN, or framing): finish() may be done.
    H3CO_DECL void frame_acked(stream_state& s);
    /// QUIC closed the stream (with `app_error_code` if it was reset).
    H3CO_DECL void closed(stream_state& s, std::uint64_t app_error_code);
    /// The connection ended: everything on `s` fails with `ec`.
    H3CO_DECL void connection_ended(stream_state& s, std::error_code ec);
    /// A header block over the limit: a server answers 431 without running a handler; a client
    /// fails the response with error::header_too_large. Other streams are unaffected.
    H3CO_DECL void refuse_oversized_headers(stream_state& s);
    /// A trailer block over the limit: the body's reader fails with error::header_too_large and the
    /// stream is reset with H3_EXCESSIVE_LOAD. The request or response head stays as it was.
    H3CO_DECL void refuse_oversized_trailers(stream_state& s);
    /// nghttp3 refused our trailers when the body ended: the stream (only) is reset with
    /// H3_INTERNAL_ERROR, and finish() fails with error::invalid_request.
    H3CO_DECL void trailers_unsendable(stream_state& s);

    // ---- body bytes on their way out ---------------------------------------------------------------

    /// Points `vec` at the buffered body bytes not yet handed out, at most `max` spans; returns how
    /// many spans and bytes. `Vec` is nghttp3_vec or ngtcp2_vec ({base, len}).
    template <class Vec>
    static std::pair<std::size_t, std::size_t> unsent(const stream_state& s, Vec* vec, std::size_t max) {
        std::array<std::span<const std::uint8_t>, 16> spans;
        const std::size_t count = s.send_buf.spans(s.submitted, spans.data(), std::min(max, spans.size()));
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < count; ++i) {
            vec[i] = Vec{const_cast<std::uint8_t*>(spans[i].data()), spans[i].size()};
            bytes += spans[i].size();
        }
        return {count, bytes};
    }
    /// `n` more buffered bytes were handed to nghttp3 or QUIC. True when that was the last of a
    /// finished body: the FIN goes with them.
    H3CO_DECL bool hand_out(stream_state& s, std::size_t n);

    /// Reads filled straight from a receive batch's packets complete now, once each (before the
    /// flush that ends the batch).
    H3CO_DECL void complete_filled_reads();
    /// Drops body bytes nobody will read, returning all the flow-control credit the stream owes.
    H3CO_DECL void discard_received(stream_state& s);
    /// The last handle on `s` is gone: a stream still open is reset (H3_REQUEST_CANCELLED); what a
    /// closed one still holds is dropped and its credit returned.
    H3CO_DECL void abandon(stream_state& s);

private:
    static std::error_code send_error(const stream_state& s) {
        if (s.send == send_state::reset && s.send_error) return s.send_error;
        return make_error_code(error::not_writable);
    }

    H3CO_DECL void serve_response(stream_state& s);
    H3CO_DECL void serve_interim(stream_state& s);
    /// Server: a handler reading a request that asked for 100-continue gets it sent first.
    H3CO_DECL void continue_if_expected(stream_state& s);
    H3CO_DECL void serve_read(stream_state& s);
    H3CO_DECL void serve_write(stream_state& s);
    H3CO_DECL void serve_finish(stream_state& s);
    H3CO_DECL void fail_send(stream_state& s, std::error_code ec);
    H3CO_DECL void fail_recv(stream_state& s, std::error_code ec);
    H3CO_DECL void fail_send_ops(stream_state& s, std::error_code ec);
    H3CO_DECL void fail_recv_ops(stream_state& s, std::error_code ec);
    H3CO_DECL void consume(stream_state& s, std::size_t n);
    H3CO_DECL void complete_filled_read(stream_state& s);
    H3CO_DECL bool receive_body(stream_state& s, const std::uint8_t* data, std::size_t len);
    H3CO_DECL void refuse_oversized_body(stream_state& s, std::size_t len);
    H3CO_DECL bool header_may_start(stream_state& s, status_op& op);

    stream_transport& transport_;
    bool server_;
    std::uint64_t max_request_body_;
    std::vector<std::shared_ptr<stream_state>> filling_reads_;  ///< reads to complete before the flush
};

}  // namespace h3co::detail

#if defined(H3CO_HEADER_ONLY)
#include <h3co/detail/impl/stream_machine.ipp>
#endif
