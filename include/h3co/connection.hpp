// A client's HTTP/3 connection to one server, and connect() to make one.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/detail/ascii.hpp>
#include <h3co/detail/async_support.hpp>
#include <h3co/detail/erased_initiate.hpp>
#include <h3co/detail/handle_access.hpp>
#include <h3co/detail/io/client_session.hpp>
#include <h3co/options.hpp>
#include <h3co/request_stream.hpp>
#include <h3co/stats.hpp>
#include <h3co/tls.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/udp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace h3co {

/// A client's HTTP/3 connection to one server, made by connect(); it opens request streams.
/// Move-only, and it owns the connection: dropping the handle closes it.
///
/// Threads: the connection runs on its executor (with several threads running it, make that a
/// strand). open_request_stream(), close() and the destructor may be called from any thread: they
/// dispatch onto it. The getters (is_open(), close_error(), close_reason(), going_away(), stats())
/// read the connection's state and are for its executor only, where your coroutines normally run.
/// As with Asio's own objects, one handle is not for two threads at once; two handles on one
/// connection (basic_client::connection_for) are.
template <class Executor = asio::any_io_executor>
class basic_connection {
public:
    using executor_type = Executor;  ///< the executor the connection runs on
    /// The same connection type on another executor type (Asio's rebind_executor convention).
    template <class Other>
    struct rebind_executor {
        using other = basic_connection<Other>;  ///< basic_connection<Other>
    };

    /// No connection: is_open() is false.
    basic_connection() = default;
    /// \cond H3CO_INTERNAL
    /// `closes_on_destroy` false: a handle on a connection someone else owns (basic_client's pool).
    explicit basic_connection(std::shared_ptr<detail::client_session<Executor>> impl, bool closes_on_destroy = true)
        : impl_(std::move(impl)), closes_on_destroy_(closes_on_destroy) {}
    /// \endcond
    /// Takes the connection over; `other` is left without one.
    basic_connection(basic_connection&&) noexcept = default;
    /// Closes the connection this handle had, then takes over `other`'s.
    basic_connection& operator=(basic_connection&& other) noexcept {
        if (this != &other) {
            release();
            impl_ = std::move(other.impl_);
            closes_on_destroy_ = other.closes_on_destroy_;
        }
        return *this;
    }
    /// Dropping the connection closes it (H3_NO_ERROR); streams still open fail with connection_closed.
    /// A handle from basic_client::connection_for leaves the pooled connection open instead.
    ~basic_connection() { release(); }

    /// The connection's executor. Requires a connection (not default-constructed or moved from).
    executor_type get_executor() const { return impl_->get_executor(); }
    /// True while the handle has a connection that has not ended (see close_error()). On the
    /// connection's executor.
    bool is_open() const noexcept { return impl_ && !impl_->terminated(); }

    /// Opens a new request stream; waits while the server's stream limit is reached.
    /// Completion: void(std::error_code, basic_request_stream<Executor>). Once the connection has
    /// ended: why (close_error(), or error::connection_closed); after the server's GOAWAY:
    /// error::going_away; on a handle without a connection (default-constructed or moved from):
    /// error::not_open.
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto open_request_stream(CompletionToken&& token = CompletionToken{}) {
        return open_request_stream_on(impl_, std::forward<CompletionToken>(token));
    }

    /// \cond H3CO_INTERNAL
    /// open_request_stream() on an engine the caller keeps alive (used by the pooling client).
    template <class CompletionToken>
    static auto open_request_stream_on(std::shared_ptr<detail::client_session<Executor>> impl, CompletionToken&& token) {
        using stream_op = detail::pending_op<std::error_code, basic_request_stream<Executor>>;
        // No connection (a default-constructed or moved-from handle): an empty executor, with which
        // initiate_erased completes the operation with error::not_open instead of starting it.
        Executor ex = [&] {
            if constexpr (std::is_default_constructible_v<Executor>)
                return impl ? impl->get_executor() : Executor{};
            else
                return impl->get_executor();
        }();
        return detail::initiate_erased<void(std::error_code, basic_request_stream<Executor>)>(
            std::forward<CompletionToken>(token), ex, [impl = std::move(impl), ex](stream_op op) mutable {
                // A cancelled wait for stream credit leaves nothing behind: any cancellation type.
                auto key = std::make_shared<char>();
                op.on_cancel([weak = std::weak_ptr<detail::client_session<Executor>>(impl), key = std::weak_ptr<char>(key),
                              ex](asio::cancellation_type) {
                    asio::dispatch(ex, [weak, key] {
                        auto s = weak.lock();
                        auto k = key.lock();
                        if (s && k) s->cancel_open(k.get());
                    });
                });
                asio::dispatch(ex, [impl = std::move(impl), ex, op = std::move(op), key = std::move(key)]() mutable {
                    impl->open_stream(detail::session::open_op(
                                          [op = std::move(op), ex](std::error_code ec,
                                                                   std::shared_ptr<detail::stream_state> st) mutable {
                                              op.complete(ec, basic_request_stream<Executor>(std::move(st), ex));
                                          },
                                          ex),
                                      std::move(key));
                });
            });
    }
    /// \endcond

    /// Moves the connection to a new local UDP socket (RFC 9000 §9): a new port, and the address
    /// the system picks for the server (as at connect()). The server validates the new path
    /// (PATH_CHALLENGE) while the old one keeps carrying the connection's packets, and the
    /// connection moves once it is validated: streams go on, nothing is lost. For a phone that
    /// changed network, or to move off a path that stopped working.
    ///
    /// Completion: void(std::error_code): success once the connection runs on the new socket;
    /// error::path_validation_failed (the server did not answer on the new path: the connection
    /// stays on the old one); error::migration_unavailable (the handshake is not confirmed yet,
    /// the server disabled active migration, or it has given no spare connection ID);
    /// error::operation_in_progress (another migrate() is under way); a socket error (bind);
    /// close_error() or error::connection_closed once the connection ended; error::not_open on
    /// a handle without a connection; error::not_supported on a virtual network (h3co::testing).
    /// Cancellation (any type) gives the move up: operation_aborted, the connection stays where
    /// it was; if the new path was already validated the move is done and the operation succeeds.
    template <class CompletionToken = detail::default_token_t<Executor>>
        requires(!std::is_convertible_v<CompletionToken, const asio::ip::address&>)
    auto migrate(CompletionToken&& token = CompletionToken{}) {
        return migrate_from(std::nullopt, std::forward<CompletionToken>(token));
    }

    /// migrate() to a socket bound to `local` (a port the system picks): another interface's
    /// address, or on loopback another 127.0.0.0/8 address such as 127.0.0.2.
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto migrate(const asio::ip::address& local, CompletionToken&& token = CompletionToken{}) {
        return migrate_from(local, std::forward<CompletionToken>(token));
    }

    /// Closes the connection: CONNECTION_CLOSE with H3_NO_ERROR, or with `code` and `reason`. Any
    /// thread: it runs on the connection's executor (at once when called there). The handle keeps
    /// the ended connection: close_error(), close_reason() and stats() still tell how it went, and
    /// operations fail with close_error().
    void close(h3_error code = h3_error::no_error, std::string reason = {}) {
        if (!impl_) return;
        asio::dispatch(impl_->get_executor(), [impl = impl_, code, reason = std::move(reason)] {
            impl->close_connection(static_cast<std::uint64_t>(code), reason);
        });
    }

    /// Why the connection ended (empty while open): a peer's close code, idle_timeout, ... On the
    /// connection's executor.
    std::error_code close_error() const noexcept { return impl_ ? impl_->close_error() : std::error_code{}; }
    /// The reason phrase of the peer's CONNECTION_CLOSE, if any. On the connection's executor.
    std::string close_reason() const { return impl_ ? impl_->close_reason() : std::string{}; }
    /// The server sent GOAWAY: finish what is open, open new requests elsewhere. On the
    /// connection's executor.
    bool going_away() const noexcept { return impl_ && impl_->going_away(); }

    /// The token the server gave for a next connection from this address (NEW_TOKEN; empty if none
    /// came): put it in connection_options::address_token to skip a Retry round trip next time.
    /// Call it on the connection's executor.
    std::string address_token() const { return impl_ ? impl_->address_token() : std::string{}; }

    /// The connection's numbers now: RTT, congestion window, bytes, losses, flow-control windows.
    /// On the connection's executor; a connection that has ended reports its counters only.
    connection_stats stats() const { return impl_ ? impl_->stats() : connection_stats{}; }
    /// The certificate the server presented (subject, SANs, DER): a copy, valid after the
    /// connection ends; empty before the handshake. On the connection's executor.
    certificate_info peer_certificate() const { return impl_ ? impl_->peer_certificate() : certificate_info{}; }
    /// The TLS cipher suite negotiated, by its IANA name ("TLS_AES_128_GCM_SHA256"); empty before
    /// the handshake. On the connection's executor.
    std::string tls_cipher() const { return impl_ ? impl_->tls_cipher() : std::string{}; }

private:
    friend struct detail::handle_access;

    template <class CompletionToken>
    auto migrate_from(std::optional<asio::ip::address> local, CompletionToken&& token) {
        using migrate_op = detail::pending_op<std::error_code>;
        Executor ex = [&] {
            if constexpr (std::is_default_constructible_v<Executor>)
                return impl_ ? impl_->get_executor() : Executor{};
            else
                return impl_->get_executor();
        }();
        return detail::initiate_erased<void(std::error_code)>(
            std::forward<CompletionToken>(token), ex, [impl = impl_, ex, local](migrate_op op) mutable {
                asio::dispatch(ex, [impl = std::move(impl), local, op = std::move(op)]() mutable {
                    impl->migrate(local ? &*local : nullptr, std::move(op));
                });
            });
    }

    void release() {
        if (closes_on_destroy_) close();
        impl_.reset();
    }

    std::shared_ptr<detail::client_session<Executor>> impl_;
    bool closes_on_destroy_ = true;
};

/// basic_connection on asio::any_io_executor.
using connection = basic_connection<>;

namespace detail {

/// True for "localhost" and names under ".localhost" (RFC 6761 §6.3), in any case.
inline bool is_localhost(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // the absolute form
    return name.size() >= 9 && ascii_iequals(name.substr(name.size() - 9), "localhost") &&
           (name.size() == 9 || name[name.size() - 10] == '.');
}

/// RFC 8305 §5 ("Connection Attempt Delay"): the next address is tried this long after the one
/// before, unless that one failed earlier.
inline constexpr std::chrono::milliseconds connection_attempt_delay{250};

/// RFC 8305 §4: the addresses with their families interleaved, the resolver's first family first
/// (IPv6, where the resolver prefers it), each family in the resolver's order.
inline std::vector<asio::ip::udp::endpoint> interleave_families(const std::vector<asio::ip::udp::endpoint>& in) {
    if (in.empty()) return {};
    const bool first_v6 = in.front().address().is_v6();
    std::vector<asio::ip::udp::endpoint> first, second, out;
    for (const auto& e : in) (e.address().is_v6() == first_v6 ? first : second).push_back(e);
    for (std::size_t i = 0; i < std::max(first.size(), second.size()); ++i) {
        if (i < first.size()) out.push_back(first[i]);
        if (i < second.size()) out.push_back(second[i]);
    }
    return out;
}

/// True when an attempt's failure says nothing about the server, only about the address: nothing
/// answered (timeout), or the network said no (refused, unreachable, no such local address).
/// Certificate, TLS, ALPN and protocol failures are the server's answer: no other address is tried.
inline bool try_next_address(const std::error_code& ec) noexcept {
    return ec == error::handshake_timeout || ec == error::idle_timeout ||
           ec.category() == asio::error::get_system_category();
}

/// Happy eyeballs (RFC 8305) over QUIC: starts a handshake with each address in turn, the next
/// one connection_attempt_delay after the one before or as soon as that one fails, and keeps the
/// first to complete; the others are given up.
template <class Executor>
class connect_race : public std::enable_shared_from_this<connect_race<Executor>> {
public:
    using session_ptr = std::shared_ptr<client_session<Executor>>;
    using done_op = pending_op<std::error_code, session_ptr>;

    connect_race(Executor ex, std::vector<asio::ip::udp::endpoint> endpoints, std::string name, std::uint16_t port,
                 std::shared_ptr<tls_context> tls, connection_options options)
        : ex_(ex), timer_(ex), endpoints_(std::move(endpoints)), name_(std::move(name)), port_(port),
          tls_(std::move(tls)), options_(std::move(options)) {
        // 0-RTT means connecting before any address has answered: only with a single address
        // (an IP literal, or a name with one). With several, resumption still saves the certificate.
        if (endpoints_.size() > 1) options_.early_data = false;
    }

    /// Starts the race on the executor; `op` gets the winner, or the last failure. Cancelling `op`
    /// gives every attempt up (operation_aborted).
    void start(done_op op) {
        op_ = std::move(op);
        op_.on_cancel([weak = this->weak_from_this(), ex = ex_](asio::cancellation_type) {
            asio::dispatch(ex, [weak] {
                if (auto self = weak.lock()) self->finish(make_error_code(asio::error::operation_aborted), nullptr);
            });
        });
        next_attempt();
    }

private:
    void next_attempt() {
        if (done_) return;
        if (next_ == endpoints_.size()) {
            if (running_ == 0) finish(last_, nullptr);
            return;
        }
        const auto endpoint = endpoints_[next_++];
        auto session = std::make_shared<client_session<Executor>>(ex_, options_, tls_);
        attempts_.push_back(session);
        ++running_;
        session->start(endpoint, name_, port_,
                       pending_op<std::error_code>(
                           [self = this->shared_from_this(), session](std::error_code ec) { self->attempt_done(session, ec); },
                           ex_));
        if (next_ < endpoints_.size()) {
            timer_.expires_after(connection_attempt_delay);
            timer_.async_wait([weak = this->weak_from_this()](std::error_code ec) {
                auto self = weak.lock();
                if (!ec && self) self->next_attempt();
            });
        }
    }

    void attempt_done(const session_ptr& session, std::error_code ec) {
        --running_;
        if (done_) {
            if (!ec) session->close_connection(static_cast<std::uint64_t>(h3_error::no_error), {});  // a late winner
            return;
        }
        if (!ec) return finish({}, session);
        last_ = ec;
        if (!try_next_address(ec)) return finish(ec, nullptr);
        timer_.cancel();  // a failed attempt starts the next one at once (RFC 8305 §5)
        next_attempt();
    }

    void finish(std::error_code ec, session_ptr winner) {
        if (done_) return;
        done_ = true;
        timer_.cancel();
        for (auto& s : std::exchange(attempts_, {}))
            if (s != winner) s->cancel_connect();
        op_.complete(ec, std::move(winner));
    }

    Executor ex_;
    io_timer<Executor> timer_;
    std::vector<asio::ip::udp::endpoint> endpoints_;
    std::string name_;
    std::uint16_t port_;
    std::shared_ptr<tls_context> tls_;
    connection_options options_;
    done_op op_;
    std::vector<session_ptr> attempts_;
    std::size_t next_ = 0;
    std::size_t running_ = 0;
    std::error_code last_ = make_error_code(error::resolve_failed);
    bool done_ = false;
};

/// Resolves `host` and races its addresses (connect_race): a blackholed address costs
/// connection_attempt_delay, not a handshake timeout, and a refused one (ICMP port unreachable on
/// the connected socket) less, so "localhost" resolving to ::1 first costs little when the server
/// listens only on 127.0.0.1.
template <class Executor>
asio::awaitable<std::pair<std::error_code, std::shared_ptr<client_session<Executor>>>, Executor> connect_attempts(
    Executor ex, std::string host, std::uint16_t port, std::shared_ptr<tls_context> tls, connection_options options) {
    using result = std::pair<std::error_code, std::shared_ptr<client_session<Executor>>>;
    // Any cancellation type ends the attempt: nothing of it is left behind for the caller.
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    const auto token = asio::use_awaitable_t<Executor>{};
    const auto aborted = [] { return result{make_error_code(asio::error::operation_aborted), nullptr}; };
    // Literal IPv6 addresses may come bracketed from a URL.
    std::string name = host.size() > 2 && host.front() == '[' && host.back() == ']' ? host.substr(1, host.size() - 2) : host;
    std::vector<asio::ip::udp::endpoint> endpoints;
    std::error_code literal_ec;
    const auto literal = asio::ip::make_address(name, literal_ec);
    if (!literal_ec) {
        endpoints = {{literal, port}};  // an address literal: no resolver (and none of its threads)
    } else if (is_localhost(name)) {
        // RFC 6761 §6.3: "localhost" is loopback, whatever the resolver (or a machine without
        // /etc/hosts) says; ::1 first, as curl and Chromium do.
        endpoints = {{asio::ip::address_v6::loopback(), port}, {asio::ip::address_v4::loopback(), port}};
    } else {
        std::error_code ec;
        asio::ip::basic_resolver<asio::ip::udp, Executor> resolver(ex);
        auto resolved = co_await resolver.async_resolve(name, std::to_string(port), asio::redirect_error(token, ec));
        const auto state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none)
            co_return aborted();  // Asio's resolver cannot be cancelled: give up once it answers
        if (ec) co_return result{make_error_code(error::resolve_failed), nullptr};
        for (const auto& entry : resolved) endpoints.push_back(entry.endpoint());
    }
    auto race = std::make_shared<connect_race<Executor>>(ex, interleave_families(endpoints), name, port, std::move(tls),
                                                         std::move(options));
    const auto tuple_token = asio::experimental::as_tuple(token);
    auto [ec, session] = co_await asio::async_initiate<decltype(tuple_token),
                                                       void(std::error_code, std::shared_ptr<client_session<Executor>>)>(
        [&](auto handler) { race->start(typename connect_race<Executor>::done_op(std::move(handler), ex)); }, tuple_token);
    co_return result{ec, std::move(session)};
}

/// Runs connect_attempts as a coroutine of its own; `op` gets the connection. Cancelling `op`
/// cancels the coroutine (on `ex`), whatever step it is at.
template <class Executor>
void launch_connect(Executor ex, std::string host, std::uint16_t port, std::shared_ptr<tls_context> tls,
                    connection_options options, pending_op<std::error_code, basic_connection<Executor>> op) {
    auto signal = forward_cancellation(op, ex);
    asio::co_spawn(ex, connect_attempts<Executor>(ex, std::move(host), port, std::move(tls), options),
                   asio::bind_cancellation_slot(
                       signal->slot(),
                       [op = std::move(op), signal](std::exception_ptr ep,
                                                    std::pair<std::error_code, std::shared_ptr<client_session<Executor>>> r) mutable {
                           if (ep) r.first = make_error_code(error::protocol_error);
                           op.complete(r.first, basic_connection<Executor>(std::move(r.second)));
                       }));
}

}  // namespace detail

/// Connects to `host`:`port` over QUIC and completes the HTTP/3 set-up. The server's certificate is
/// verified as `tls` says (by default against the system trust store and `host`). The connection
/// runs on `ex` (a strand, if several threads run it); connect() may be called from any thread.
/// Cancellation: any type (terminal, partial, total) abandons the handshake in progress and
/// completes with asio::error::operation_aborted, so `connect(...) || timer` gives up cleanly.
/// Completion: void(std::error_code, basic_connection<Executor>).
///
/// Overloads instead of default arguments: g++ 12 miscompiles class-type default-argument
/// temporaries that live across a co_await (see docs/getting-started.md).
template <class Executor, class CompletionToken = detail::default_token_t<Executor>>
auto connect(const Executor& ex, std::string host, std::uint16_t port, const client_tls& tls,
             const connection_options& options, CompletionToken&& token = CompletionToken{}) {
    auto tls_ctx = detail::tls_context::make_client(tls);  // configuration errors throw here, at the call
    using connect_op = detail::pending_op<std::error_code, basic_connection<Executor>>;
    return detail::initiate_erased<void(std::error_code, basic_connection<Executor>)>(
        std::forward<CompletionToken>(token), ex,
        [ex, host = std::move(host), port, tls_ctx = std::move(tls_ctx), options](connect_op op) mutable {
            detail::launch_connect<Executor>(ex, std::move(host), port, std::move(tls_ctx), options, std::move(op));
        });
}

/// connect() with default connection options.
template <class Executor, class CompletionToken = detail::default_token_t<Executor>>
    requires(!std::is_same_v<std::decay_t<CompletionToken>, connection_options>)
auto connect(const Executor& ex, std::string host, std::uint16_t port, const client_tls& tls,
             CompletionToken&& token = CompletionToken{}) {
    static const connection_options defaults;
    return connect(ex, std::move(host), port, tls, defaults, std::forward<CompletionToken>(token));
}

}  // namespace h3co

#if defined(H3CO_SEPARATE_COMPILATION)
// Compiled once, in <h3co/src.hpp>, for the default executor.
namespace h3co {
extern template class basic_connection<asio::any_io_executor>;
namespace detail {
extern template class connection_driver<asio::any_io_executor>;
extern template class client_session<asio::any_io_executor>;
extern template asio::awaitable<std::pair<std::error_code, std::shared_ptr<client_session<asio::any_io_executor>>>,
                                asio::any_io_executor>
connect_attempts<asio::any_io_executor>(asio::any_io_executor, std::string, std::uint16_t, std::shared_ptr<tls_context>,
                                        connection_options);
extern template void launch_connect<asio::any_io_executor>(
    asio::any_io_executor, std::string, std::uint16_t, std::shared_ptr<tls_context>, connection_options,
    pending_op<std::error_code, basic_connection<asio::any_io_executor>>);
}  // namespace detail
}  // namespace h3co
#endif
