// A seeded, in-process UDP relay between one client and one server on loopback. It faces the client
// on its own port, forwards to the server from a second socket, and applies a fault policy to each
// direction: drop, duplicate, reorder, delay with jitter, corrupt, or stop forwarding altogether
// (blackhole). Policies can be changed at any time (say, one for the handshake and one for the
// transfer), and every fault is counted, so a test can show that the faults really happened.
//
// The relay runs on the io_context it is given (the test's own): no threads, no locks. Its random
// choices come from one std::mt19937 with a fixed seed.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

namespace test {

/// What the relay does to the datagrams of one direction. Probabilities are per datagram, in [0, 1].
struct fault_policy {
    double drop = 0;       ///< lose the datagram
    double duplicate = 0;  ///< send it twice
    double reorder = 0;    ///< hold it back and send it right after the next one
    double corrupt = 0;    ///< flip one random byte (to a different value)
    std::uint32_t drop_next = 0;          ///< lose the next N datagrams for sure (counted down)
    std::uint32_t corrupt_next = 0;       ///< corrupt the next N datagrams not dropped (counted down)
    /// Send each of the next N datagrams not dropped twice, a corrupted copy (its last byte, inside
    /// the AEAD tag, flipped) first: a damaged duplicate that overtakes the intact packet.
    std::uint32_t corrupt_copy_next = 0;
    std::chrono::milliseconds delay{0};   ///< fixed delay added to every datagram
    std::chrono::milliseconds jitter{0};  ///< plus a uniform random delay in [0, jitter]
    bool blackhole = false;               ///< forward nothing at all
    /// drop_next starts only after this many more datagrams have come (counted down): "let the
    /// first flight through, then lose the next N", as the interop runner's amplificationlimit does.
    std::uint32_t drop_next_after = 0;
};

/// What the relay did to one direction's datagrams.
struct relay_counters {
    std::uint64_t received = 0;     ///< datagrams that came in
    std::uint64_t forwarded = 0;    ///< datagrams sent on (duplicates count twice)
    std::uint64_t dropped = 0;      ///< lost on purpose (drop policy)
    std::uint64_t blackholed = 0;   ///< lost because the direction was blackholed
    std::uint64_t duplicated = 0;   ///< sent an extra time
    std::uint64_t reordered = 0;    ///< held back and sent after a later one
    std::uint64_t corrupted = 0;    ///< had a byte flipped
    std::uint64_t delayed = 0;      ///< went through a delay timer
    std::uint64_t send_errors = 0;  ///< the relay's own send failed (e.g. no client seen yet)
    std::uint64_t retries = 0;      ///< QUIC v1 Retry packets among those that came in
};

/// The server's anti-amplification limit (RFC 9000 §8.1) as the relay sees it: bytes (UDP
/// payload) the server sent, against bytes of the client's that reached it, until the relay
/// forwards the client's first datagram that holds a Handshake packet (from then on the server
/// may take the client's address as validated).
struct amplification_counters {
    std::uint64_t client_bytes = 0;  ///< forwarded to the server before that datagram
    std::uint64_t server_bytes = 0;  ///< sent by the server before that datagram was forwarded
    std::uint64_t server_datagrams = 0;
    /// The most the server had sent beyond 3 x what it had received, at any datagram of its
    /// (negative: it stayed under the limit by that much at its closest).
    std::int64_t worst_excess = INT64_MIN;
    bool client_handshake_seen = false;  ///< the client's first Handshake packet went through
};

/// True when `dg` holds a QUIC v1 long-header packet of `type` (0 Initial, 1 0-RTT, 2 Handshake),
/// walking coalesced packets (RFC 9000 §12.2, §17.2).
inline bool holds_long_packet(const std::vector<std::uint8_t>& dg, unsigned type) {
    std::size_t off = 0;
    const auto varint = [&](std::uint64_t& v) {
        if (off >= dg.size()) return false;
        const std::size_t n = std::size_t{1} << (dg[off] >> 6);
        if (off + n > dg.size()) return false;
        v = dg[off] & 0x3f;
        for (std::size_t i = 1; i < n; ++i) v = (v << 8) | dg[off + i];
        off += n;
        return true;
    };
    while (off < dg.size() && (dg[off] & 0x80) != 0) {
        const unsigned t = (dg[off] >> 4) & 0x3;
        if (t == type) return true;
        if (t == 3) return false;  // Retry: nothing coalesced after it
        off += 5;                  // first byte, version
        for (int cid = 0; cid < 2; ++cid) {
            if (off >= dg.size()) return false;
            off += 1 + dg[off];
        }
        std::uint64_t v = 0;
        if (t == 0) {  // Initial: token
            if (!varint(v)) return false;
            off += v;
        }
        if (!varint(v)) return false;
        off += v;
    }
    return false;
}

class lossy_relay {
public:
    enum class direction { to_server, to_client };

    /// Binds 127.0.0.1:0 for the client and forwards what arrives there to `server`.
    lossy_relay(asio::io_context& io, const asio::ip::udp::endpoint& server, std::uint32_t seed = 20240601)
        : impl_(std::make_shared<impl>(io, server, seed)) {
        impl_->start();
    }
    lossy_relay(const lossy_relay&) = delete;
    lossy_relay& operator=(const lossy_relay&) = delete;
    ~lossy_relay() { impl_->close(); }

    /// Where the client should connect.
    asio::ip::udp::endpoint endpoint() const { return impl_->client_side.local_endpoint(); }
    std::uint16_t port() const { return endpoint().port(); }

    /// Sets the policy of one direction or of both; takes effect for the next datagram.
    void set(direction d, const fault_policy& p) { impl_->dir(d).policy = p; }
    void set(const fault_policy& both) {
        set(direction::to_server, both);
        set(direction::to_client, both);
    }
    /// Stops (or resumes) forwarding in both directions, keeping the other settings.
    void blackhole(bool on) {
        impl_->dir(direction::to_server).policy.blackhole = on;
        impl_->dir(direction::to_client).policy.blackhole = on;
    }
    /// Once `d` has carried `datagrams` more datagrams, stops forwarding in both directions for
    /// `duration`, then resumes: a path cut in the middle of a transfer, however fast it goes.
    void cut_after(direction d, std::uint32_t datagrams, std::chrono::milliseconds duration) {
        impl_->dir(d).cut_after = datagrams;
        impl_->cut_duration = duration;
    }
    const fault_policy& policy(direction d) const { return impl_->dir(d).policy; }

    /// NAT rebinding: once `to_server` has carried `datagrams` more datagrams, the relay forwards
    /// from a new socket bound to `from`:0 (another port, or another loopback address such as
    /// 127.0.0.2), and the old one closes: the server sees its client come from a new address
    /// mid-transfer, and what it sent to the old one is lost. One rebinding planned at a time.
    void rebind_after(std::uint32_t datagrams, const asio::ip::address& from) {
        impl_->rebind_countdown = datagrams;
        impl_->rebind_to = from;
    }
    /// A firewall that knows only the client's first address: datagrams from any other source
    /// are dropped (counted as blackholed), so a path the client opens from a new socket never
    /// validates.
    void only_first_client(bool on) { impl_->only_first_client = on; }
    /// Rebindings done so far (see rebind_after()).
    std::uint32_t rebindings() const { return impl_->rebindings; }
    /// Where the relay forwards to the server from, now.
    asio::ip::udp::endpoint upstream_endpoint() const { return impl_->server_side.local_endpoint(); }

    const relay_counters& counters(direction d) const { return impl_->dir(d).count; }
    const amplification_counters& amplification() const { return impl_->amp; }
    relay_counters total() const {
        const auto& a = counters(direction::to_server);
        const auto& b = counters(direction::to_client);
        return {a.received + b.received,     a.forwarded + b.forwarded,   a.dropped + b.dropped,
                a.blackholed + b.blackholed, a.duplicated + b.duplicated, a.reordered + b.reordered,
                a.corrupted + b.corrupted,   a.delayed + b.delayed,       a.send_errors + b.send_errors,
                a.retries + b.retries};
    }

    /// Stops the relay: both sockets close, held and delayed datagrams are discarded.
    void close() { impl_->close(); }

private:
    using udp = asio::ip::udp;
    using datagram = std::vector<std::uint8_t>;

    struct side {
        fault_policy policy;
        relay_counters count;
        std::optional<datagram> held;  // a reordered datagram waiting for the next one
        std::uint32_t cut_after = 0;   // see lossy_relay::cut_after (0: no cut planned)
        std::uint64_t held_generation = 0;
    };

    struct impl : std::enable_shared_from_this<impl> {
        impl(asio::io_context& io, const udp::endpoint& server_endpoint, std::uint32_t seed)
            : io(io), client_side(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
              server_side(io, udp::endpoint(server_endpoint.address().is_v6() ? asio::ip::make_address("::1")
                                                                                : asio::ip::make_address("127.0.0.1"),
                                            0)),
              server(server_endpoint), rng(seed) {}

        side& dir(direction d) { return d == direction::to_server ? up : down; }

        void start() {
            receive(direction::to_server);
            receive(direction::to_client);
        }

        void close() {
            closed = true;
            std::error_code ignored;
            client_side.close(ignored);
            server_side.close(ignored);
            up.held.reset();
            down.held.reset();
        }

        udp::socket& in_socket(direction d) { return d == direction::to_server ? client_side : server_side; }
        std::array<std::uint8_t, 65536>& in_buffer(direction d) { return d == direction::to_server ? up_buf : down_buf; }

        void receive(direction d) {
            if (closed) return;
            in_socket(d).async_receive_from(asio::buffer(in_buffer(d)), d == direction::to_server ? up_from : down_from,
                                            [self = shared_from_this(), d, gen = rebindings](std::error_code ec, std::size_t n) {
                                                if (self->closed || ec == asio::error::operation_aborted) return;
                                                // A receive on an upstream socket rebind() replaced.
                                                if (d == direction::to_client && gen != self->rebindings) return;
                                                if (!ec && d == direction::to_server && self->only_first_client &&
                                                    self->client && *self->client != self->up_from) {
                                                    ++self->up.count.received;
                                                    ++self->up.count.blackholed;
                                                } else if (!ec) {
                                                    if (d == direction::to_server) self->client = self->up_from;
                                                    const auto& buf = self->in_buffer(d);
                                                    self->on_datagram(d, datagram(buf.begin(), buf.begin() + n));
                                                }
                                                self->receive(d);
                                            });
        }

        bool chance(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < p; }

        void on_datagram(direction d, datagram dg) {
            side& s = dir(d);
            ++s.count.received;
            if (d == direction::to_client && !amp.client_handshake_seen) {
                amp.server_bytes += dg.size();
                ++amp.server_datagrams;
                amp.worst_excess = std::max(amp.worst_excess, static_cast<std::int64_t>(amp.server_bytes) -
                                                                  3 * static_cast<std::int64_t>(amp.client_bytes));
            }
            // Long header, fixed bit, type 0b11: a Retry in QUIC v1 (RFC 9000 §17.2.5).
            if (!dg.empty() && (dg[0] & 0xf0) == 0xf0) ++s.count.retries;
            if (s.cut_after > 0 && --s.cut_after == 0) start_cut();
            if (d == direction::to_server && rebind_countdown > 0 && --rebind_countdown == 0) rebind();
            const fault_policy& p = s.policy;
            if (p.blackhole) {
                ++s.count.blackholed;
                return;
            }
            if (s.policy.drop_next_after > 0) {
                --s.policy.drop_next_after;
            } else if (s.policy.drop_next > 0) {
                --s.policy.drop_next;
                ++s.count.dropped;
                return;
            }
            if (chance(p.drop)) {
                ++s.count.dropped;
                return;
            }
            const bool corrupt_now = s.policy.corrupt_next > 0 ? (--s.policy.corrupt_next, true) : chance(p.corrupt);
            if (!dg.empty() && corrupt_now) {
                const auto at = std::uniform_int_distribution<std::size_t>(0, dg.size() - 1)(rng);
                dg[at] ^= static_cast<std::uint8_t>(std::uniform_int_distribution<int>(1, 255)(rng));
                ++s.count.corrupted;
            }
            if (!dg.empty() && s.policy.corrupt_copy_next > 0) {
                --s.policy.corrupt_copy_next;
                datagram copy = dg;
                copy.back() ^= 0xff;
                ++s.count.corrupted;
                ++s.count.duplicated;
                schedule(d, std::move(copy));
            }
            const bool twice = chance(p.duplicate);
            if (!s.held && chance(p.reorder)) {
                // Hold it back; it goes out right after the next datagram, or after a short while if
                // nothing follows (a reorder must not become a loss).
                ++s.count.reordered;
                if (twice) {
                    ++s.count.duplicated;
                    schedule(d, dg);
                }
                s.held = std::move(dg);
                const auto generation = ++s.held_generation;
                auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(20));
                timer->async_wait([self = shared_from_this(), d, generation, timer](std::error_code ec) {
                    if (ec || self->closed) return;
                    side& s2 = self->dir(d);
                    if (s2.held && s2.held_generation == generation) self->release_held(d);
                });
                return;
            }
            if (twice) {
                ++s.count.duplicated;
                schedule(d, dg);
            }
            schedule(d, std::move(dg));
            if (s.held) release_held(d);
        }

        void release_held(direction d) {
            side& s = dir(d);
            datagram dg = std::move(*s.held);
            s.held.reset();
            schedule(d, std::move(dg));
        }

        void start_cut() {
            up.policy.blackhole = down.policy.blackhole = true;
            auto timer = std::make_shared<asio::steady_timer>(io, cut_duration);
            timer->async_wait([self = shared_from_this(), timer](std::error_code ec) {
                if (ec || self->closed) return;
                self->up.policy.blackhole = self->down.policy.blackhole = false;
            });
        }

        /// A new upstream socket in place of the old, whose pending receive ends (operation_aborted).
        void rebind() {
            std::error_code ignored;
            server_side.close(ignored);
            server_side = udp::socket(io, udp::endpoint(rebind_to, 0));
            ++rebindings;
            receive(direction::to_client);
        }

        /// Sends now, or after the policy's delay and jitter.
        void schedule(direction d, datagram dg) {
            side& s = dir(d);
            auto wait = s.policy.delay;
            if (s.policy.jitter.count() > 0)
                wait += std::chrono::milliseconds(std::uniform_int_distribution<long>(0, s.policy.jitter.count())(rng));
            if (wait.count() <= 0) return send(d, dg);
            ++s.count.delayed;
            auto timer = std::make_shared<asio::steady_timer>(io, wait);
            timer->async_wait([self = shared_from_this(), d, timer, dg = std::move(dg)](std::error_code ec) {
                if (!ec && !self->closed) self->send(d, dg);
            });
        }

        void send(direction d, const datagram& dg) {
            side& s = dir(d);
            std::error_code ec;
            if (d == direction::to_server) {
                server_side.send_to(asio::buffer(dg), server, 0, ec);
                if (!ec && !amp.client_handshake_seen) {
                    if (holds_long_packet(dg, 2)) amp.client_handshake_seen = true;
                    else amp.client_bytes += dg.size();
                }
            } else if (client) {
                client_side.send_to(asio::buffer(dg), *client, 0, ec);
            } else {
                ec = asio::error::not_connected;
            }
            if (ec) ++s.count.send_errors;
            else ++s.count.forwarded;
        }

        asio::io_context& io;
        udp::socket client_side;  // bound 127.0.0.1:0, where the client sends
        udp::socket server_side;  // where the server's answers come back
        udp::endpoint server;
        std::optional<udp::endpoint> client;  // the latest address the client sent from
        udp::endpoint up_from, down_from;
        std::array<std::uint8_t, 65536> up_buf{}, down_buf{};
        side up, down;
        std::mt19937 rng;
        std::chrono::milliseconds cut_duration{0};
        std::uint32_t rebind_countdown = 0;  // see lossy_relay::rebind_after (0: none planned)
        asio::ip::address rebind_to;
        std::uint32_t rebindings = 0;
        bool only_first_client = false;  // see lossy_relay::only_first_client
        amplification_counters amp;
        bool closed = false;
    };

    std::shared_ptr<impl> impl_;
};

}  // namespace test
