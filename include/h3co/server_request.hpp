// What a server handler receives: the request's head, and its body to read as it arrives.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/detail/async_support.hpp>
#include <h3co/http_stream.hpp>
#include <h3co/message.hpp>
#include <h3co/stats.hpp>
#include <h3co/tls.hpp>

#include <asio/any_io_executor.hpp>

#include <memory>
#include <string>

namespace h3co {

/// The request a handler receives: its head, and its body to read as it arrives. The head (method,
/// path, fields, stream_id) is fixed before the handler starts and may be read from any thread;
/// read_some() dispatches onto the connection's executor; connection_stats() is for that executor.
template <class Executor = asio::any_io_executor>
class basic_server_request {
public:
    using executor_type = Executor;  ///< the executor of the request's connection

    /// \cond H3CO_INTERNAL
    basic_server_request(std::shared_ptr<detail::stream_state> st, Executor ex)
        : state_(st), executor_(ex), body_(std::move(st), std::move(ex), false) {}
    /// \endcond

    /// The executor of the request's connection.
    executor_type get_executor() const noexcept { return executor_; }
    /// The whole request head: method, scheme, authority, path and fields.
    const request_head& head() const noexcept { return state_ ? state_->request : no_head(); }
    /// :method, such as "POST".
    const std::string& method() const noexcept { return head().method; }
    /// :path: path and query, as sent.
    const std::string& path() const noexcept { return head().path; }
    /// :authority, the host (and port) the client asked for.
    const std::string& authority() const noexcept { return head().authority; }
    /// :scheme, normally "https".
    const std::string& scheme() const noexcept { return head().scheme; }
    /// The regular fields, pseudo-headers excluded.
    const h3co::fields& headers() const noexcept { return head().headers; }
    /// The trailer fields the client sent after the body (empty if none), complete once read_some()
    /// has reported the end of the body. Call it on the connection's executor. A moved-from request
    /// has an empty head and no trailers.
    const h3co::fields& trailers() const noexcept { return state_ ? state_->trailers : detail::no_fields; }
    /// The request's HEADERS arrived in 0-RTT, before the handshake completed: it may be a replay
    /// (RFC 8470). With server_options::reject_unsafe_early_requests (the default) only GET, HEAD
    /// and OPTIONS reach a handler so; others were answered 425 Too Early.
    bool early_data() const noexcept { return state_ && state_->early_data; }
    /// The QUIC stream ID the request came on (-1 for a moved-from request).
    std::int64_t stream_id() const noexcept { return state_ ? state_->id : -1; }
    /// The numbers of the connection the request came on (see basic_connection::stats()). On the
    /// connection's executor (where the handler runs).
    h3co::connection_stats connection_stats() const {
        auto owner = state_ ? state_->owner.lock() : nullptr;
        return owner ? owner->stats() : h3co::connection_stats{};
    }
    /// The client's certificate (mutual TLS, server_tls::client_auth), verified against the
    /// client CA: subject, SANs, DER, copied out. Empty when the client sent none. On the
    /// connection's executor.
    certificate_info peer_certificate() const {
        auto owner = state_ ? state_->owner.lock() : nullptr;
        return owner ? owner->peer_certificate() : certificate_info{};
    }
    /// The TLS cipher suite of the request's connection, by its IANA name. On the connection's
    /// executor.
    std::string tls_cipher() const {
        auto owner = state_ ? state_->owner.lock() : nullptr;
        return owner ? owner->tls_cipher() : std::string{};
    }

    /// Reads at least one body byte; h3co::error::eof at the end of the body,
    /// error::body_too_large beyond connection_options::max_request_body, the client's code in
    /// h3_category() if it reset the stream. Completion: void(std::error_code, std::size_t).
    template <class MutableBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto read_some(const MutableBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return body_.read_some(buffers, std::forward<CompletionToken>(token));
    }
    /// read_some() under its AsyncReadStream name, for asio::async_read and friends.
    template <class MutableBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return read_some(buffers, std::forward<CompletionToken>(token));
    }

private:
    friend struct detail::handle_access;  // h3co::testing::stream_memory_of

    static const request_head& no_head() noexcept {
        static const request_head empty{};
        return empty;
    }

    std::shared_ptr<detail::stream_state> state_;
    Executor executor_;
    basic_http_stream<Executor> body_;  ///< the body's byte stream; never resets (the server decides)
};

/// basic_server_request on asio::any_io_executor.
using server_request = basic_server_request<>;

}  // namespace h3co

#if defined(H3CO_SEPARATE_COMPILATION)
// Compiled once, in <h3co/src.hpp>, for the default executor.
namespace h3co {
extern template class basic_server_request<asio::any_io_executor>;
}  // namespace h3co
#endif
