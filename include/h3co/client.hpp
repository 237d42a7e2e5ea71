// The convenience client (the seed's first program): one call sends a request whose body comes from
// any async source, such as a pipe, and completes with the response while the body may still flow.
#pragma once

#include <h3co/client_response.hpp>
#include <h3co/connection.hpp>
#include <h3co/detail/body_pump.hpp>
#include <h3co/error.hpp>
#include <h3co/pipe.hpp>
#include <h3co/url.hpp>

#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <array>
#include <type_traits>
#include <map>
#include <memory>
#include <string>

namespace h3co {

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
            asio::co_spawn(st->executor, detail::pump_body<Executor>(std::move(*body), stream.share()),
                           [](std::exception_ptr) {});
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
