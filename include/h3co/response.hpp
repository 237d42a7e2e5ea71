// What a server handler answers with: the status and fields, the body, or the whole stream taken over.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/detail/async_support.hpp>
#include <h3co/detail/stream_ops.hpp>
#include <h3co/http_stream.hpp>
#include <h3co/message.hpp>

#include <asio/any_io_executor.hpp>

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
    /// Sends the status and `headers`. The body may follow with write().
    /// Completion: void(std::error_code); error::already_open if a header was sent already.
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto send_header(int status, const h3co::fields& headers, CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<detail::status_signature>(
            std::forward<CompletionToken>(token), state_, executor_,
            [status, headers](detail::stream_machine& m, detail::stream_state& st, auto op) {
                m.send_response_header(st, status, headers, std::move(op));
            });
    }

    /// Writes response body bytes, waiting for flow control as needed (after send_header()).
    /// Completion: void(std::error_code, std::size_t); error::stream_stopped if the client sent
    /// STOP_SENDING with H3_NO_ERROR.
    template <class ConstBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto write(const ConstBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return body_.write(buffers, std::forward<CompletionToken>(token));
    }

    /// Ends the response body; completes when the client has acknowledged every body byte and the
    /// FIN is handed to QUIC (see basic_http_stream::finish). Completion: void(std::error_code).
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto finish(CompletionToken&& token = CompletionToken{}) {
        return body_.finish(std::forward<CompletionToken>(token));
    }

    /// Takes the stream over (quic-go's HTTPStreamer): after send_header, read what the client sends
    /// next and write back, as raw body bytes, until either side ends. The stream is finished when
    /// the handler returns.
    basic_http_stream<Executor> take_over() { return basic_http_stream<Executor>(state_, executor_, false); }

    /// True once send_header() has started the response. On the connection's executor (where the
    /// handler runs).
    bool header_sent() const noexcept { return state_->send != detail::send_state::idle; }

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
