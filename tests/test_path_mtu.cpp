// Path-MTU black-hole detection (session::check_path_mtu_black_hole, RFC 8899 §4.3) seen from the
// public API, over the simulated network of tests/sim/ in virtual time: a 50 ms path that PMTUD
// raises above 1200 bytes, with HTTP/3 datagrams as the only data in flight (a false alarm,
// before the ack_datagram callback) and with a real path-MTU drop (the clamp, and what happens to
// datagrams then). HTTP/3 datagrams need the 1.x stack; on 0.12 the first case checks only that a
// quiet connection keeps its path, the second the clamp and the upload.
#include "support/test_support.hpp"

#include "sim/network.hpp"

#include <h3co/sleep.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include <memory>
#include <optional>
#include <string>

using namespace std::chrono_literals;

namespace path_mtu_test {

bool on_1x() { return std::string(H3CO_TEST_STACK) == "1.x"; }

constexpr std::uint64_t ms = h3co_sim::ms;

h3co::connection_options datagram_options() {
    h3co::connection_options o;
    o.h3_datagrams = true;
    return o;
}

/// What the server's datagram sink saw.
struct sink_log {
    int received = 0;
    std::error_code end;  ///< how its receive loop ended (none: "bye")
};

/// Handler: 200, then receives datagrams until one says "bye" or receiving fails.
auto sink_handler(std::shared_ptr<sink_log> log) {
    return [log](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        auto stream = res.take_over();
        std::array<std::uint8_t, 2048> buf;
        for (;;) {
            auto [ec, n] = co_await stream.receive_datagram(asio::buffer(buf), tuple);
            if (ec) {
                log->end = ec;
                break;
            }
            if (n == 3 && std::string(buf.begin(), buf.begin() + 3) == "bye") break;
            ++log->received;
        }
        co_await stream.finish(tuple);
    };
}

/// One client and one server on a simulated network: 25 ms each way, `up` the client's direction.
struct sim_pair {
    std::unique_ptr<asio::io_context> owned_io = std::make_unique<asio::io_context>();
    asio::io_context& io = *owned_io;
    h3co_sim::network net{io, 1};
    std::shared_ptr<sink_log> log = std::make_shared<sink_log>();
    std::unique_ptr<h3co::server> server;

    explicit sim_pair(h3co_sim::link_params up) {
        h3co_sim::link_params down;
        down.delay_ns = 25 * ms;
        net.set_link_factory([up, down](std::uint32_t, std::uint32_t to) { return to == 0x7f000001u ? up : down; });
        server = std::make_unique<h3co::server>(test::executor(io), test::server_identity(), datagram_options());
        server->handle("/sink", sink_handler(log));
        server->listen("127.0.0.1", 443);
    }
    ~sim_pair() {
        server->close();
        net.run_ready();
        server.reset();
        net.run_ready();
        owned_io.reset();  // before the network: the context's shutdown reaches it
    }

    /// Runs until `done` (true) or 600 s of virtual time pass (false).
    template <class Done>
    bool run(Done&& done) {
        return net.run_until(std::forward<Done>(done), net.now_ns() + 600'000 * ms);
    }
};

/// A connection through the simulated network with a request stream to /sink, its response read.
struct sink_session {
    std::error_code failure;                    ///< the first error, if any
    std::optional<h3co::connection> conn;       ///< absent when connect() failed
    std::optional<h3co::request_stream> stream;
};

asio::awaitable<sink_session> open_sink(asio::io_context& io) {
    sink_session out;
    auto [cec, conn] = co_await h3co::connect(test::executor(io), "127.0.0.1", 443, test::trusting_test_ca(),
                                              datagram_options(), tuple);
    if (cec) {
        out.failure = cec;
        co_return out;
    }
    auto [oec, stream] = co_await conn.open_request_stream(tuple);
    const h3co::request req{.method = "POST", .url = "/sink"};
    auto [hec] = co_await stream.send_header(req, tuple);
    auto [rec, head] = co_await stream.read_response(tuple);
    out.failure = oec ? oec : hec ? hec : rec;
    out.conn.emplace(std::move(conn));
    out.stream.emplace(std::move(stream));
    co_return out;
}

/// Waits (bounded) until PMTUD has raised the path above 1200 bytes; returns the size.
asio::awaitable<std::uint64_t> raised_path(h3co::connection& conn) {
    for (int i = 0; i < 100 && conn.stats().max_udp_payload <= 1200; ++i) co_await h3co::sleep_for(100ms);
    co_return conn.stats().max_udp_payload;
}


TEST_CASE("path MTU: datagrams as the only data in flight for 5 s do not clamp the path to 1200 bytes",
          "[path-mtu]") {
    h3co_sim::link_params up;
    up.delay_ns = 25 * ms;
    sim_pair p(up);
    bool done = false;
    std::uint64_t before = 0, after = 0;
    int sent = 0;
    std::error_code failure;
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
            auto sink = co_await open_sink(p.io);
            failure = sink.failure;
            if (!sink.conn) {
                done = true;
                co_return;
            }
            auto& conn = *sink.conn;
            auto& stream = *sink.stream;
            if (!failure) {
                before = co_await raised_path(conn);
                if (on_1x()) {
                    // 1000-byte datagrams every 10 ms at 50 ms RTT: about five always in flight,
                    // and no stream data acknowledged for 5 s (more than three PTOs, and 1 s).
                    const std::vector<std::uint8_t> payload(1000, 0x5a);
                    for (int i = 0; i < 500; ++i) {
                        auto [sec] = co_await stream.send_datagram(asio::buffer(payload), tuple);
                        if (sec) {
                            failure = sec;
                            break;
                        }
                        ++sent;
                        co_await h3co::sleep_for(10ms);
                    }
                    co_await h3co::sleep_for(200ms);
                    const std::string bye = "bye";
                    auto [bec] = co_await stream.send_datagram(asio::buffer(bye), tuple);
                    if (bec && !failure) failure = bec;
                } else {
                    co_await h3co::sleep_for(5s);
                }
                after = conn.stats().max_udp_payload;
            }
            auto [fec] = co_await stream.finish(tuple);
            (void)fec;
            conn.close();
            done = true;
        },
        asio::detached);
    REQUIRE(p.run([&] { return done; }));
    REQUIRE_FALSE(failure);
    CHECK(before > 1200);  // PMTUD raised the path: the case is meaningful
    CHECK(after >= before);  // PMTUD may go on raising it; a clamp would make it 1200
    if (on_1x()) {
        CHECK(sent == 500);
        CHECK(p.log->received == 500);  // a clean link loses none
        CHECK_FALSE(p.log->end);
    }
}

TEST_CASE("path MTU: after a black hole, queued datagrams that no longer fit are dropped and counted, larger new ones fail",
          "[path-mtu]") {
    // The client's path falls from 1500 to 1280 bytes at 5 s (virtual; the clock starts at 1 s),
    // after PMTUD raised it: full-sized packets are lost from then on, ACKs still pass.
    h3co_sim::link_params up;
    up.delay_ns = 25 * ms;
    up.mtu_drop_at_ns = 5'000 * ms;
    up.mtu_after = 1280;
    sim_pair p(up);
    constexpr std::uint64_t body_size = 300'000;
    p.server->handle("/upload", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        std::uint64_t got = 0;
        std::array<char, 8192> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            got += n;
            if (ec) break;
        }
        co_await res.send_header(got == body_size ? 200 : 500, tuple);
        co_await res.finish(tuple);
    });
    bool done = false;
    std::uint64_t before = 0, clamped = 0;
    int queued = 0, status = 0;
    std::error_code failure, too_large, small;
    h3co::connection_stats end{};
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
            auto sink = co_await open_sink(p.io);
            failure = sink.failure;
            if (!sink.conn) {
                done = true;
                co_return;
            }
            auto& conn = *sink.conn;
            auto& dstream = *sink.stream;
            before = co_await raised_path(conn);
            while (!failure && p.net.now_ns() < 5'100 * ms) co_await h3co::sleep_for(100ms);
            // An upload into the black hole: its full-sized packets are lost and nothing is acknowledged.
            auto [uec, upload] = co_await conn.open_request_stream(tuple);
            const h3co::request up_req{.method = "POST", .url = "/upload"};
            auto [uhec] = co_await upload.send_header(up_req, tuple);
            if (!failure) failure = uec ? uec : uhec;
            // The body is written beside what follows: the write waits for the black hole.
            bool written = false;
            asio::co_spawn(
                p.io,
                [&]() -> asio::awaitable<void> {
                    const std::vector<std::uint8_t> body(body_size, 0x42);
                    auto [wec, wn] = co_await upload.write(asio::buffer(body), tuple);
                    auto [fec] = co_await upload.finish(tuple);
                    if (!failure) failure = wec ? wec : fec;
                    written = true;
                },
                asio::detached);
            if (on_1x()) {
                // Datagrams that fit the raised path but not 1200-byte packets, queued behind the
                // lost upload (the congestion window is full of it).
                co_await h3co::sleep_for(300ms);
                const std::vector<std::uint8_t> big(1250, 0x17);
                for (int i = 0; i < 10; ++i) {
                    auto [sec] = co_await dstream.send_datagram(asio::buffer(big), tuple);
                    if (sec) {
                        if (!failure) failure = sec;
                        break;
                    }
                    ++queued;
                }
            }
            for (int i = 0; i < 100 && conn.stats().max_udp_payload > 1200; ++i) co_await h3co::sleep_for(100ms);
            clamped = conn.stats().max_udp_payload;
            if (on_1x()) {
                const std::vector<std::uint8_t> big(1250, 0x18), fits(1000, 0x19);
                auto [tec] = co_await dstream.send_datagram(asio::buffer(big), tuple);
                too_large = tec;
                auto [sec] = co_await dstream.send_datagram(asio::buffer(fits), tuple);
                small = sec;
            }
            for (int i = 0; i < 600 && !written; ++i) co_await h3co::sleep_for(100ms);
            auto [rrec, rhead] = co_await upload.read_response(tuple);
            if (!failure) failure = rrec;
            status = rhead.status;
            const std::string bye = "bye";
            co_await dstream.send_datagram(asio::buffer(bye), tuple);
            co_await dstream.finish(tuple);
            end = conn.stats();
            conn.close();
            done = true;
        },
        asio::detached);
    REQUIRE(p.run([&] { return done; }));
    INFO("failure: " << failure.message() << ", path " << before << ", queued " << queued);
    REQUIRE_FALSE(failure);
    CHECK(before > 1280);      // PMTUD raised the path above what it carries after the drop
    CHECK(clamped == 1200);    // the black hole was detected
    CHECK(status == 200);      // and the upload got through in 1200-byte packets, byte-exact
    if (on_1x()) {
        CHECK(queued == 10);
        CHECK(too_large == h3co::error::datagram_too_large);
        CHECK_FALSE(small);
        // Every queued datagram left in a packet (lost in the black hole, or after it) or was
        // dropped and counted: none is held up or lost without a trace.
        INFO("sent " << end.datagrams_sent << " dropped " << end.datagrams_dropped << " received " << p.log->received
                     << " sink end " << p.log->end.message());
        CHECK(end.datagrams_sent + end.datagrams_dropped == 10 + 1 + 1);
        CHECK(end.datagrams_dropped >= 1);  // the big ones still queued when the clamp came
        // Datagrams are unreliable: what was sent may be lost, never more than was sent arrives.
        CHECK(static_cast<std::uint64_t>(p.log->received) <= end.datagrams_sent);
    }
}

}  // namespace path_mtu_test
