// The convenience client (the seed's first program): one call sends a request whose body comes from
// any async source, such as a pipe, and completes with the response while the body may still flow.
#pragma once

#include <h3co/connection.hpp>
#include <h3co/error.hpp>
#include <h3co/pipe.hpp>

#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <array>
#include <type_traits>
#include <map>
#include <memory>
#include <string>

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

/// Parts of an absolute https URL.
struct url_parts {
    std::string host;          ///< host name or IP address, IPv6 without brackets
    std::uint16_t port = 443;  ///< the URL's port, 443 if it names none
};

/// The host and port of an absolute URL ("https://[::1]:8443/path"); nullopt if it has no
/// "scheme://", no host, or a port that is not a number up to 65535. The scheme is not checked.
inline std::optional<url_parts> parse_authority(const std::string& url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return std::nullopt;
    const auto start = scheme_end + 3;
    const auto end = url.find_first_of("/?#", start);
    const std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
    url_parts parts;
    std::string port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string::npos) return std::nullopt;
        parts.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':') port = authority.substr(close + 2);
    } else {
        const auto colon = authority.rfind(':');
        parts.host = authority.substr(0, colon);
        if (colon != std::string::npos) port = authority.substr(colon + 1);
    }
    if (parts.host.empty()) return std::nullopt;
    if (!port.empty()) {
        unsigned long value = 0;
        for (char c : port) {
            if (c < '0' || c > '9') return std::nullopt;
            value = value * 10 + static_cast<unsigned long>(c - '0');
            if (value > 65535) return std::nullopt;
        }
        parts.port = static_cast<std::uint16_t>(value);
    }
    return parts;
}

namespace detail {
/// Pipe readers lend their bytes (async_read_view) instead of copying them out.
template <class T>
struct is_pipe_reader : std::false_type {};
template <class E>
struct is_pipe_reader<basic_pipe_reader<E>> : std::true_type {};
}  // namespace detail

/// Anything h3co can read a request body from: an AsyncReadStream (pipe reader, socket, file).
template <class T>
concept body_source = requires(T& source) { source.async_read_some(asio::mutable_buffer{}, asio::detached); };

/// A client that sends requests by URL over a pool of connections, one per host and port:
/// it connects on first use, and again once a connection closed or got GOAWAY.
template <class Executor = asio::any_io_executor>
class basic_client {
public:
    using executor_type = Executor;  ///< the executor the client's connections run on

    /// A client whose connections verify servers as `tls` says and use `options`. Throws
    /// std::runtime_error if `tls` cannot be loaded (a CA or key-log file that cannot be opened).
    explicit basic_client(Executor ex, client_tls tls = {}, connection_options options = {})
        : state_(std::make_shared<shared>(std::move(ex), std::move(tls), options)) {}

    /// The executor given to the constructor.
    executor_type get_executor() const noexcept { return state_->executor; }

    /// Sends `req` with a body read from `body` (any AsyncReadStream: a pipe_reader, a file, a
    /// socket) until it reports end of data. Completes when the response's HEADERS arrive; the body
    /// keeps flowing after that. An error from `body` resets the request (H3_REQUEST_CANCELLED).
    /// Completion: void(std::error_code, basic_client_response<Executor>).
    template <body_source BodySource, class CompletionToken = detail::default_token_t<Executor>>
    auto request(const h3co::request& req, BodySource body, CompletionToken&& token = CompletionToken{}) {
        return start(req, std::optional<BodySource>(std::move(body)), std::forward<CompletionToken>(token));
    }

    /// A request without a body (its stream is finished right after the header).
    /// Completion: void(std::error_code, basic_client_response<Executor>).
    template <class CompletionToken = detail::default_token_t<Executor>>
        requires(!body_source<std::decay_t<CompletionToken>>)
    auto request(const h3co::request& req, CompletionToken&& token = CompletionToken{}) {
        return start(req, std::optional<basic_pipe_reader<Executor>>{}, std::forward<CompletionToken>(token));
    }

    /// The connection used for `url`'s authority, connecting if there is none yet (or it closed).
    /// Completion: void(std::error_code, basic_connection<Executor>); error::invalid_request for a
    /// URL without host, error::resolve_failed, or the handshake's error. The handle shares the
    /// pooled connection: dropping it leaves the connection open for later requests, while close()
    /// on it closes the connection for everyone (the pool then connects anew).
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto connection_for(const std::string& url, CompletionToken&& token = CompletionToken{}) {
        using result_type = std::pair<std::error_code, std::shared_ptr<detail::client_session<Executor>>>;
        auto coro = [](std::shared_ptr<shared> st, std::string url) -> asio::awaitable<result_type, Executor> {
            co_return co_await get_session(st, url);
        };
        return asio::async_initiate<CompletionToken, void(std::error_code, basic_connection<Executor>)>(
            [coro](auto handler, std::shared_ptr<shared> st, std::string url) {
                auto handler_ex = asio::get_associated_executor(handler, st->executor);
                auto ex = st->executor;
                asio::co_spawn(ex, coro(std::move(st), std::move(url)),
                               asio::bind_executor(handler_ex, [h = std::move(handler)](std::exception_ptr ep, result_type r) mutable {
                                   if (ep) r.first = make_error_code(error::protocol_error);
                                   std::move(h)(r.first, basic_connection<Executor>(std::move(r.second), false));
                               }));
            },
            token, state_, url);
    }

    /// Closes every pooled connection.
    void close() {
        for (auto& [key, session] : state_->pool) basic_connection<Executor>(session).close();
        state_->pool.clear();
    }

private:
    struct shared {
        shared(Executor ex, client_tls tls, connection_options options)
            : executor(std::move(ex)), tls(detail::tls_context::make_client(tls)), options(options) {}
        Executor executor;
        std::shared_ptr<detail::tls_context> tls;
        connection_options options;
        std::map<std::string, std::shared_ptr<detail::client_session<Executor>>> pool;
    };

    using session_result = std::pair<std::error_code, std::shared_ptr<detail::client_session<Executor>>>;

    static asio::awaitable<session_result, Executor> get_session(std::shared_ptr<shared> st, std::string url) {
        auto parts = parse_authority(url);
        if (!parts) co_return session_result{make_error_code(error::invalid_request), nullptr};
        const std::string key = parts->host + ":" + std::to_string(parts->port);
        if (auto it = st->pool.find(key); it != st->pool.end()) {
            if (!it->second->terminated() && !it->second->going_away()) co_return session_result{{}, it->second};
            st->pool.erase(it);
        }
        auto r = co_await detail::connect_attempts<Executor>(st->executor, parts->host, parts->port, st->tls, st->options);
        if (!r.first) st->pool[key] = r.second;
        co_return r;
    }

    using response_result = std::pair<std::error_code, basic_client_response<Executor>>;

    static response_result failed(std::error_code ec) {
        response_result r;
        r.first = ec;
        return r;
    }

    template <class BodySource>
    static asio::awaitable<response_result, Executor> run(std::shared_ptr<shared> st, h3co::request req,
                                                           std::optional<BodySource> body) {
        const auto token = asio::use_awaitable_t<Executor>{};
        response_result out;
        auto [ec, session] = co_await get_session(st, req.url);
        if (ec) co_return failed(ec);
        // The pool owns the connection, so no basic_connection handle (which would close it) is made.
        auto [open_ec, stream] = co_await basic_connection<Executor>::open_request_stream_on(
            session, asio::experimental::as_tuple(token));
        if (open_ec) co_return failed(open_ec);
        auto [send_ec] = co_await stream.send_header(std::move(req), asio::experimental::as_tuple(token));
        if (send_ec) co_return failed(send_ec);
        if (body) {
            asio::co_spawn(st->executor, pump(std::move(*body), stream.share()), [](std::exception_ptr) {});
        } else {
            auto [fin_ec] = co_await stream.finish(asio::experimental::as_tuple(token));
            if (fin_ec) co_return failed(fin_ec);
        }
        auto [resp_ec, head] = co_await stream.read_response(asio::experimental::as_tuple(token));
        if (resp_ec) co_return failed(resp_ec);
        out.second.status = head.status;
        out.second.headers = std::move(head.headers);
        out.second.body = std::move(stream);
        co_return out;
    }

    /// Copies the body source into the stream as it produces; write() waits for flow control, so
    /// the source is read no faster than the peer accepts. A pipe's bytes go from the writer's
    /// buffer straight into the stream's send buffer (a borrowed view: one copy); any other source
    /// is read into a buffer here first.
    template <class BodySource>
    static asio::awaitable<void, Executor> pump(BodySource body, basic_http_stream<Executor> stream) {
        constexpr bool lends = detail::is_pipe_reader<BodySource>::value;
        const auto token = asio::experimental::as_tuple(asio::use_awaitable_t<Executor>{});
        [[maybe_unused]] std::array<char, lends ? 1 : 16 * 1024> buf;
        for (;;) {
            std::error_code ec;
            asio::const_buffer chunk;
            if constexpr (lends) {
                auto [view_ec, view] = co_await body.async_read_view(token);
                ec = view_ec;
                chunk = view;
            } else {
                auto [read_ec, n] = co_await body.async_read_some(asio::buffer(buf), token);
                ec = read_ec;
                chunk = asio::buffer(buf.data(), n);
            }
            if (chunk.size() > 0) {
                auto [wec, written] = co_await stream.write(chunk, token);
                if constexpr (lends) body.consume(written);
                if (wec) co_return;  // the stream failed: its error reaches the response reader
            }
            if (ec == error::eof || ec == asio::error::eof) {
                co_await stream.finish(token);
                co_return;
            }
            if (ec) {
                stream.reset(h3_error::request_cancelled);
                co_return;
            }
        }
    }

    template <class BodySource, class CompletionToken>
    auto start(const h3co::request& req, std::optional<BodySource> body, CompletionToken&& token) {
        return asio::async_initiate<CompletionToken, void(std::error_code, basic_client_response<Executor>)>(
            [](auto handler, std::shared_ptr<shared> st, h3co::request req, std::optional<BodySource> body) {
                auto handler_ex = asio::get_associated_executor(handler, st->executor);
                auto ex = st->executor;
                asio::co_spawn(ex, run<BodySource>(std::move(st), std::move(req), std::move(body)),
                               asio::bind_executor(handler_ex, [h = std::move(handler)](std::exception_ptr ep,
                                                                                        response_result r) mutable {
                                   if (ep) r.first = make_error_code(error::protocol_error);
                                   std::move(h)(r.first, std::move(r.second));
                               }));
            },
            token, state_, req, std::move(body));
    }

    std::shared_ptr<shared> state_;
};

/// basic_client on asio::any_io_executor.
using client = basic_client<>;

}  // namespace h3co
