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
#include <h3co/session_cache.hpp>
#include <h3co/url.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/detached.hpp>
#include <asio/this_coro.hpp>
#include <asio/dispatch.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <algorithm>
#include <array>
#include <type_traits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace h3co {

/// Anything h3co can read a request body from: an AsyncReadStream (pipe reader, socket, file).
template <class T>
concept body_source = requires(T& source) { source.async_read_some(asio::mutable_buffer{}, asio::detached); };

/// A client that sends requests by URL over a pool of connections, one per host and port:
/// it connects on first use, and again once a connection closed or got GOAWAY. Requests that need
/// a connection while one is being made wait for that one (one connect per authority at a time).
/// close() and the destructor close every connection the client made.
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

    /// Takes `other`'s pool over; `other` is left without one.
    basic_client(basic_client&&) noexcept = default;
    /// Closes this client's connections (see close()), then takes over `other`'s pool.
    basic_client& operator=(basic_client&& other) noexcept {
        if (this != &other) {
            if (state_) close();
            state_ = std::move(other.state_);
        }
        return *this;
    }
    /// Closes every connection the client made (see close()).
    ~basic_client() {
        if (state_) close();
    }

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

    /// Closes every connection the client made, pooled or left after GOAWAY (H3_NO_ERROR), and
    /// gives up the connects in progress: requests waiting for one fail with
    /// error::connection_closed. Later requests connect anew. Any thread: it runs on the client's
    /// executor (at once when called there).
    void close() {
        asio::dispatch(state_->executor, [st = state_] {
            for (auto& [key, session] : st->pool) st->keep_token(key, *session);
            st->pool.clear();
            for (auto& [key, flight] : std::exchange(st->connecting, {})) {
                flight->closed = true;
                flight->cancel.emit(asio::cancellation_type::terminal);
            }
            for (auto& weak : std::exchange(st->made, {}))
                if (auto session = weak.lock()) session->close_connection(static_cast<std::uint64_t>(h3_error::no_error), {});
        });
    }

private:
    using session_ptr = std::shared_ptr<detail::client_session<Executor>>;
    using session_op = detail::pending_op<std::error_code, session_ptr>;

    /// One authority's connect in progress, and the requests waiting for it.
    struct flight {
        /// A request waiting for the connect.
        struct waiter {
            session_op op;               ///< completes with the connection, or the connect's error
            std::shared_ptr<char> key;  ///< identifies the waiter to its canceller
        };
        std::vector<waiter> waiters;
        asio::cancellation_signal cancel;  ///< gives the connect up: nobody waits, or close()
        bool closed = false;               ///< close() ran meanwhile: the result is not pooled
    };

    struct shared {
        shared(Executor ex, client_tls tls, connection_options options)
            : executor(std::move(ex)), tls(detail::tls_context::make_client(tls)), options(options) {
            // One ticket cache for all the client's connections unless the options name one.
            if (!this->options.session_cache) this->options.session_cache = std::make_shared<session_cache>();
        }
        Executor executor;
        std::shared_ptr<detail::tls_context> tls;
        connection_options options;
        std::map<std::string, session_ptr> pool;
        std::map<std::string, std::shared_ptr<flight>> connecting;
        /// Every connection made since the last close(), pooled or not: close() closes those alive.
        std::vector<std::weak_ptr<detail::client_session<Executor>>> made;
        /// Per authority: the server's last NEW_TOKEN token, sent when connecting to it again.
        std::map<std::string, std::string> tokens;

        void keep_token(const std::string& key, const detail::client_session<Executor>& session) {
            if (!session.address_token().empty()) tokens[key] = session.address_token();
        }
    };

    using session_result = std::pair<std::error_code, std::shared_ptr<detail::client_session<Executor>>>;

    static asio::awaitable<session_result, Executor> get_session(std::shared_ptr<shared> st, std::string url);
    static void start_connect(std::shared_ptr<shared> st, std::string key, std::string host, std::uint16_t port,
                              std::shared_ptr<flight> f);
    static void wait_for(const std::shared_ptr<shared>& st, const std::shared_ptr<flight>& f, session_op op);

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
    // Single flight: the first request starts the connect, every request (that one included) waits
    // for it with its own cancellation.
    auto f = st->connecting[key];
    if (!f) {
        f = st->connecting[key] = std::make_shared<flight>();
        start_connect(st, key, parts->host, parts->port, f);
    }
    const auto token = asio::experimental::as_tuple(asio::use_awaitable_t<Executor>{});
    auto [ec, session] = co_await asio::async_initiate<decltype(token), void(std::error_code, session_ptr)>(
        [&](auto handler) { wait_for(st, f, session_op(std::move(handler), st->executor)); }, token);
    co_return session_result{ec, std::move(session)};
}

/// Runs the connect for `key` on its own, not under any request's cancellation; its result goes
/// to every waiter of `f`, and into the pool.
template <class Executor>
void basic_client<Executor>::start_connect(std::shared_ptr<shared> st, std::string key, std::string host,
                                           std::uint16_t port, std::shared_ptr<flight> f) {
    auto options = st->options;
    if (auto t = st->tokens.find(key); t != st->tokens.end()) options.address_token = t->second;
    auto ex = st->executor;
    auto slot = f->cancel.slot();
    auto attempts = detail::connect_attempts<Executor>(ex, host, port, st->tls, options);  // before st moves
    asio::co_spawn(ex, std::move(attempts),
                   asio::bind_cancellation_slot(slot, [st = std::move(st), key = std::move(key), host, port,
                                                       f = std::move(f)](std::exception_ptr ep, session_result r) {
                       if (ep) r = session_result{make_error_code(error::protocol_error), nullptr};
                       // Given up when its waiters left, but a request came since: connect for it.
                       if (r.first == asio::error::operation_aborted && !f->closed && !f->waiters.empty())
                           return start_connect(st, key, host, port, f);
                       if (auto it = st->connecting.find(key); it != st->connecting.end() && it->second == f)
                           st->connecting.erase(it);
                       if (f->closed) {
                           if (r.second) r.second->close_connection(static_cast<std::uint64_t>(h3_error::no_error), {});
                           r = session_result{make_error_code(error::connection_closed), nullptr};
                       } else if (!r.first) {
                           std::erase_if(st->made, [](const auto& w) {
                               auto s = w.lock();
                               return !s || s->terminated();
                           });
                           st->made.push_back(r.second);
                           st->pool[key] = r.second;
                       }
                       for (auto& w : std::exchange(f->waiters, {})) w.op.complete(r.first, r.second);
                   }));
}

/// Adds `op` to the waiters of `f`. Cancelling it takes only that waiter out; the connect is given
/// up once no one waits for it.
template <class Executor>
void basic_client<Executor>::wait_for(const std::shared_ptr<shared>& st, const std::shared_ptr<flight>& f,
                                      session_op op) {
    auto key = std::make_shared<char>();
    op.on_cancel([weak = std::weak_ptr<flight>(f), key = std::weak_ptr<char>(key), ex = st->executor](asio::cancellation_type) {
        asio::dispatch(ex, [weak, key] {
            auto fl = weak.lock();
            auto k = key.lock();
            if (!fl || !k) return;
            auto it = std::find_if(fl->waiters.begin(), fl->waiters.end(), [&](const auto& w) { return w.key == k; });
            if (it == fl->waiters.end()) return;
            auto cancelled = std::move(it->op);
            fl->waiters.erase(it);
            cancelled.complete(make_error_code(asio::error::operation_aborted), nullptr);
            if (fl->waiters.empty()) fl->cancel.emit(asio::cancellation_type::terminal);
        });
    });
    f->waiters.push_back({std::move(op), std::move(key)});
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
    // stream opened (on a new connection), or one without a body refused with H3_REQUEST_REJECTED,
    // or answered 425 Too Early (RFC 8470 §5.2). A 0-RTT the server refused is sent again by the
    // session itself, body included (session::resend_rejected).
    for (int attempt = 0;; ++attempt) {
        const bool may_retry = attempt == 0;
        auto [ec, session] = co_await get_session(st, req.url);
        if (ec) co_return failed(ec);
        // Goes in 0-RTT (if it opens before the handshake completes, which nothing waits for here).
        const bool early = session->early_data_pending() && detail::session::may_go_early(req);
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
        // A response is read in 1-RTT, so the handshake has completed: the retry does not go early.
        if (head.status == 425 && early && !body && may_retry) continue;
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
