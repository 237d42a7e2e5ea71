// The convenience client (the seed's first program): one call sends a request whose body comes from
// any async source, such as a pipe, and completes with the response while the body may still flow.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/client_response.hpp>
#include <h3co/connection.hpp>
#include <h3co/detail/body_pump.hpp>
#include <h3co/detail/erased_initiate.hpp>
#include <h3co/error.hpp>
#include <h3co/pipe.hpp>
#include <h3co/url.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/detached.hpp>
#include <asio/this_coro.hpp>
#include <asio/dispatch.hpp>
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
///
/// Threads: the pool and its connections live on the executor given to the constructor (with
/// several threads running it, make it a strand). Every member may be called from any thread:
/// request() and connection_for() start their work there, close() dispatches there.
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
        return detail::initiate_erased<void(std::error_code, basic_connection<Executor>)>(
            std::forward<CompletionToken>(token), state_->executor,
            [st = state_, url](connection_op op) mutable { launch_connection_for(std::move(st), std::move(url), std::move(op)); });
    }

    /// Closes every pooled connection. Any thread: it runs on the client's executor (at once when
    /// called there).
    void close() {
        asio::dispatch(state_->executor, [st = state_] {
            for (auto& [key, session] : st->pool) {
                st->keep_token(key, *session);
                basic_connection<Executor>(session).close();
            }
            st->pool.clear();
        });
    }

private:
    struct shared {
        shared(Executor ex, client_tls tls, connection_options options)
            : executor(std::move(ex)), tls(detail::tls_context::make_client(tls)), options(options) {}
        Executor executor;
        std::shared_ptr<detail::tls_context> tls;
        connection_options options;
        std::map<std::string, std::shared_ptr<detail::client_session<Executor>>> pool;
        /// Per authority: the server's last NEW_TOKEN token, sent when connecting to it again.
        std::map<std::string, std::string> tokens;

        void keep_token(const std::string& key, const detail::client_session<Executor>& session) {
            if (!session.address_token().empty()) tokens[key] = session.address_token();
        }
    };

    using session_result = std::pair<std::error_code, std::shared_ptr<detail::client_session<Executor>>>;

    static asio::awaitable<session_result, Executor> get_session(std::shared_ptr<shared> st, std::string url);

    using response_result = std::pair<std::error_code, basic_client_response<Executor>>;

    static response_result failed(std::error_code ec) {
        response_result r;
        r.first = ec;
        return r;
    }

    template <class BodySource>
    static asio::awaitable<response_result, Executor> run(std::shared_ptr<shared> st, h3co::request req,
                                                           std::optional<BodySource> body);

    using connection_op = detail::pending_op<std::error_code, basic_connection<Executor>>;
    using response_op = detail::pending_op<std::error_code, basic_client_response<Executor>>;

    static void launch_connection_for(std::shared_ptr<shared> st, std::string url, connection_op op);

    template <class BodySource, class CompletionToken>
    auto start(const h3co::request& req, std::optional<BodySource> body, CompletionToken&& token) {
        return detail::initiate_erased<void(std::error_code, basic_client_response<Executor>)>(
            std::forward<CompletionToken>(token), state_->executor,
            [st = state_, req, body = std::move(body)](response_op op) mutable {
                launch<BodySource>(std::move(st), std::move(req), std::move(body), std::move(op));
            });
    }

    template <class BodySource>
    static void launch(std::shared_ptr<shared> st, h3co::request req, std::optional<BodySource> body, response_op op);

    std::shared_ptr<shared> state_;
};

/// \cond H3CO_INTERNAL
// The members below are defined outside the class so that they are not inline: in compiled mode
// (H3CO_SEPARATE_COMPILATION) they are then compiled once, in <h3co/src.hpp>, for the default executor.

template <class Executor>
auto basic_client<Executor>::get_session(std::shared_ptr<shared> st, std::string url)
    -> asio::awaitable<session_result, Executor> {
    auto parts = parse_authority(url);
    if (!parts) co_return session_result{make_error_code(error::invalid_request), nullptr};
    const std::string key = parts->host + ":" + std::to_string(parts->port);
    if (auto it = st->pool.find(key); it != st->pool.end()) {
        if (!it->second->terminated() && !it->second->going_away()) co_return session_result{{}, it->second};
        st->keep_token(key, *it->second);
        st->pool.erase(it);
    }
    auto options = st->options;
    if (auto t = st->tokens.find(key); t != st->tokens.end()) options.address_token = t->second;
    auto r = co_await detail::connect_attempts<Executor>(st->executor, parts->host, parts->port, st->tls, options);
    if (!r.first) st->pool[key] = r.second;
    co_return r;
}

template <class Executor>
template <class BodySource>
auto basic_client<Executor>::run(std::shared_ptr<shared> st, h3co::request req, std::optional<BodySource> body)
    -> asio::awaitable<response_result, Executor> {
    // A cancellation of any type reaches the step waiting (connect, stream credit, response); a
    // request cancelled after its header went out is reset (H3_REQUEST_CANCELLED).
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    const auto token = asio::use_awaitable_t<Executor>{};
    response_result out;
    // A request that nothing of was processed is tried once more: one that met GOAWAY before its
    // stream opened (on a new connection), or one without a body refused with H3_REQUEST_REJECTED.
    for (int attempt = 0;; ++attempt) {
        const bool may_retry = attempt == 0;
        auto [ec, session] = co_await get_session(st, req.url);
        if (ec) co_return failed(ec);
        // The pool owns the connection, so no basic_connection handle (which would close it) is made.
        auto [open_ec, stream] = co_await basic_connection<Executor>::open_request_stream_on(
            session, asio::experimental::as_tuple(token));
        if (open_ec == error::going_away && may_retry) continue;  // get_session() skips that connection now
        if (open_ec) co_return failed(open_ec);
        auto [send_ec] = co_await stream.send_header(req, asio::experimental::as_tuple(token));
        if (send_ec) co_return failed(send_ec);
        if (body) {
            asio::co_spawn(st->executor, detail::pump_body<Executor>(std::move(*body), stream.share()),
                           [](std::exception_ptr) {});
        } else {
            auto [fin_ec] = co_await stream.finish(asio::experimental::as_tuple(token));
            if (fin_ec) co_return failed(fin_ec);
        }
        auto [resp_ec, head] = co_await stream.read_response(asio::experimental::as_tuple(token));
        if (resp_ec == h3_error::request_rejected && !body && may_retry) continue;
        if (resp_ec) co_return failed(resp_ec);
        out.second.status = head.status;
        out.second.headers = std::move(head.headers);
        out.second.body = std::move(stream);
        break;
    }
    co_return out;
}

template <class Executor>
void basic_client<Executor>::launch_connection_for(std::shared_ptr<shared> st, std::string url, connection_op op) {
    auto ex = st->executor;
    auto signal = detail::forward_cancellation(op, ex);
    asio::co_spawn(ex, get_session(std::move(st), std::move(url)),
                   asio::bind_cancellation_slot(signal->slot(), [op = std::move(op), signal](std::exception_ptr ep,
                                                                                            session_result r) mutable {
                       if (ep) r.first = make_error_code(error::protocol_error);
                       op.complete(r.first, basic_connection<Executor>(std::move(r.second), false));
                   }));
}

/// Runs the request as a coroutine of its own; `op` gets the response (or why there is none).
template <class Executor>
template <class BodySource>
void basic_client<Executor>::launch(std::shared_ptr<shared> st, h3co::request req, std::optional<BodySource> body,
                                    response_op op) {
    auto ex = st->executor;
    auto signal = detail::forward_cancellation(op, ex);  // reaches whatever step run() is waiting in
    asio::co_spawn(ex, run<BodySource>(std::move(st), std::move(req), std::move(body)),
                   asio::bind_cancellation_slot(signal->slot(), [op = std::move(op), signal](std::exception_ptr ep,
                                                                                            response_result r) mutable {
                       if (ep) r.first = make_error_code(error::protocol_error);
                       op.complete(r.first, std::move(r.second));
                   }));
}

/// \endcond

/// basic_client on asio::any_io_executor.
using client = basic_client<>;

}  // namespace h3co

#if defined(H3CO_SEPARATE_COMPILATION)
// Compiled once, in <h3co/src.hpp>, for the default executor.
namespace h3co {
extern template class basic_client<asio::any_io_executor>;
extern template void basic_client<asio::any_io_executor>::launch<basic_pipe_reader<asio::any_io_executor>>(
    std::shared_ptr<basic_client<asio::any_io_executor>::shared>, h3co::request,
    std::optional<basic_pipe_reader<asio::any_io_executor>>, basic_client<asio::any_io_executor>::response_op);
namespace detail {
extern template asio::awaitable<void, asio::any_io_executor>
pump_body<asio::any_io_executor, basic_pipe_reader<asio::any_io_executor>>(basic_pipe_reader<asio::any_io_executor>,
                                                                        basic_http_stream<asio::any_io_executor>);
}  // namespace detail
}  // namespace h3co
#endif
