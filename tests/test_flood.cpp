// Floods of forged client Initials (issue 13): each is a real ClientHello under fresh connection
// IDs from a client that never answers (bench/initial_forger.hpp). Half-open handshakes must stay
// within the server's limits, cost little memory, be freed at the handshake timeout, and leave
// memory that a second flood reuses instead of growing.
#include "support/memory.hpp"
#include "support/test_support.hpp"

#include "bench/initial_forger.hpp"

#include <h3co/detail/io/clock.hpp>
#include <h3co/server_options.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include <malloc.h>

using namespace std::chrono_literals;

namespace flood_test {

template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        io.restart();
        io.run_for(2ms);
    }
    return true;
}

/// Sends forged Initials to a server on 127.0.0.1 from one socket, and never reads what comes back
/// (the kernel drops it once the socket's buffer is full).
class forger_socket {
public:
    forger_socket() {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof local_;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local_), &len);
    }
    ~forger_socket() { ::close(fd_); }
    forger_socket(const forger_socket&) = delete;
    forger_socket& operator=(const forger_socket&) = delete;

    /// `count` forged Initials for 127.0.0.1:`port`, made ahead (so that the forging's own memory
    /// is not counted in the server's).
    std::vector<std::vector<std::uint8_t>> forge(bench::initial_forger& forger, std::uint16_t port, int count) {
        const auto to = destination(port);
        std::vector<std::vector<std::uint8_t>> out;
        for (int i = 0; i < count; ++i) {
            out.push_back(forger.make(reinterpret_cast<const sockaddr*>(&local_), sizeof local_,
                                      reinterpret_cast<const sockaddr*>(&to), sizeof to,
                                      h3co::detail::steady_now_ns()));
            REQUIRE(out.back().size() >= 1200);
        }
        return out;
    }

    void send(const std::vector<std::uint8_t>& datagram, std::uint16_t port) {
        const auto to = destination(port);
        REQUIRE(::sendto(fd_, datagram.data(), datagram.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
                static_cast<ssize_t>(datagram.size()));
    }

private:
    static sockaddr_in destination(std::uint16_t port) {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        return to;
    }

    int fd_ = -1;
    sockaddr_in local_{};
};

/// Sends the forged Initials in batches, letting the server (on this thread) take each batch before
/// the next, so that none is lost in a full socket buffer. Returns false if the server did not
/// account for them in time.
bool flood(asio::io_context& io, h3co::server& server, forger_socket& socket, std::uint16_t port,
           const std::vector<std::vector<std::uint8_t>>& initials) {
    const auto seen = [&] {
        const auto st = server.stats();
        return st.connections_accepted + st.retries_sent + st.handshakes_dropped + st.connections_refused;
    };
    const auto start = seen();
    for (std::size_t sent = 0; sent < initials.size();) {
        for (int k = 0; k < 16 && sent < initials.size(); ++k) socket.send(initials[sent++], port);
        const auto target = start + sent;
        if (!run_until(io, [&] { return seen() >= target; }, 5s)) return false;
    }
    return true;
}

/// The C library's heap (glibc): bytes in use, and its size (what it got from the system).
struct heap_usage {
    std::size_t in_use = 0;
    std::size_t size = 0;
    static heap_usage now() {
        const auto m = ::mallinfo2();
        return {m.uordblks + m.hblkhd, m.arena + m.hblkhd};
    }
};


TEST_CASE("flood: a half-open handshake costs under 96 KiB, ends at the handshake timeout, and a second flood reuses it", "[hostile][flood]") {
    asio::io_context io;
    h3co::connection_options options;
    options.handshake_timeout = 3s;  // the floods take well under that, unless the machine is very busy
    h3co::server_options limits;  // every forged Initial gets its half-open connection
    limits.address_validation = h3co::address_validation::never;
    limits.max_handshakes = 0;
    limits.max_connections = 0;
    limits.max_connections_per_address = 0;
    h3co::server server(test::executor(io), test::server_identity(), options, limits);
    const auto port = server.listen("127.0.0.1", 0).port();
    bench::initial_forger forger;
    forger_socket socket;
    constexpr int count = 600;

    const auto warm_up = socket.forge(forger, port, 50);
    const auto first_flood = socket.forge(forger, port, count);
    const auto second_flood = socket.forge(forger, port, count);
    // A small flood first, so that allocator arenas and caches that exist once are in the baseline.
    REQUIRE(flood(io, server, socket, port, warm_up));
    REQUIRE(run_until(io, [&] { return server.connection_count() == 0; }, 10s));

    const long before = test::rss_kib();
    const heap_usage heap_before = heap_usage::now();
    REQUIRE(flood(io, server, socket, port, first_flood));
    // All of them, unless the first ones already timed out (the sizes below are per one alive).
    const std::size_t half_open_first = server.stats().handshakes;
    REQUIRE(half_open_first > count / 2);
    const long peak_first = test::rss_kib();
    const heap_usage heap_first = heap_usage::now();
    // Each ends at the handshake timeout, and everything it held is freed.
    REQUIRE(run_until(io, [&] { return server.connection_count() == 0; }, 10s));
    CHECK(server.stats().handshakes == 0);
    const heap_usage heap_drained = heap_usage::now();

    REQUIRE(flood(io, server, socket, port, second_flood));
    const std::size_t half_open_second = server.stats().handshakes;
    const long peak_second = test::rss_kib();
    const heap_usage heap_second = heap_usage::now();
    REQUIRE(run_until(io, [&] { return server.connection_count() == 0; }, 10s));
    CHECK(server.stats().connections_accepted == static_cast<std::uint64_t>(50 + 2 * count));

    const double rss_per_handshake = static_cast<double>(peak_first - before) / static_cast<double>(half_open_first);
    const double heap_per_handshake =
        static_cast<double>(heap_first.in_use - heap_before.in_use) / 1024.0 / static_cast<double>(half_open_first);
    // Room for the second flood's extra half-open handshakes, if fewer of the first were alive at once.
    const std::size_t more_second = half_open_second > half_open_first ? half_open_second - half_open_first : 0;
    const auto extra = static_cast<std::size_t>(1.25 * heap_per_handshake * 1024 * static_cast<double>(more_second));
    UNSCOPED_INFO("half-open at the end of each flood: " << half_open_first << ", " << half_open_second);
    UNSCOPED_INFO("per half-open handshake: " << rss_per_handshake << " KiB resident, " << heap_per_handshake
                  << " KiB of heap; RSS " << before << " -> " << peak_first << " -> " << peak_second
                  << " KiB; heap in use after the timeouts " << heap_drained.in_use / 1024 << " KiB (before "
                  << heap_before.in_use / 1024 << "); heap size " << heap_first.size / 1024 << " -> "
                  << heap_second.size / 1024 << " KiB");
    if (!test::under_asan) {  // ASan's quarantine and shadow memory make these meaningless
        // Mostly ngtcp2 0.12's own connection state (~85 KB; its key-skip-list blocks): Retry is
        // what keeps a flood from multiplying it (next test). h3co's share is ~15 KB.
        CHECK(rss_per_handshake <= 96);
        // Memory returns: what the half-open handshakes held is freed when they time out...
        CHECK(heap_drained.in_use <= heap_before.in_use + 1024 * 1024);
        // ...and the second flood reuses it: the heap does not grow, so neither can what of it is
        // resident (the second flood touches pages of it that the first left untouched).
        CHECK(heap_second.size <= heap_first.size + extra + 1024 * 1024);
        const auto heap_growth_kib = static_cast<long>((heap_first.size - heap_before.size + extra) / 1024);
        CHECK(peak_second - before <= heap_growth_kib + 4 * 1024);
    }
}

TEST_CASE("flood: half-open handshakes stop at max_handshakes, and at retry_threshold the flood only gets Retry packets", "[hostile][flood]") {
    asio::io_context io;
    h3co::connection_options options;
    options.handshake_timeout = 2s;
    h3co::server_options limits;
    limits.max_connections_per_address = 0;  // every forged Initial comes from 127.0.0.1
    limits.address_validation = h3co::address_validation::never;
    limits.max_handshakes = 100;
    std::optional<h3co::server> server;
    server.emplace(test::executor(io), test::server_identity(), options, limits);
    auto port = server->listen("127.0.0.1", 0).port();
    bench::initial_forger forger;
    forger_socket socket;

    REQUIRE(flood(io, *server, socket, port, socket.forge(forger, port, 300)));
    auto st = server->stats();
    CHECK(st.handshakes == 100);
    CHECK(st.connections_accepted == 100);
    CHECK(st.handshakes_dropped == 200);
    CHECK(st.retries_sent == 0);

    // The default: beyond retry_threshold, forged Initials get a Retry and cost no state.
    server.reset();
    test::settle(io, 50ms);
    limits.address_validation = h3co::address_validation::when_busy;
    limits.retry_threshold = 50;
    server.emplace(test::executor(io), test::server_identity(), options, limits);
    port = server->listen("127.0.0.1", 0).port();
    const auto initials = socket.forge(forger, port, 2000);
    const long before = test::rss_kib();
    REQUIRE(flood(io, *server, socket, port, initials));
    const long after = test::rss_kib();
    st = server->stats();
    CHECK(st.handshakes == 50);
    CHECK(st.connections_accepted == 50);
    CHECK(st.retries_sent == 1950);
    UNSCOPED_INFO("RSS growth over 2000 forged Initials with Retry: " << after - before << " KiB");
    if (!test::under_asan) CHECK(after - before <= 8 * 1024);
    REQUIRE(run_until(io, [&] { return server->connection_count() == 0; }, 10s));
    server.reset();
    test::settle(io, 50ms);
}

}  // namespace flood_test
