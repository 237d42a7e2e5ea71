// What basic_client::request() completes with: the response's head, and the stream its body comes on.
#pragma once

#include <h3co/detail/async_support.hpp>
#include <h3co/message.hpp>
#include <h3co/request_stream.hpp>

#include <asio/any_io_executor.hpp>

#include <utility>

namespace h3co {

/// A response: status and fields, plus the stream to read its body from.
template <class Executor = asio::any_io_executor>
class basic_client_response {
public:
    int status = 0;        ///< the final status (interim 1xx responses are skipped)
    h3co::fields headers;  ///< the response's fields
    /// The request stream; read the response body from it. Dropping it before the exchange is over
    /// cancels the request.
    basic_request_stream<Executor> body;

    /// Reads at least one byte of the response body: `body.read_some()`, see
    /// basic_http_stream::read_some(). Completion: void(std::error_code, std::size_t);
    /// h3co::error::eof at the end of the body.
    template <class MutableBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto read_some(const MutableBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return body.read_some(buffers, std::forward<CompletionToken>(token));
    }
};

/// basic_client_response on asio::any_io_executor.
using client_response = basic_client_response<>;

}  // namespace h3co
