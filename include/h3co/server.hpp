// An HTTP/3 server: handlers per path, each a coroutine that reads the request body as it arrives,
// answers, or takes the stream over.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/detail/io/server_core.hpp>
#include <h3co/detail/router.hpp>
#include <h3co/options.hpp>
#include <h3co/response.hpp>
#include <h3co/server_options.hpp>
#include <h3co/server_request.hpp>
#include <h3co/tls.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/dispatch.hpp>
#include <asio/ip/udp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace h3co {

/// An HTTP/3 server: it listens on UDP endpoints and runs a handler coroutine per request, picked
/// by path (see handle()). Not copyable or movable; dropping it closes every connection.
///
/// Threads: the server, its connections and its handlers run on the executor given to the
/// constructor (with several threads running it, make it a strand). handle(), shutdown() and
/// close() may be called from any thread: they dispatch onto that executor. The other members
/// (listen(), the counters, native_tls_handle()) and the destructor are for that executor, or
/// for a time when no thread runs it (say, before io_context::run()).
template <class Executor = asio::any_io_executor>
class basic_server {
public:
    using executor_type = Executor;                      ///< the executor the server runs on
    using request_type = basic_server_request<Executor>;  ///< what a handler reads
    using response_type = basic_response<Executor>;       ///< what a handler answers with
    /// A handler: a coroutine on the server's executor. Both objects live until it returns.
    using handler_type = std::function<asio::awaitable<void, Executor>(request_type&, response_type&)>;

    /// A server with the identity `tls` (loaded here: throws std::runtime_error if a file cannot be
    /// read or the key does not match), its connections tuned by `options`, and the server-wide
    /// limits in `limits` (address validation, connection caps, request timeouts: see
    /// server_options and docs/internet.md). Call handle() and listen() next.
    basic_server(Executor ex, const server_tls& tls, const connection_options& options = {},
                 const server_options& limits = {})
        : core_(std::make_shared<detail::server_core<Executor>>(ex, detail::tls_context::make_server(tls), options,
                                                                limits)),
          routes_(std::make_shared<detail::router<handler_type>>(&not_found)) {
        core_->set_dispatcher([routes = routes_, ex](std::shared_ptr<detail::server_session<Executor>> session,
                                                     std::shared_ptr<detail::stream_state> st,
                                                     std::shared_ptr<void> slot) {
            auto handler = routes->find(st->request.path);
            asio::co_spawn(ex, run_handler(std::move(session), std::move(st), std::move(handler), std::move(slot)),
                           asio::detached);
        });
    }
    basic_server(const basic_server&) = delete;
    basic_server& operator=(const basic_server&) = delete;
    /// Closes every connection at once. Run it on the server's executor or while no thread runs it.
    ~basic_server() { core_->close(); }

    /// The executor given to the constructor.
    executor_type get_executor() const noexcept { return core_->get_executor(); }

    /// The BoringSSL context (`SSL_CTX*`) behind the server, for TLS settings h3co has no option
    /// for. Changes apply to handshakes that start afterwards; h3co relies on its QUIC method and
    /// its "h3" ALPN selection, so replacing those breaks the server.
    /// It is BoringSSL's `SSL_CTX*` (struct ssl_ctx_st), declared without including BoringSSL.
    /// Change it before listen(), or on the server's executor. After reload_tls() it is the new
    /// context; server_tls::additional_identities have contexts of their own, not this one.
    ssl_ctx_st* native_tls_handle() const noexcept { return core_->tls().native(); }

    /// Replaces the server's TLS identity (certificates, keys, client CA, SNI identities) for
    /// connections that start afterwards; connections already open keep the one they started with.
    /// This is how a renewed certificate (ACME) goes live without a restart. `tls` is loaded here,
    /// on the calling thread: if a file or PEM text cannot be loaded or a key does not match, it
    /// throws std::runtime_error (naming what failed) and the old identity stays. The swap itself
    /// runs on the server's executor (at once when called there). native_tls_handle() then
    /// returns the new context.
    void reload_tls(const server_tls& tls) {
        auto fresh = detail::tls_context::make_server(tls);
        asio::dispatch(core_->get_executor(), [core = core_, fresh = std::move(fresh)]() mutable {
            core->reload_tls(std::move(fresh));
        });
    }

    /// Serves `path` with `handler`. A path ending in '/' also serves everything below it; the
    /// longest match wins. Unmatched paths get 404. Any thread: the route is added on the server's
    /// executor (at once when called there), before any request that arrives afterwards.
    void handle(std::string path, handler_type handler) {
        asio::dispatch(core_->get_executor(), [routes = routes_, path = std::move(path), h = std::move(handler)]() mutable {
            routes->add(std::move(path), std::move(h));
        });
    }

    /// Starts listening on `endpoint` (port 0 picks a free port); returns the bound endpoint.
    /// "::" listens on IPv6 and IPv4 at once. Call it once per address to serve several. Call it
    /// on the server's executor, or while no thread runs it.
    asio::ip::udp::endpoint listen(const asio::ip::udp::endpoint& endpoint) { return core_->listen(endpoint); }
    /// listen() on `address` (an IPv4 or IPv6 literal) and `port`; throws std::system_error if
    /// `address` is not an IP address or cannot be bound.
    asio::ip::udp::endpoint listen(const std::string& address, std::uint16_t port) {
        return listen(asio::ip::udp::endpoint(asio::ip::make_address(address), port));
    }

    /// The endpoints being listened on, as bound (with the ports port 0 picked). On the server's
    /// executor, or while no thread runs it.
    std::vector<asio::ip::udp::endpoint> local_endpoints() const { return core_->local_endpoints(); }

    /// Graceful: GOAWAY to every client; requests in flight may finish within `grace`, after
    /// which the connections still open are closed; then listening stops. Any thread: it runs on
    /// the server's executor (at once when called there).
    void shutdown(std::chrono::steady_clock::duration grace = std::chrono::seconds(30)) {
        asio::dispatch(core_->get_executor(), [core = core_, grace] { core->shutdown(grace); });
    }
    /// Abrupt: closes every connection now. Any thread: it runs on the server's executor (at once
    /// when called there).
    void close() {
        asio::dispatch(core_->get_executor(), [core = core_] { core->close(); });
    }

    /// Connections currently open, handshaking ones included. On the server's executor.
    std::size_t connection_count() const noexcept { return core_->connection_count(); }
    /// Datagrams dropped as garbage or unroutable (a measure of bad input seen). On the server's
    /// executor.
    std::uint64_t dropped_datagrams() const noexcept { return core_->dropped_datagrams(); }
    /// What the server's limits did (Retry packets, refusals, timeouts, ...) and its load now.
    /// Call it on the server's executor.
    server_stats stats() const { return core_->stats(); }

private:
    static asio::awaitable<void, Executor> not_found(request_type&, response_type& res) {
        co_await res.send_header(404, {}, asio::use_awaitable_t<Executor>{});
    }

    static asio::awaitable<void, Executor> run_handler(std::shared_ptr<detail::server_session<Executor>> session,
                                                       std::shared_ptr<detail::stream_state> st, handler_type handler,
                                                       std::shared_ptr<void> slot) {
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
        slot.reset();  // one handler fewer running (server_options::max_running_handlers)
    }

    std::shared_ptr<detail::server_core<Executor>> core_;
    std::shared_ptr<detail::router<handler_type>> routes_;
};

/// basic_server on asio::any_io_executor.
using server = basic_server<>;

}  // namespace h3co

#if defined(H3CO_SEPARATE_COMPILATION)
// Compiled once, in <h3co/src.hpp>, for the default executor.
namespace h3co {
extern template class basic_server<asio::any_io_executor>;
namespace detail {
extern template class connection_driver<asio::any_io_executor>;
extern template class server_session<asio::any_io_executor>;
extern template class server_core<asio::any_io_executor>;
}  // namespace detail
}  // namespace h3co
#endif
