// Everything h3co knows about one HTTP/3 request stream. Both directions of a QUIC stream have
// their own life (RFC 9000 §3), so the state is two explicit enums, one per direction.
#pragma once

#include <h3co/detail/byte_ring.hpp>
#include <h3co/detail/flow_window.hpp>
#include <h3co/detail/h3/fin_tracker.hpp>
#include <h3co/detail/h3/frame_reader.hpp>
#include <h3co/detail/live_count.hpp>
#include <h3co/detail/pending_op.hpp>
#include <h3co/detail/send_buffer.hpp>
#include <h3co/error.hpp>
#include <h3co/message.hpp>

#include <asio/buffer.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

namespace h3co::detail {

class session;

enum class send_state {
    idle,       ///< no HEADERS submitted yet
    open,       ///< HEADERS submitted; body bytes may be written
    finishing,  ///< FIN requested; buffered bytes still to hand to nghttp3
    finished,   ///< the last byte and FIN are handed over
    reset,      ///< we reset the stream or the peer sent STOP_SENDING (see send_error)
};

enum class recv_state {
    headers,  ///< waiting for the peer's HEADERS
    body,     ///< HEADERS received; body bytes arrive into recv_buf
    eof,      ///< the peer's FIN arrived; what is in recv_buf is all there is
    reset,    ///< the peer reset the stream, or we stopped reading (see recv_error)
};

struct stream_state : std::enable_shared_from_this<stream_state> {
    using io_op = pending_op<std::error_code, std::size_t>;

    /// `send_limit`: the send buffer's initial limit; `recv_window`: the initial receive window.
    stream_state(std::weak_ptr<session> owner, std::int64_t stream_id, std::size_t send_limit, std::size_t recv_window)
        : owner(std::move(owner)), id(stream_id), send_buf(send_limit), recv_buf(recv_window), window(recv_window) {}
    stream_state(const stream_state&) = delete;
    stream_state& operator=(const stream_state&) = delete;

    std::weak_ptr<session> owner;
    std::int64_t id;
    send_state send = send_state::idle;
    recv_state recv = recv_state::headers;
    std::error_code send_error;  ///< why sending stopped (reset states)
    std::error_code recv_error;  ///< why receiving stopped
    bool quic_closed = false;    ///< ngtcp2 has closed the stream: no more callbacks for it
    bool blocked_in_h3 = false;  ///< read_data said WOULDBLOCK: resume when bytes arrive
    /// Server: the request's HEADERS arrived before the handshake completed (0-RTT).
    bool early_data = false;
    /// Client, 0-RTT: a request that may not go early waits here for the handshake (nghttp3 has
    /// not seen it yet; its body waits in send_buf).
    std::optional<h3co::request> held_for_handshake;
    /// Client, 0-RTT: the request whose HEADERS went early, kept until the handshake says whether
    /// the server took them, to send again on a fresh stream if it refused the early data.
    std::optional<h3co::request> early_request;
    /// Client: the server refused the 0-RTT this stream went in; `id` is stale (ngtcp2 forgot it and
    /// may reuse the number) until session::resend_rejected() gives it a fresh one after the
    /// handshake. Nothing may reach ngtcp2 or nghttp3 with `id` meanwhile.
    bool awaiting_resend = false;

    // Raw mode (tests of peers' HTTP/3 parsing): the stream bypasses nghttp3; send_buf goes to QUIC
    // as it is, and what the peer sends lands in recv_buf unparsed, frames and all.
    bool raw = false;
    bool raw_blocked = false;  ///< the peer's stream flow-control window is full

    // Taken over by a server handler: what the client sends next is parsed by h3co (DATA frames'
    // payload is the body), no longer by nghttp3, so no message check (content-length) applies.
    // `frames` follows the request stream's framing from its first byte, so the switch can happen
    // anywhere.
    bool taken_over = false;
    /// QUIC closed the stream while nghttp3 still holds its header block, blocked on QPACK encoder
    /// instructions (quic_callbacks::stream_close): nghttp3 closes it once it decodes the block, or
    /// the connection's end does. At most SETTINGS_QPACK_BLOCKED_STREAMS of them per connection.
    bool held_by_h3 = false;
    frame_reader frames;

    // Sending: [0, submitted) of send_buf is handed to nghttp3 and waits for ACK; the rest waits for
    // nghttp3 to ask. nghttp3 keeps pointers into it until ACK: its bytes never move.
    send_buffer send_buf;
    std::size_t submitted = 0;
    std::uint64_t bytes_sent = 0;

    /// Where the FIN is on the QUIC stream and whether the peer acknowledged it: finish() completes
    /// only then.
    fin_tracker fin;
    bool fin_acked() const noexcept { return quic_closed || fin.fin_acked(); }

    // Receiving: body bytes not yet read. Bounded by the stream's flow-control window, because
    // credit is returned only as the application reads.
    byte_ring recv_buf;
    std::uint64_t bytes_received = 0;
    /// The receive window granted to the peer: the most it may send beyond what was read. It grows
    /// as the application reads quickly (session::return_credit), up to the options' maximum.
    flow_window window;

    // Headers in both directions (server: request; client: response).
    request_head request;
    response_head response;
    std::size_t header_bytes = 0;
    bool header_overflow = false;
    bool receiving_trailers = false;         ///< the header block being received is the trailers
    h3co::fields trailers;                   ///< the peer's trailer fields, once they arrived
    std::optional<h3co::fields> trailers_to_send;  ///< ours, sent after the body (finish_with_trailers)
    std::deque<response_head> interim;       ///< client: 1xx responses not yet read (read_interim)
    bool expect_continue = false;            ///< server: the request asked for 100-continue
    bool continue_sent = false;              ///< server: 100 was sent (or a final response made it moot)

    // Pending operations: at most one of each kind.
    io_op read_op;
    std::vector<asio::mutable_buffer> read_buffers;
    std::size_t read_filled = 0;    ///< bytes copied straight into read_buffers, not yet reported
    bool read_fill_listed = false;  ///< in the list of reads to complete before the flush
    io_op write_op;
    std::vector<asio::const_buffer> write_buffers;
    std::size_t write_progress = 0;
    bool write_all = true;
    pending_op<std::error_code> finish_op;
    pending_op<std::error_code, response_head> response_op;
    pending_op<std::error_code, response_head> interim_op;

    // Server request timeouts (session::check_request_timeouts): when the request last moved.
    std::uint64_t progress_mark = 0;  ///< body bytes received + acknowledged, ... at the last check
    std::uint64_t progress_at = 0;    ///< session time it last moved (or stopped waiting on the client)

    bool response_ready() const noexcept { return response.status >= 200; }
    bool fully_closed() const noexcept {
        const bool send_done = send == send_state::finished || send == send_state::reset;
        const bool recv_done = recv == recv_state::eof || recv == recv_state::reset;
        return quic_closed || (send_done && recv_done);
    }

private:
    counted<stream_state> counted_;  ///< h3co::testing::live_stream_states()
};

}  // namespace h3co::detail
