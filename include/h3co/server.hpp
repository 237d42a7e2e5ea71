// An HTTP/3 server: handlers per path, each a coroutine that reads the request body as it arrives,
// answers, or takes the stream over.
#pragma once

#include <h3co/detail/server_core.hpp>
#include <h3co/detail/stream_ops.hpp>
#include <h3co/http_stream.hpp>
#include <h3co/message.hpp>
#include <h3co/options.hpp>
#include <h3co/tls.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/ip/udp.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace h3co {

/// The request a handler receives: its head, and its body to read as it arrives.
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
    const request_head& head() const noexcept { return state_->request; }
    /// :method, such as "POST".
    const std::string& method() const noexcept { return state_->request.method; }
    /// :path: path and query, as sent.
    const std::string& path() const noexcept { return state_->request.path; }
    /// :authority, the host (and port) the client asked for.
    const std::string& authority() const noexcept { return state_->request.authority; }
    /// :scheme, normally "https".
    const std::string& scheme() const noexcept { return state_->request.scheme; }
    /// The regular fields, pseudo-headers excluded.
    const h3co::fields& headers() const noexcept { return state_->request.headers; }
    /// The QUIC stream ID the request came on.
    std::int64_t stream_id() const noexcept { return state_->id; }

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
    std::shared_ptr<detail::stream_state> state_;
    Executor executor_;
    basic_http_stream<Executor> body_;  ///< the body's byte stream; never resets (the server decides)
};

/// The response a handler writes. If the handler returns without a status, 200 is sent; whatever
/// it started is finished when it returns (an exception resets the stream, or answers 500).
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
            [status, headers](detail::session& s, detail::stream_state& st, auto op) {
                s.submit_response(st, status, headers, std::move(op));
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

    /// True once send_header() has started the response.
    bool header_sent() const noexcept { return state_->send != detail::send_state::idle; }

private:
    std::shared_ptr<detail::stream_state> state_;
    Executor executor_;
    basic_http_stream<Executor> body_;  ///< the body's byte stream; never resets (the server decides)
};

/// An HTTP/3 server: it listens on UDP endpoints and runs a handler coroutine per request, picked
/// by path (see handle()). Not copyable or movable; dropping it closes every connection.
template <class Executor = asio::any_io_executor>
class basic_server {
public:
    using executor_type = Executor;                      ///< the executor the server runs on
    using request_type = basic_server_request<Executor>;  ///< what a handler reads
    using response_type = basic_response<Executor>;       ///< what a handler answers with
    /// A handler: a coroutine on the server's executor. Both objects live until it returns.
    using handler_type = std::function<asio::awaitable<void, Executor>(request_type&, response_type&)>;

    /// A server with the identity `tls` (loaded here: throws std::runtime_error if a file cannot be
    /// read or the key does not match) and the limits in `options`. Call handle() and listen() next.
    basic_server(Executor ex, const server_tls& tls, const connection_options& options = {})
        : core_(std::make_shared<detail::server_core<Executor>>(ex, detail::tls_context::make_server(tls), options)),
          routes_(std::make_shared<std::map<std::string, handler_type>>()) {
        core_->set_dispatcher([routes = routes_, ex](std::shared_ptr<detail::server_session<Executor>> session,
                                                     std::shared_ptr<detail::stream_state> st) {
            auto handler = find_route(*routes, st->request.path);
            asio::co_spawn(ex, run_handler(std::move(session), std::move(st), std::move(handler)), asio::detached);
        });
    }
    basic_server(const basic_server&) = delete;
    basic_server& operator=(const basic_server&) = delete;
    ~basic_server() { core_->close(); }

    /// The executor given to the constructor.
    executor_type get_executor() const noexcept { return core_->get_executor(); }

    /// The BoringSSL context (`SSL_CTX*`) behind the server, for TLS settings h3co has no option
    /// for. Changes apply to handshakes that start afterwards; h3co relies on its QUIC method and
    /// its "h3" ALPN selection, so replacing those breaks the server.
    SSL_CTX* native_tls_handle() const noexcept { return core_->tls().native(); }

    /// Serves `path` with `handler`. A path ending in '/' also serves everything below it; the
    /// longest match wins. Unmatched paths get 404.
    void handle(std::string path, handler_type handler) { (*routes_)[std::move(path)] = std::move(handler); }

    /// Starts listening on `endpoint` (port 0 picks a free port); returns the bound endpoint.
    /// "::" listens on IPv6 and IPv4 at once. Call it once per address to serve several.
    asio::ip::udp::endpoint listen(const asio::ip::udp::endpoint& endpoint) { return core_->listen(endpoint); }
    /// listen() on `address` (an IPv4 or IPv6 literal) and `port`; throws std::system_error if
    /// `address` is not an IP address or cannot be bound.
    asio::ip::udp::endpoint listen(const std::string& address, std::uint16_t port) {
        return listen(asio::ip::udp::endpoint(asio::ip::make_address(address), port));
    }

    /// The endpoints being listened on, as bound (with the ports port 0 picked).
    std::vector<asio::ip::udp::endpoint> local_endpoints() const { return core_->local_endpoints(); }

    /// Graceful: GOAWAY to every client; requests in flight may finish within `grace`, after
    /// which the connections still open are closed; then listening stops.
    void shutdown(std::chrono::steady_clock::duration grace = std::chrono::seconds(30)) { core_->shutdown(grace); }
    /// Abrupt: closes every connection now.
    void close() { core_->close(); }

    /// Connections currently open, handshaking ones included.
    std::size_t connection_count() const noexcept { return core_->connection_count(); }
    /// Datagrams dropped as garbage or unroutable (a measure of bad input seen).
    std::uint64_t dropped_datagrams() const noexcept { return core_->dropped_datagrams(); }

private:
    static handler_type find_route(const std::map<std::string, handler_type>& routes, const std::string& full_path) {
        const std::string path = full_path.substr(0, full_path.find('?'));
        if (auto it = routes.find(path); it != routes.end()) return it->second;
        const handler_type* best = nullptr;
        std::size_t best_len = 0;
        for (const auto& [pattern, handler] : routes) {
            if (!pattern.empty() && pattern.back() == '/' && path.compare(0, pattern.size(), pattern) == 0 &&
                pattern.size() > best_len) {
                best = &handler;
                best_len = pattern.size();
            }
        }
        if (best) return *best;
        return [](request_type&, response_type& res) -> asio::awaitable<void, Executor> {
            co_await res.send_header(404, {}, asio::use_awaitable_t<Executor>{});
        };
    }

    static asio::awaitable<void, Executor> run_handler(std::shared_ptr<detail::server_session<Executor>> session,
                                                       std::shared_ptr<detail::stream_state> st, handler_type handler) {
        const auto ex = session->get_executor();
        request_type req(st, ex);
        response_type res(st, ex);
        bool failed = false;
        try {
            co_await handler(req, res);
        } catch (...) {
            failed = true;  // the client sees 500 or a reset, never a silently cut body
        }
        session->run_after_handler(st, failed);
    }

    std::shared_ptr<detail::server_core<Executor>> core_;
    std::shared_ptr<std::map<std::string, handler_type>> routes_;
};

/// basic_server on asio::any_io_executor.
using server = basic_server<>;
/// basic_server_request on asio::any_io_executor.
using server_request = basic_server_request<>;
/// basic_response on asio::any_io_executor.
using response = basic_response<>;

}  // namespace h3co
