// clients: --clients connections at once from this one process (each its own UDP socket, one stream
// each) to the one server, --bytes in total, --direction up or down.
#pragma once

#include "../client.hpp"

#include <h3co/h3co.hpp>

#include <cstdio>
#include <exception>
#include <optional>

namespace bench {

/// One of the `clients` peers: a connection of its own (its own UDP socket), one stream on it.
/// Adds how long it was open (connect() to the end of its transfer) to r.connection_s: the
/// connection-seconds that the server's CPU is divided by.
inline asio::awaitable<void> one_client(const config& c, client_result& r, std::uint64_t share, int tag) {
    const auto start = clock_type::now();
    std::optional<h3co::connection> connected;
    try {
        connected.emplace(co_await connect(c));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "clients: connection %d failed to connect after %.1f s (%s)\n", tag, seconds_since(start),
                     e.what());
        throw;
    }
    auto& conn = *connected;
    try {
        co_await transfer_one(c, conn, r, share, tag);
    } catch (const std::exception& e) {
        // Which connection failed, and how its transport stood then (a stall with 256 uploads:
        // docs/performance.md, "Many slow connections").
        const auto s = conn.stats();
        std::fprintf(stderr,
                     "clients: connection %d failed after %.1f s (%s): packets sent %llu received %llu lost %llu, "
                     "cwnd %llu, in flight %llu, srtt %.1f ms, rttvar %.1f ms\n",
                     tag, seconds_since(start), e.what(), static_cast<unsigned long long>(s.packets_sent),
                     static_cast<unsigned long long>(s.packets_received), static_cast<unsigned long long>(s.packets_lost),
                     static_cast<unsigned long long>(s.congestion_window),
                     static_cast<unsigned long long>(s.bytes_in_flight), s.smoothed_rtt.count() / 1e6,
                     s.rtt_variance.count() / 1e6);
        throw;
    }
    r.connection_s += seconds_since(start);
}

inline asio::awaitable<void> client_clients(const config& c, client_result& r) {
    const auto start_client = [&](int i) { return one_client(c, r, share_of(c.bytes, c.clients, i), i + 1); };
    co_await run_together(c.clients, start_client);
}

}  // namespace bench
