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
#include <stdexcept>
#include <string>
#include <vector>

namespace h3co {

/// An HTTP/3 server: it listens on UDP endpoints and runs a handler coroutine per request, picked
/// by path (see handle()). Not copyable or movable; dropping it closes every connection.
///
/// Threads: the server, its connections and its handlers run on the executor given to the
/// constructor (with several threads running it, make it a strand). handle(), shutdown() and
/// close() may be called from any thread: they dispatch onto that executor. The other members
/// (listen(), the counters, native_tls_handle()) and the destructor are for that executor, or
/// for a time when no thread runs it (say, before io_context::run()). A server on several
/// workers (an io_context per core) takes a vector of executors: see that constructor.
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
        : basic_server(std::vector<Executor>{std::move(ex)}, tls, options, limits) {}

    /// A server on several workers, Asio's io_context-per-core pattern: typically `workers` holds
    /// one io_context's executor per thread. One set of handlers serves them all. Each worker has
    /// a UDP socket of its own on each listen() address (SO_REUSEPORT), and the connections that
    /// start there: a connection stays on its worker for its whole life, and its handlers run on
    /// that worker's executor. Its connection IDs name the worker (their byte 1, or with
    /// server_options::load_balancing the nonce's first octet), by which the kernel steers
    /// datagrams to it (server_options::kernel_steering; not with an encrypted QUIC-LB
    /// configuration, which the kernel cannot read), or else the worker that got one hands it on.
    /// server_options's limits apply to each worker. One executor: the constructor above. Throws
    /// std::invalid_argument for no executor or more than 256, and for an invalid
    /// server_options::load_balancing (naming the field).
    ///
    /// Threads, for several workers: handle(), shutdown(), close() and reload_tls() from any
    /// thread, as above. listen(), local_endpoints(), native_tls_handle() and the destructor while
    /// no thread runs the workers (before run(), or after it returned); stats(),
    /// connection_count() and dropped_datagrams() too. per_worker_stats() from any thread.
    basic_server(std::vector<Executor> workers, const server_tls& tls, const connection_options& options = {},
                 const server_options& limits = {}) {
        if (workers.empty() || workers.size() > 256)
            throw std::invalid_argument("h3co::basic_server: 1 to 256 worker executors");
        if (limits.load_balancing) detail::check_quic_lb_config(*limits.load_balancing);
        auto shared_limits = limits;
        if (workers.size() > 1 && shared_limits.secret.empty()) {
            // One secret for all: any worker validates the tokens and resets for the connections of another.
            std::string secret(32, '\0');
            detail::random_bytes(reinterpret_cast<std::uint8_t*>(secret.data()), secret.size());
            shared_limits.secret = std::move(secret);
        }
        auto context = detail::tls_context::make_server(tls);  // one SSL_CTX: BoringSSL's is thread-safe
        for (auto& ex : workers) {
            auto core = std::make_shared<detail::server_core<Executor>>(ex, context, options, shared_limits);
            auto routes = std::make_shared<detail::router<handler_type>>(&not_found);
            core->set_dispatcher([routes](std::shared_ptr<detail::server_session<Executor>> session,
                                          std::shared_ptr<detail::stream_state> st, std::shared_ptr<void> slot) {
                auto handler = routes->find(st->request.path);
                const auto session_ex = session->get_executor();
                asio::co_spawn(session_ex,
                               run_handler(std::move(session), std::move(st), std::move(handler), std::move(slot)),
                               asio::detached);
            });
            cores_.push_back(std::move(core));
            routes_.push_back(std::move(routes));
        }
        if (cores_.size() > 1) {
            std::vector<std::weak_ptr<detail::server_core<Executor>>> peers(cores_.begin(), cores_.end());
            for (std::size_t i = 0; i < cores_.size(); ++i) cores_[i]->set_worker(i, peers);
            kernel_steering_wanted_ = limits.kernel_steering;
        }
        preferred_address_ = limits.preferred_address;
        preferred_port_ = limits.preferred_port;
    }
    basic_server(const basic_server&) = delete;
    basic_server& operator=(const basic_server&) = delete;
    /// Closes every connection at once. Run it on the server's executor or while no thread runs it.
    ~basic_server() {
        for (auto& core : cores_) core->close();
    }

    /// The executor given to the constructor (with several workers: the first).
    executor_type get_executor() const noexcept { return cores_.front()->get_executor(); }
    /// How many workers serve (1 for the single-executor constructor).
    std::size_t worker_count() const noexcept { return cores_.size(); }

    /// The BoringSSL context (`SSL_CTX*`) behind the server, for TLS settings h3co has no option
    /// for. Changes apply to handshakes that start afterwards; h3co relies on its QUIC method and
    /// its "h3" ALPN selection, so replacing those breaks the server.
    /// It is BoringSSL's `SSL_CTX*` (struct ssl_ctx_st), declared without including BoringSSL.
    /// Change it before listen(), or on the server's executor. After reload_tls() it is the new
    /// context; server_tls::additional_identities have contexts of their own, not this one.
    ssl_ctx_st* native_tls_handle() const noexcept { return cores_.front()->tls().native(); }

    /// Replaces the server's TLS identity (certificates, keys, client CA, SNI identities) for
    /// connections that start afterwards; connections already open keep the one they started with.
    /// This is how a renewed certificate (ACME) goes live without a restart. `tls` is loaded here,
    /// on the calling thread: if a file or PEM text cannot be loaded or a key does not match, it
    /// throws std::runtime_error (naming what failed) and the old identity stays. The swap itself
    /// runs on the server's executor (at once when called there). native_tls_handle() then
    /// returns the new context.
    void reload_tls(const server_tls& tls) {
        auto fresh = detail::tls_context::make_server(tls);
        fresh->use_ticket_secret(cores_.front()->secret(), cores_.front()->early_data());  // tickets issued before the reload still resume
        for (auto& core : cores_)
            asio::dispatch(core->get_executor(), [core, fresh] { core->reload_tls(fresh); });
    }

    /// Serves `path` with `handler`. A path ending in '/' also serves everything below it; the
    /// longest match wins. Unmatched paths get 404. Any thread: the route is added on the server's
    /// executor (at once when called there), before any request that arrives afterwards.
    void handle(std::string path, handler_type handler) {
        // Each worker reads routes of its own: no lock when a request picks its handler.
        for (std::size_t i = 0; i < cores_.size(); ++i)
            asio::dispatch(cores_[i]->get_executor(), [routes = routes_[i], path, h = handler]() mutable {
                routes->add(std::move(path), std::move(h));
            });
    }

    /// Starts listening on `endpoint` (port 0 picks a free port); returns the bound endpoint.
    /// "::" listens on IPv6 and IPv4 at once. Call it once per address to serve several. Call it
    /// on the server's executor, or while no thread runs it.
    /// With several workers: each gets a socket on it (the first binds, port 0 picking the port
    /// for all), then the kernel program is attached (server_options::kernel_steering); while no
    /// thread runs the workers.
    /// With server_options::preferred_address, the first listen() listens there too.
    asio::ip::udp::endpoint listen(const asio::ip::udp::endpoint& endpoint) {
        const auto bound = listen_one(endpoint);
        if (!preferred_address_.empty() && !preferred_bound_) {
            preferred_bound_ = true;
            const auto preferred = listen_one(
                asio::ip::udp::endpoint(asio::ip::make_address(preferred_address_), preferred_port_));
            for (auto& core : cores_) core->prefer(preferred);
        }
        return bound;
    }
    /// listen() on `address` (an IPv4 or IPv6 literal) and `port`; throws std::system_error if
    /// `address` is not an IP address or cannot be bound.
    asio::ip::udp::endpoint listen(const std::string& address, std::uint16_t port) {
        return listen(asio::ip::udp::endpoint(asio::ip::make_address(address), port));
    }

private:
    asio::ip::udp::endpoint listen_one(const asio::ip::udp::endpoint& endpoint) {
        if (cores_.size() == 1) return cores_.front()->listen(endpoint);
        const auto bound = cores_.front()->listen(endpoint, true);
        for (std::size_t i = 1; i < cores_.size(); ++i) cores_[i]->listen(bound, true);
        // The sockets joined the reuseport group in worker order: socket index = worker ID.
        const std::size_t index = cores_.front()->local_endpoints().size() - 1;
        // QUIC-LB with a key hides the worker's octet from the kernel: no program, hand-offs.
        const auto offset = cores_.front()->cid_worker_offset();
        const bool steered = kernel_steering_wanted_ && offset &&
                             detail::attach_cid_steering(cores_.front()->listener_handle(index), cores_.size(), *offset);
        kernel_steering_ = (index == 0 ? steered : kernel_steering_ && steered);
        return bound;
    }

public:

    /// The endpoints being listened on, as bound (with the ports port 0 picked). On the server's
    /// executor, or while no thread runs it.
    std::vector<asio::ip::udp::endpoint> local_endpoints() const { return cores_.front()->local_endpoints(); }

    /// Graceful: GOAWAY to every client; requests in flight may finish within `grace`, after
    /// which the connections still open are closed; then listening stops. Any thread: it runs on
    /// the server's executor (at once when called there).
    void shutdown(std::chrono::steady_clock::duration grace = std::chrono::seconds(30)) {
        for (auto& core : cores_) asio::dispatch(core->get_executor(), [core, grace] { core->shutdown(grace); });
    }
    /// Abrupt: closes every connection now. Any thread: it runs on the server's executor (at once
    /// when called there).
    void close() {
        for (auto& core : cores_) asio::dispatch(core->get_executor(), [core] { core->close(); });
    }

    /// Connections currently open, handshaking ones included. On the server's executor.
    std::size_t connection_count() const noexcept {
        std::size_t n = 0;
        for (const auto& core : cores_) n += core->connection_count();
        return n;
    }
    /// Datagrams dropped as garbage or unroutable (a measure of bad input seen). On the server's
    /// executor.
    std::uint64_t dropped_datagrams() const noexcept {
        std::uint64_t n = 0;
        for (const auto& core : cores_) n += core->dropped_datagrams();
        return n;
    }
    /// What the server's limits did (Retry packets, refusals, timeouts, ...) and its load now.
    /// Call it on the server's executor.
    /// Each worker's figures (server_stats::workers), from any thread at any time: they are
    /// counters that only their worker writes.
    std::vector<worker_stats> per_worker_stats() const {
        std::vector<worker_stats> out;
        for (const auto& core : cores_) out.push_back(core->worker_figures());
        return out;
    }

    /// With several workers: the sums, and each worker's figures in `workers`.
    server_stats stats() const {
        if (cores_.size() == 1) return cores_.front()->stats();
        server_stats out;
        for (const auto& core : cores_) {
            const auto s = core->stats();
            out.connections += s.connections;
            out.handshakes += s.handshakes;
            out.running_handlers += s.running_handlers;
            out.connections_accepted += s.connections_accepted;
            out.retries_sent += s.retries_sent;
            out.retry_tokens_accepted += s.retry_tokens_accepted;
            out.address_tokens_accepted += s.address_tokens_accepted;
            out.address_tokens_sent += s.address_tokens_sent;
            out.invalid_tokens += s.invalid_tokens;
            out.stale_address_tokens += s.stale_address_tokens;
            out.connections_refused += s.connections_refused;
            out.handshakes_dropped += s.handshakes_dropped;
            out.stateless_resets_sent += s.stateless_resets_sent;
            out.version_negotiations_sent += s.version_negotiations_sent;
            out.stateless_replies_limited += s.stateless_replies_limited;
            out.requests_refused += s.requests_refused;
            out.request_timeouts += s.request_timeouts;
            out.dropped_datagrams += s.dropped_datagrams;
            out.client_certificates_refused += s.client_certificates_refused;
            out.udp_send_errors += s.udp_send_errors;
            out.gso_fallbacks += s.gso_fallbacks;
            out.ecn_fallbacks += s.ecn_fallbacks;
            out.workers.push_back(core->worker_figures());
        }
        out.kernel_steering = kernel_steering_;
        return out;
    }

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

    std::vector<std::shared_ptr<detail::server_core<Executor>>> cores_;     ///< one per worker
    std::vector<std::shared_ptr<detail::router<handler_type>>> routes_;  ///< one per worker, alike
    bool kernel_steering_wanted_ = false;  ///< server_options::kernel_steering, several workers
    bool kernel_steering_ = false;         ///< attached on every listen() address
    std::string preferred_address_;        ///< server_options::preferred_address
    std::uint16_t preferred_port_ = 0;
    bool preferred_bound_ = false;         ///< the first listen() listened on it too
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
