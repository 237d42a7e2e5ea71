// A client request stream under the caller's direct control (the seed's second program):
// send_header, read_response (the server may refuse before any body moves), write, finish.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/http_stream.hpp>
#include <h3co/message.hpp>

namespace h3co {

/// A client request stream under the caller's direct control, opened by
/// basic_connection::open_request_stream(): send_header(), then write() the body and finish() it,
/// while read_response() and read_some() take the answer whenever it comes. Dropping a stream that
/// is still open resets it (H3_REQUEST_CANCELLED), so a half-sent body never passes for a whole one.
template <class Executor = asio::any_io_executor>
class basic_request_stream : public basic_http_stream<Executor> {
    using base = basic_http_stream<Executor>;

public:
    /// The same stream type on another executor type (Asio's rebind_executor convention).
    template <class Other>
    struct rebind_executor {
        using other = basic_request_stream<Other>;  ///< basic_request_stream<Other>
    };

    /// No stream: is_open() is false.
    basic_request_stream() = default;
    /// \cond H3CO_INTERNAL
    basic_request_stream(std::shared_ptr<detail::stream_state> state, Executor ex) : base(std::move(state), std::move(ex)) {}
    /// \endcond

    /// Sends the request's HEADERS. The body stays open: write() it, then finish(); for a request
    /// without a body call finish() right away. Completion: void(std::error_code);
    /// error::invalid_request for a missing method or authority or a connection-specific field
    /// (connection, keep-alive, proxy-connection, transfer-encoding, upgrade, and te other than
    /// "trailers": RFC 9114 §4.2), error::already_open if a header
    /// was sent already. An extended CONNECT (request::protocol) first waits for the server's
    /// SETTINGS: error::not_negotiated unless the server offered it (RFC 9220).
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto send_header(const request& req, CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<detail::status_signature>(
            std::forward<CompletionToken>(token), this->state_, this->executor_, detail::stream_op_kind::header,
            [req, ex = this->executor_](detail::stream_machine& m, detail::stream_state& st, auto op) {
                if (!req.protocol.empty()) return detail::send_extended_connect(st, ex, req, std::move(op));
                m.send_request_header(st, req, std::move(op));
            });
    }

    /// Waits for the final response's status and fields (interim 1xx responses are skipped). Works
    /// before, during or after the body: the server may answer at any time.
    /// Completion: void(std::error_code, response_head); if the server reset the stream, its code
    /// in h3_category(); error::header_too_large beyond connection_options::max_header_bytes.
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto read_response(CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<void(std::error_code, response_head)>(
            std::forward<CompletionToken>(token), this->state_, this->executor_, detail::stream_op_kind::response,
            [](detail::stream_machine& m, detail::stream_state& st, auto op) { m.read_response(st, std::move(op)); });
    }

    /// Waits for the next interim (1xx) response, such as 100 Continue after a request sent with
    /// `expect: 100-continue`, or 103 Early Hints. Completion: void(std::error_code, response_head);
    /// error::no_interim_response once the final response has arrived instead (read_response()
    /// then gets it). read_response() skips interim responses whether or not they were read here.
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto read_interim(CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_stream_op<void(std::error_code, response_head)>(
            std::forward<CompletionToken>(token), this->state_, this->executor_, detail::stream_op_kind::interim,
            [](detail::stream_machine& m, detail::stream_state& st, auto op) { m.read_interim(st, std::move(op)); });
    }

    /// A second handle on the same stream that never resets it when dropped (for a body pump).
    basic_http_stream<Executor> share() const { return basic_http_stream<Executor>(this->state_, this->executor_, false); }
};

/// basic_request_stream on asio::any_io_executor.
using request_stream = basic_request_stream<>;

}  // namespace h3co

#if defined(H3CO_SEPARATE_COMPILATION)
// Compiled once, in <h3co/src.hpp>, for the default executor.
namespace h3co {
extern template class basic_request_stream<asio::any_io_executor>;
}  // namespace h3co
#endif
