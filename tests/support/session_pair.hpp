// A client session and a server session wired to each other in one thread, with real TLS, a fake
// clock and no socket: the engine (detail::session) driven the way the I/O layer drives it
// (detail/io/connection_driver.hpp), but every datagram goes through an in-memory link instead of
// the kernel, and time only moves when the pair moves it.
//
// The link is a discrete-event simulation: a datagram written at time t is delivered at
// t + delay (+ any extra delay its policy gives it); when nothing is ready to run, the clock jumps
// to the next delivery or the next session expiry(). So a test that loses a packet waits for the
// probe timeout in simulated time only, and the same scenario gives the same datagrams, in the
// same order, every run. Dropping, delaying (reordering) or looking at a datagram is one
// std::function on the link.
//
// Pending operations complete through an asio::io_context used only as a completion queue: the
// pair poll()s it between steps, so coroutines awaiting engine operations run here too.
#pragma once

#include <h3co/detail/erased_initiate.hpp>
#include <h3co/detail/server_endpoint.hpp>
#include <h3co/detail/session.hpp>
#include <h3co/detail/tls_context.hpp>
#include <h3co/options.hpp>
#include <h3co/tls.hpp>

#include <asio/io_context.hpp>

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace test::sans_io {

using h3co::detail::network_path;
using h3co::detail::session_role;
using h3co::detail::stream_state;

inline constexpr std::uint64_t ms = 1'000'000;  ///< one millisecond in the engine's nanoseconds
inline constexpr std::uint64_t never = std::numeric_limits<std::uint64_t>::max();

/// One side of the pair: a session whose events are only recorded, for the loop to act on.
/// `start_client` / `start_server` are protected in detail::session; this exposes them.
class endpoint final : public h3co::detail::session {
public:
    endpoint(session_role role, const h3co::connection_options& options, std::shared_ptr<h3co::detail::tls_context> tls)
        : session(role, options, std::move(tls)) {}

    using session::set_cid_maker;
    using session::start_client;
    using session::start_server;
    using session::terminate;

    void set_default_authority(std::string authority) { default_authority_ = std::move(authority); }

    bool flush_wanted = false;                              ///< wake_flush() was called
    int established_events = 0;                             ///< on_established() calls
    std::vector<std::error_code> terminations;              ///< on_terminated() calls
    std::deque<std::shared_ptr<stream_state>> requests;     ///< on_request(): handlers to start
    std::set<std::string> connection_ids;                   ///< routing keys (server)
    std::size_t timer_wakeups = 0;  ///< times the clock jumped to this side's expiry() (a timer's wake-up)

protected:
    void wake_flush() override { flush_wanted = true; }
    void on_established() override { ++established_events; }
    void on_terminated(std::error_code ec) override {
        terminations.push_back(ec);
        flush_wanted = true;  // a CONNECTION_CLOSE may wait in the outbox
    }
    void on_request(std::shared_ptr<stream_state> st) override { requests.push_back(std::move(st)); }
    void on_connection_id(std::span<const std::uint8_t> cid, bool added) override {
        auto key = h3co::detail::cid_key(cid.data(), cid.size());
        if (added)
            connection_ids.insert(std::move(key));
        else
            connection_ids.erase(key);
    }
};

enum class direction { to_server, to_client };

/// A datagram on the link.
struct datagram {
    direction dir = direction::to_server;
    std::size_t seq = 0;  ///< 0, 1, 2 ... in each direction, in the order written
    std::vector<std::uint8_t> bytes;
    std::uint8_t ecn = 0;
    std::uint64_t sent_at = 0;
    std::uint64_t deliver_at = 0;
};

/// One direction of the link. `drop` loses a datagram; `extra_delay` holds one back (the later
/// ones overtake it: reordering). Both see every datagram as it is written.
struct link {
    std::uint64_t delay = 5 * ms;  ///< one-way delay
    std::function<bool(const datagram&)> drop;
    std::function<std::uint64_t(const datagram&)> extra_delay;

    std::size_t sent = 0;  ///< datagrams written into this direction
    std::size_t dropped = 0;
    std::size_t delivered = 0;
    std::uint64_t bytes = 0;
};

/// Starts an engine operation from a coroutine: `start(op)` gets the pending_op (for example
/// `[&](auto op) { machine.write(st, buf, true, std::move(op)); }`); it completes through `io`.
/// Use with asio::use_awaitable or asio::experimental::as_tuple(asio::use_awaitable).
template <class Signature, class CompletionToken, class Start>
auto engine_op(asio::io_context& io, Start start, CompletionToken&& token) {
    return h3co::detail::initiate_erased<Signature>(std::forward<CompletionToken>(token), io.get_executor(),
                                                    std::move(start));
}

struct pair_config {
    h3co::connection_options client_options;
    h3co::connection_options server_options;
    std::string cert_dir = H3CO_TEST_CERT_DIR;
    std::string host = "localhost";      ///< verified against the server's certificate
    std::uint64_t start_time = 1'000 * ms;  ///< the fake clock's first reading
    std::uint64_t delay = 5 * ms;         ///< one-way delay of both directions
    /// TLS contexts to share between pairs (loading the PEM files is a good part of a pair's cost);
    /// null: loaded from cert_dir.
    std::shared_ptr<h3co::detail::tls_context> client_tls;
    std::shared_ptr<h3co::detail::tls_context> server_tls;
    /// Server: writes the IDs its NEW_CONNECTION_ID frames carry (session::set_cid_maker), of the
    /// server's ID length (server_cid_length); none: random ones.
    std::function<void(std::uint8_t*, std::size_t)> server_cid_maker;
};

/// The contexts session_pair loads from `cert_dir`: the test CA for the client, server.pem/.key for
/// the server.
inline std::shared_ptr<h3co::detail::tls_context> client_tls_for(const std::string& cert_dir) {
    h3co::client_tls tls;
    tls.ca_file = cert_dir + "/ca.pem";
    return h3co::detail::tls_context::make_client(tls);
}
inline std::shared_ptr<h3co::detail::tls_context> server_tls_for(const std::string& cert_dir) {
    return h3co::detail::tls_context::make_server(
        h3co::server_tls::from_pem_files(cert_dir + "/server.pem", cert_dir + "/server.key"));
}

class session_pair {
public:
    explicit session_pair(pair_config config = {}) : config_(std::move(config)), now_(config_.start_time) {
        client_tls_ = config_.client_tls ? config_.client_tls : client_tls_for(config_.cert_dir);
        server_tls_ = config_.server_tls ? config_.server_tls : server_tls_for(config_.cert_dir);
        to_server.delay = to_client.delay = config_.delay;
        client_addr_ = ipv4(50000);
        server_addr_ = ipv4(443);
        h3co::detail::random_bytes(secret_.data(), secret_.size());
        client_ = std::make_shared<endpoint>(session_role::client, config_.client_options, client_tls_);
        client_->set_default_authority(config_.host + ":443");
    }
    session_pair(const session_pair&) = delete;
    session_pair& operator=(const session_pair&) = delete;
    ~session_pair() { shutdown(); }

    /// Ends both connections and lets every operation still pending complete (with the close
    /// error), so that no coroutine is left suspended on a stream that holds it. Call it before
    /// whatever those coroutines write to goes away (a test that fails half-way, say).
    void shutdown() {
        on_request = nullptr;
        on_deliver = nullptr;
        for (auto* side : {client_.get(), server_.get()})
            if (side && !side->terminated()) side->terminate(make_error_code(h3co::error::connection_closed));
        for (int i = 0; i < 1000; ++i) {
            io_.restart();
            if (io_.poll() == 0) break;
        }
    }

    asio::io_context& io() noexcept { return io_; }
    std::uint64_t now() const noexcept { return now_; }
    endpoint& client() noexcept { return *client_; }
    /// The server's session, once the client's first Initial has arrived (else null).
    endpoint* server() noexcept { return server_.get(); }
    std::shared_ptr<endpoint> server_ptr() const noexcept { return server_; }

    link to_server;
    link to_client;
    /// Called with each request (on_request) from the loop, outside any library callback: start a
    /// handler here (e.g. co_spawn on io()). Unset: requests stay queued in server()->requests.
    std::function<void(std::shared_ptr<stream_state>)> on_request;
    /// Sees every datagram as it is delivered (to record a corpus, say).
    std::function<void(const datagram&)> on_deliver;
    /// Datagrams to the server that opened no connection and belonged to none.
    std::size_t unroutable = 0;

    /// The client starts its handshake.
    void start() {
        client_->start_client(path(client_addr_, server_addr_), config_.host, now_);
        client_->flush_wanted = true;
    }

    /// Runs until `done()` holds; false if it did not within `sim_limit` nanoseconds of simulated
    /// time and `max_steps` steps, or if nothing can happen any more (no datagram in flight, no
    /// timer, no work). Bounded whatever the sessions do.
    bool run_until(const std::function<bool()>& done, std::uint64_t sim_limit = 60'000 * ms,
                   std::size_t max_steps = 2'000'000) {
        const std::uint64_t deadline = now_ + sim_limit;
        for (std::size_t i = 0; i < max_steps; ++i) {
            if (done()) return true;
            if (!step(deadline)) return done();
        }
        return done();
    }

    /// start() and run until both sides have completed the handshake.
    bool handshake(std::uint64_t sim_limit = 30'000 * ms) {
        start();
        return run_until([&] { return client_->established() && server_ && server_->established(); }, sim_limit);
    }

    /// One step: completions, handler starts, flushes, deliveries of what is due; when none of
    /// those had anything to do, the clock jumps to the next event. False when there is no next
    /// event before `deadline`.
    bool step(std::uint64_t deadline = never) {
        bool progress = false;
        io_.restart();
        if (io_.poll() > 0) progress = true;
        while (server_ && !server_->requests.empty()) {
            auto st = std::move(server_->requests.front());
            server_->requests.pop_front();
            if (on_request) on_request(std::move(st));
            progress = true;
        }
        for (auto* side : {client_.get(), server_.get()}) {
            if (side && side->flush_wanted) {
                flush(*side);
                progress = true;
            }
        }
        if (deliver_due()) progress = true;
        if (progress) return true;

        // Idle: move the clock to the next event.
        std::uint64_t next = never;
        if (!in_flight_.empty()) next = in_flight_.front().deliver_at;
        next = std::min({next, client_->expiry(), server_ ? server_->expiry() : never});
        if (next == never || next > deadline) return false;
        now_ = std::max(now_, next);
        for (auto* side : {client_.get(), server_.get()}) {
            if (side && !side->terminated() && now_ >= side->expiry()) {
                side->on_timer(now_);
                ++side->timer_wakeups;
                side->flush_wanted = true;
            }
        }
        return true;
    }

    /// Moves the fake clock forward (never back).
    void advance(std::uint64_t ns) { now_ += ns; }

    /// A datagram as if the client had sent it now (for tests and fuzz targets that forge input).
    void inject_to_server(std::vector<std::uint8_t> bytes) { enqueue(direction::to_server, std::move(bytes), 0); }
    void inject_to_client(std::vector<std::uint8_t> bytes) { enqueue(direction::to_client, std::move(bytes), 0); }

    /// Writes what each side has to send now (as the driver's flush does).
    void flush(endpoint& side) {
        side.flush_wanted = false;
        if (!side.terminated()) {
            if (now_ >= side.expiry()) side.on_timer(now_);  // a deadline passed meanwhile
            side.before_flush();
            h3co::detail::flush_round round;
            while (side.write_packets(now_, round)) take_outbox(side);
            side.end_flush(now_, round);
        }
        take_outbox(side);
        // Like connection_driver::after_flush: more to send right away (the round's packet limit,
        // or a pacing slot within 1 ms): flush again before the clock moves.
        if (!side.terminated() && side.last_flush_packets() > 0 && side.expiry() <= now_ + ms) side.flush_wanted = true;
    }

private:
    static sockaddr_storage ipv4(std::uint16_t port) {
        sockaddr_storage ss{};
        auto& a = reinterpret_cast<sockaddr_in&>(ss);
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return ss;
    }
    static network_path path(const sockaddr_storage& local, const sockaddr_storage& remote) {
        return network_path(reinterpret_cast<const sockaddr*>(&local), sizeof(sockaddr_in),
                            reinterpret_cast<const sockaddr*>(&remote), sizeof(sockaddr_in));
    }

    /// Moves every datagram of `side`'s outbox onto the link: runs are split into segments, as
    /// the kernel splits a GSO send.
    void take_outbox(endpoint& side) {
        auto& box = side.outbox();
        if (box.empty()) return;
        const auto dir = &side == client_.get() ? direction::to_server : direction::to_client;
        for (const auto& run : box.runs()) {
            for (std::size_t off = 0; off < run.len; off += run.segment) {
                const std::size_t n = std::min(run.segment, run.len - off);
                enqueue(dir, std::vector<std::uint8_t>(run.data + off, run.data + off + n), run.ecn);
            }
        }
        box.sent(box.runs().size(), nullptr);
    }

    void enqueue(direction dir, std::vector<std::uint8_t> bytes, std::uint8_t ecn) {
        link& l = dir == direction::to_server ? to_server : to_client;
        datagram d;
        d.dir = dir;
        d.seq = l.sent++;
        d.bytes = std::move(bytes);
        d.ecn = ecn;
        d.sent_at = now_;
        d.deliver_at = now_ + l.delay;
        l.bytes += d.bytes.size();
        if (l.drop && l.drop(d)) {
            ++l.dropped;
            return;
        }
        if (l.extra_delay) d.deliver_at += l.extra_delay(d);
        // Ordered by delivery time; equal times keep the order written.
        auto at = std::upper_bound(in_flight_.begin(), in_flight_.end(), d.deliver_at,
                                   [](std::uint64_t t, const datagram& x) { return t < x.deliver_at; });
        in_flight_.insert(at, std::move(d));
    }

    /// Delivers every datagram due by now; each side that received flushes afterwards (one flush
    /// per receive batch, as the I/O layer does).
    bool deliver_due() {
        bool any = false;
        while (!in_flight_.empty() && in_flight_.front().deliver_at <= now_) {
            datagram d = std::move(in_flight_.front());
            in_flight_.pop_front();
            any = true;
            if (on_deliver) on_deliver(d);
            if (d.dir == direction::to_client) {
                ++to_client.delivered;
                client_->read_packet(path(client_addr_, server_addr_), d.bytes.data(), d.bytes.size(), d.ecn, now_);
                client_->flush_wanted = true;
            } else if (auto* s = route(d)) {
                ++to_server.delivered;
                s->read_packet(path(server_addr_, client_addr_), d.bytes.data(), d.bytes.size(), d.ecn, now_);
                s->flush_wanted = true;
            }
        }
        return any;
    }

    /// The server's datagram entry, as server_core does it: route by destination connection ID,
    /// or accept a client Initial when there is no connection yet.
    endpoint* route(const datagram& d) {
        std::string key;
        if (!h3co::detail::server_endpoint::destination_id(d.bytes.data(), d.bytes.size(), key)) {
            ++unroutable;
            return nullptr;
        }
        if (server_ && server_->connection_ids.contains(key)) return server_.get();
        if (server_ || !h3co::detail::server_endpoint::acceptable_initial(d.bytes.data(), d.bytes.size())) {
            ++unroutable;
            return nullptr;
        }
        auto s = std::make_shared<endpoint>(session_role::server, config_.server_options, server_tls_);
        if (config_.server_cid_maker) s->set_cid_maker(config_.server_cid_maker);
        std::array<std::uint8_t, h3co::detail::server_cid_length> scid;
        h3co::detail::random_bytes(scid.data(), scid.size());
        try {
            s->start_server(path(server_addr_, client_addr_), {d.bytes.data(), d.bytes.size()}, scid, secret_, now_);
        } catch (const std::system_error&) {
            ++unroutable;
            return nullptr;
        }
        server_ = std::move(s);
        return server_.get();
    }

    pair_config config_;
    std::uint64_t now_;
    asio::io_context io_;
    std::shared_ptr<h3co::detail::tls_context> client_tls_;
    std::shared_ptr<h3co::detail::tls_context> server_tls_;
    sockaddr_storage client_addr_;
    sockaddr_storage server_addr_;
    std::array<std::uint8_t, 32> secret_;
    std::shared_ptr<endpoint> client_;
    std::shared_ptr<endpoint> server_;
    std::deque<datagram> in_flight_;  ///< both directions, ordered by delivery time
};

}  // namespace test::sans_io
