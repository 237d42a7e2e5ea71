// The seam between the I/O layer and the world: a clock, timers and datagram endpoints. When an
// execution context carries a virtual_network service (a simulated network, tests/sim/), every
// connection, server and timer h3co makes on that context reads that service's virtual clock,
// waits on its virtual timers and sends through its simulated endpoints instead of UDP sockets.
// Without one, everything is real. Each I/O object looks the service up once, when it is made
// (asio::has_service takes a lock); after that the real path costs one well-predicted branch per
// receive batch, send batch and timer arm, never a virtual call.
#pragma once

#include <h3co/detail/datagram_run.hpp>
#include <h3co/detail/io/clock.hpp>
#include <h3co/detail/io/context_service.hpp>
#include <h3co/detail/io/udp_receive.hpp>

#include <asio/execution_context.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <system_error>

#include <sys/socket.h>

namespace h3co::detail {

/// A simulated UDP endpoint: what an I/O object uses instead of its socket. Sends never block (a
/// full link drops, as a router's queue does); receives are readiness-based like a socket's.
class datagram_port {
public:
    virtual ~datagram_port() = default;
    /// The address the endpoint is bound to.
    virtual const sockaddr_storage& local_address() const noexcept = 0;
    virtual socklen_t local_length() const noexcept = 0;
    /// Sends every run (a connected port sends to its peer whatever the run says). Returns
    /// runs.size(): a simulated endpoint never reports a full buffer.
    virtual std::size_t send(std::span<datagram_run> runs) = 0;
    /// Calls `on_ready` (posted to the executor it was given to) once a datagram is queued, or with
    /// operation_aborted when the port closes. One wait at a time.
    virtual void wait_readable(std::function<void(std::error_code)> on_ready) = 0;
    /// Hands each queued datagram (up to `max`) to `f`, in arrival order; returns how many.
    virtual std::size_t receive(std::size_t max, const std::function<void(const received_datagram&)>& f) = 0;
    virtual void close() noexcept = 0;
    virtual bool is_open() const noexcept = 0;
};

/// A simulated network and its clock (tests/sim/ has one), installed on a context with
/// install_virtual_network().
class virtual_network {
public:
    virtual ~virtual_network() = default;

    /// Virtual nanoseconds, in steady_now_ns()'s place.
    virtual std::uint64_t now_ns() const noexcept = 0;
    /// Calls `f` (no error) when virtual time reaches `deadline`, or with operation_aborted if
    /// cancel_timer(returned id) comes first. `f` posts to its own executor.
    virtual std::uint64_t add_timer(std::uint64_t deadline, std::function<void(std::error_code)> f) = 0;
    virtual void cancel_timer(std::uint64_t id) = 0;
    /// A port bound to `local` (port 0: any free one).
    virtual std::shared_ptr<datagram_port> bind(const sockaddr* local, socklen_t len) = 0;
    /// A port connected to `remote`, at this context's client address.
    virtual std::shared_ptr<datagram_port> connect(const sockaddr* remote, socklen_t len) = 0;
    /// The context is shutting down: destroy every waiting handler (timers, port waits) without
    /// invoking it, as Asio's own services do.
    virtual void abandon_all() noexcept = 0;
};

/// The service that says which virtual network a context runs on. Its presence switches that
/// context's h3co I/O to virtual time and simulated endpoints. Install it before any h3co object
/// is made on the context; the network must outlive the context's shutdown.
class virtual_network_service final : public asio::execution_context::service {
public:
    inline static asio::execution_context::id id;
    explicit virtual_network_service(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
    virtual_network* network = nullptr;

private:
    void shutdown() override {
        if (network) network->abandon_all();
    }
};

inline void install_virtual_network(asio::execution_context& ctx, virtual_network& net) {
    asio::use_service<virtual_network_service>(ctx).network = &net;
}

/// The virtual network installed on the context `ex` runs on; null (the real world) when none is.
template <class Executor>
virtual_network* virtual_network_of(const Executor& ex) noexcept {
    auto* ctx = context_of(ex);
    if (!ctx || !asio::has_service<virtual_network_service>(*ctx)) return nullptr;
    return asio::use_service<virtual_network_service>(*ctx).network;
}

/// `now` on `net`'s clock, or the real one.
inline std::uint64_t now_ns(const virtual_network* net) noexcept { return net ? net->now_ns() : steady_now_ns(); }

}  // namespace h3co::detail
