// What a server handler answers with: the status and fields, the body, or the whole stream taken over.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/detail/async_support.hpp>
#include <h3co/detail/stream_ops.hpp>
#include <h3co/http_stream.hpp>
#include <h3co/message.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/dispatch.hpp>

#include <memory>
#include <type_traits>

namespace h3co {

/// The response a handler writes. If the handler returns without a status, 200 is sent; whatever
/// it started is finished when it returns (an exception resets the stream, or answers 500).
/// Threads: as basic_http_stream (operations dispatch; header_sent() is for the executor).
template <class Executor = asio::any_io_executor>
class basic_response {
public:
    using executor_type = Executor;  ///< the executor of the request's connection

    /// \cond H3CO_INTERNAL
    basic_response(std::shared_ptr<detail::stream_state> st, Executor ex)
        : state_(st), executor_(ex), body_(std::move(st), std::move(ex), false) {}
    /// \endcond

    /// The executor of the request's connection.
    executor_type get_executor() const noexcept { return executor_; }

    /// Sends the status without fields. The body may follow with write().
    /// Completion: void(std::error_code); error::already_open if a header was sent already.
    template <class CompletionToken = detail::default_token_t<Executor>>
        requires(!std::is_convertible_v<CompletionToken, const h3co::fields&>)
    auto send_header(int status, CompletionToken&& token = CompletionToken{}) {
        static const h3co::fields none;
        return send_header(status, none, std::forward<CompletionToken>(token));
    }
    /// Sends the final status (200-999) and `headers`. The body may follow with write(), except after
    /// a HEAD request and for 204 and 304, which carry none (RFC 9110 §6.4.1): the stream then ends
    /// with the header, and write() fails with error::not_writable.
    /// Completion: void(std::error_code); error::already_open if a header was sent already,
    /// error::invalid_request for a status below 200 (see send_interim()) or a connection-specific
    /// field (see basic_request_stream::send_header()).
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto send_header(int status, const h3co::fields& headers, CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<detail::status_signature>(
            std::forward<CompletionToken>(token), state_, executor_, detail::stream_op_kind::header,
            [status, headers](detail::stream_machine& m, detail::stream_state& st, auto op) {
                m.send_response_header(st, status, headers, std::move(op));
            });
    }

    /// Sends an interim response before the final one: 103 Early Hints with `headers` (link
    /// fields), or 100 Continue (h3co sends that one by itself when a handler reads a request that
    /// asked for it). Any 1xx but 101. Completion: void(std::error_code); error::already_open once
    /// the final response was sent, error::invalid_request for another status.
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto send_interim(int status, const h3co::fields& headers, CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<detail::status_signature>(
            std::forward<CompletionToken>(token), state_, executor_, detail::stream_op_kind::header,
            [status, headers](detail::stream_machine& m, detail::stream_state& st, auto op) {
                m.send_interim_header(st, status, headers, std::move(op));
            });
    }

    /// Writes response body bytes, waiting for flow control as needed (after send_header()).
    /// Completion: void(std::error_code, std::size_t); error::stream_stopped if the client sent
    /// STOP_SENDING with H3_NO_ERROR.
    template <class ConstBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto write(const ConstBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return body_.write(buffers, std::forward<CompletionToken>(token));
    }

    /// Ends the response body with trailer fields after it (see basic_http_stream::finish_with_trailers).
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto finish_with_trailers(h3co::fields trailers, CompletionToken&& token = CompletionToken{}) {
        return body_.finish_with_trailers(std::move(trailers), std::forward<CompletionToken>(token));
    }

    /// Ends the response body; completes when the client has acknowledged every body byte and the
    /// FIN (see basic_http_stream::finish). Completion: void(std::error_code).
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto finish(CompletionToken&& token = CompletionToken{}) {
        return body_.finish(std::forward<CompletionToken>(token));
    }

    /// Takes the stream over (quic-go's HTTPStreamer): after send_header, read what the client sends
    /// next and write back, as raw body bytes, until either side ends. The stream is finished when
    /// the handler returns.
    ///
    /// From then on what the client sends is no longer an HTTP message: its DATA frames are read as
    /// they come, whatever content-length it announced (a Go client sends `content-length: 0` and
    /// then the body), and max_request_body no longer applies. Call it from the handler.
    basic_http_stream<Executor> take_over() {
        if (!state_) return {};  // a moved-from response: an empty stream, whose operations fail with not_open
        asio::dispatch(executor_, [st = state_] {
            if (auto owner = st->owner.lock()) owner->streams().take_over(*st);
        });
        return basic_http_stream<Executor>(state_, executor_, false);
    }

    /// True once send_header() has started the response. On the connection's executor (where the
    /// handler runs).
    bool header_sent() const noexcept { return state_ && state_->send != detail::send_state::idle; }

private:
    std::shared_ptr<detail::stream_state> state_;
    Executor executor_;
    basic_http_stream<Executor> body_;  ///< the body's byte stream; never resets (the server decides)
};

/// basic_response on asio::any_io_executor.
using response = basic_response<>;

}  // namespace h3co

#if defined(H3CO_SEPARATE_COMPILATION)
// Compiled once, in <h3co/src.hpp>, for the default executor.
namespace h3co {
extern template class basic_response<asio::any_io_executor>;
}  // namespace h3co
#endif
