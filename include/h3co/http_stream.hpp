// A request stream's body bytes as a plain byte stream, both directions: what a server gets when it
// takes a stream over (quic-go's HTTPStreamer), and the body half of a client's request stream.
// Models Asio's AsyncReadStream and AsyncWriteStream, so asio::async_read / async_write work on it.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/detail/async_support.hpp>
#include <h3co/detail/extension_ops.hpp>
#include <h3co/detail/handle_access.hpp>
#include <h3co/detail/stream_ops.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/dispatch.hpp>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace h3co {

namespace detail {
/// What a handle without a stream reports as its fields: none.
inline const h3co::fields no_fields{};
}  // namespace detail

/// A request stream's body bytes in both directions, as a byte stream: the body half of a
/// client's basic_request_stream, and what a server handler gets from basic_response::take_over().
/// Models Asio's AsyncReadStream and AsyncWriteStream. Move-only.
///
/// Operations take any completion token; a handler's associated executor and cancellation slot are
/// honoured, its associated allocator is not (one heap allocation per operation, docs/design.md).
///
/// One read and one write (or finish) may be pending at a time; another of the same kind fails
/// with error::operation_in_progress. An operation on a stream whose connection has ended completes
/// with error::connection_closed (or the connection's close error); cancelling a pending operation
/// resets the stream.
///
/// Threads: every operation, reset() and the destructor may be called from any thread: they
/// dispatch onto the connection's executor, where the stream lives. Emit cancellation signals on
/// that executor too (as Asio asks of its own objects; a coroutine running there does it when it
/// uses awaitable operators or timeouts). bytes_received() and bytes_sent() are for that executor
/// only; get_executor(), is_open() and id() are fixed and may be read anywhere.
template <class Executor = asio::any_io_executor>
class basic_http_stream {
public:
    using executor_type = Executor;  ///< the executor of the stream's connection
    /// The same stream type on another executor type (Asio's rebind_executor convention).
    template <class Other>
    struct rebind_executor {
        using other = basic_http_stream<Other>;  ///< basic_http_stream<Other>
    };

    /// No stream: is_open() is false.
    basic_http_stream() = default;
    /// Takes the stream over; `other` is left without one.
    basic_http_stream(basic_http_stream&&) noexcept = default;
    /// Drops this handle's stream as the destructor does, then takes over `other`'s.
    basic_http_stream& operator=(basic_http_stream&& other) noexcept {
        if (this != &other) {
            abandon();
            state_ = std::move(other.state_);
            executor_ = std::move(other.executor_);
            reset_on_destroy_ = other.reset_on_destroy_;
        }
        return *this;
    }
    /// A stream dropped while still open is reset (H3_REQUEST_CANCELLED): the peer never mistakes
    /// an abandoned body for a complete one. What a closed one received and nobody read is dropped
    /// (its flow-control credit goes back to the connection).
    ~basic_http_stream() { abandon(); }

    /// The executor of the stream's connection.
    executor_type get_executor() const noexcept { return executor_; }
    /// True while the handle refers to a stream (not default-constructed or moved from). Stays true
    /// after the stream ended: the next operation reports how it ended.
    bool is_open() const noexcept { return state_ != nullptr; }
    /// The QUIC stream ID.
    std::int64_t id() const noexcept { return state_ ? state_->id : -1; }

    /// Reads at least one body byte. At the end of the body: h3co::error::eof. If the peer reset the
    /// stream: its code, in h3_category(). Completion: void(std::error_code, std::size_t).
    template <class MutableBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto read_some(const MutableBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<detail::io_signature>(
            std::forward<CompletionToken>(token), state_, executor_, detail::stream_op_kind::read,
            [buffers](detail::stream_machine& m, detail::stream_state& st, auto op) { m.read(st, buffers, std::move(op)); });
    }
    /// read_some() under its AsyncReadStream name, for asio::async_read and friends.
    template <class MutableBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return read_some(buffers, std::forward<CompletionToken>(token));
    }

    /// Writes all of `buffers` into the stream's send buffer, waiting while it is full: the wait is
    /// the peer's flow control reaching back to the writer. Completion: void(std::error_code,
    /// std::size_t). Fails with error::stream_stopped if the peer sent STOP_SENDING with
    /// H3_NO_ERROR, with the peer's code if it reset the stream.
    template <class ConstBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto write(const ConstBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<detail::io_signature>(
            std::forward<CompletionToken>(token), state_, executor_, detail::stream_op_kind::write,
            [buffers](detail::stream_machine& m, detail::stream_state& st, auto op) { m.write(st, buffers, true, std::move(op)); });
    }
    /// Writes at least one byte, as much as fits in the send buffer (AsyncWriteStream).
    /// Completion: void(std::error_code, std::size_t).
    template <class ConstBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto async_write_some(const ConstBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<detail::io_signature>(
            std::forward<CompletionToken>(token), state_, executor_, detail::stream_op_kind::write,
            [buffers](detail::stream_machine& m, detail::stream_state& st, auto op) { m.write(st, buffers, false, std::move(op)); });
    }

    /// Ends what we send (FIN). Completes once the peer has acknowledged every body byte and the
    /// FIN. ngtcp2 (0.12 and 1.x) has no event for the FIN's acknowledgement: h3co derives it from
    /// the acknowledged stream frames (docs/design.md, "Limits on both stacks").
    /// Completion: void(std::error_code).
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto finish(CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<detail::status_signature>(
            std::forward<CompletionToken>(token), state_, executor_, detail::stream_op_kind::finish,
            [](detail::stream_machine& m, detail::stream_state& st, auto op) { m.finish(st, std::move(op)); });
    }

    /// finish() with trailer fields: they follow the body, and the FIN goes with them.
    /// Completion: void(std::error_code); error::invalid_request for a field h3co cannot send.
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto finish_with_trailers(h3co::fields trailers, CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<detail::status_signature>(
            std::forward<CompletionToken>(token), state_, executor_, detail::stream_op_kind::finish,
            [trailers = std::move(trailers)](detail::stream_machine& m, detail::stream_state& st, auto op) mutable {
                m.finish_with_trailers(st, std::move(trailers), std::move(op));
            });
    }

    /// The trailer fields the peer sent after the body (empty if none), complete once a read has
    /// reported the end of the stream. Call it on the connection's executor. Empty on a handle
    /// without a stream (default-constructed or moved from).
    const h3co::fields& trailers() const noexcept { return state_ ? state_->trailers : detail::no_fields; }

    /// Aborts both directions with an HTTP/3 error code the peer sees (default H3_REQUEST_CANCELLED).
    /// Any thread: it runs on the connection's executor (at once when called there).
    void reset(h3_error code = h3_error::request_cancelled) {
        if (!state_) return;
        asio::dispatch(executor_, [st = state_, code] {
            if (auto owner = st->owner.lock())
                owner->streams().reset(*st, static_cast<std::uint64_t>(code), make_error_code(asio::error::operation_aborted));
        });
    }

    /// Body bytes received so far on this stream. On the connection's executor.
    std::uint64_t bytes_received() const noexcept { return state_ ? state_->bytes_received : 0; }
    /// Body bytes handed to QUIC so far on this stream. On the connection's executor.
    std::uint64_t bytes_sent() const noexcept { return state_ ? state_->bytes_sent : 0; }

    // ---- HTTP/3 datagrams (RFC 9297): unreliable messages bound to this request stream ----------
    // Both peers must offer them (connection_options::h3_datagrams; nghttp3 >= 1.0, see
    // h3co::stack()). Each call first waits for the peer's SETTINGS. Errors: error::not_supported
    // on a stack without them, error::not_negotiated when either peer does not offer them, and once
    // the stream is closed error::eof (or the code it was reset with). Cancelling a pending
    // datagram operation completes it with operation_aborted; the stream goes on.

    /// Sends `payload` (copied at once) as one HTTP/3 datagram. Completes when it is queued for
    /// the next packet, waiting while connection_options::datagram_send_queue datagrams wait;
    /// whether it arrives is not reported (datagrams are unreliable). error::datagram_too_large
    /// when it exceeds the peer's limit or what a packet on the path carries now (about 1150 bytes
    /// before path-MTU discovery). Completion: void(std::error_code).
    template <class ConstBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto send_datagram(const ConstBufferSequence& payload, CompletionToken&& token = CompletionToken{}) {
        std::vector<std::uint8_t> bytes(asio::buffer_size(payload));
        asio::buffer_copy(asio::buffer(bytes), payload);
        return detail::initiate_datagram_op<detail::status_signature>(
            std::forward<CompletionToken>(token), state_, executor_,
            [bytes = std::move(bytes)](detail::session& s, detail::stream_state& st, auto op, std::uint64_t id) mutable {
                s.send_datagram(st, std::move(bytes), std::move(op), id);
            });
    }

    /// Receives the next HTTP/3 datagram of this stream into `buffers`, waiting for one. Datagrams
    /// that arrive with none pending wait in a queue of connection_options::datagram_receive_queue;
    /// beyond it they are dropped (connection_stats::datagrams_dropped). A datagram larger than
    /// `buffers` fills them and completes with error::datagram_truncated.
    /// Completion: void(std::error_code, std::size_t bytes).
    template <class MutableBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto receive_datagram(const MutableBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        std::vector<asio::mutable_buffer> spans(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
        return detail::initiate_datagram_op<detail::io_signature>(
            std::forward<CompletionToken>(token), state_, executor_,
            [spans = std::move(spans)](detail::session& s, detail::stream_state& st, auto op, std::uint64_t id) mutable {
                s.receive_datagram(st, std::move(spans), std::move(op), id);
            });
    }

    /// \cond H3CO_INTERNAL
protected:
    friend struct detail::handle_access;
    template <class>
    friend class basic_request_stream;
    template <class>
    friend class basic_response;
    template <class>
    friend class basic_server_request;

    basic_http_stream(std::shared_ptr<detail::stream_state> state, Executor ex, bool reset_on_destroy = true)
        : state_(std::move(state)), executor_(std::move(ex)), reset_on_destroy_(reset_on_destroy) {}

    void abandon() {
        if (!state_) return;
        auto st = std::move(state_);
        if (!reset_on_destroy_) return;
        asio::dispatch(executor_, [st] {
            if (auto owner = st->owner.lock()) owner->streams().abandon(*st);
        });
    }

    std::shared_ptr<detail::stream_state> state_;
    Executor executor_;
    bool reset_on_destroy_ = true;
    /// \endcond
};

/// basic_http_stream on asio::any_io_executor.
using http_stream = basic_http_stream<>;

}  // namespace h3co

#if defined(H3CO_SEPARATE_COMPILATION)
// Compiled once, in <h3co/src.hpp>, for the default executor.
namespace h3co {
extern template class basic_http_stream<asio::any_io_executor>;
}  // namespace h3co
#endif
