// The engine without I/O: a client session and a server session driven against each other in one
// thread, with real TLS, a fake clock and no socket (tests/support/session_pair.hpp).
#include "support/session_pair.hpp"
#include "support/test_support.hpp"

#include <h3co/detail/session.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace sans_io_test {

using test::sans_io::direction;
using test::sans_io::engine_op;
using test::sans_io::ms;
using test::sans_io::session_pair;
using h3co::detail::stream_state;

using stream_ptr = std::shared_ptr<stream_state>;

/// File descriptors open in this process: all of them, and the sockets among them.
struct fd_count {
    std::size_t all = 0;
    std::size_t sockets = 0;
    bool operator==(const fd_count&) const = default;
};

fd_count open_fds() {
    fd_count c;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        ++c.all;
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(e.path(), ec);
        if (!ec && target.string().starts_with("socket:")) ++c.sockets;
    }
    return c;
}

/// Where `a` and `b` first differ (their common length if one is a prefix of the other), or npos.
/// Compared this way so that a failure reports an offset, not two megabytes of bytes.
std::size_t first_difference(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
    const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
    if (ia == a.end() && ib == b.end()) return std::string::npos;
    return static_cast<std::size_t>(ia - a.begin());
}

std::vector<std::uint8_t> pattern(std::size_t n) {
    std::vector<std::uint8_t> v(n);
    std::uint32_t x = 2463534242u;  // xorshift: no period that a lost or repeated packet could hide in
    for (auto& b : v) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b = static_cast<std::uint8_t>(x);
    }
    return v;
}

struct upload_side {
    std::error_code open, header, finish, response;
    std::vector<std::error_code> writes;
    int status = 0;
    bool done = false;
};

struct handler_side {
    std::string method, path;
    std::vector<std::uint8_t> body;
    std::error_code end, header, finish;
    bool done = false;
};

/// The client: open a stream, send the header, write `body` in 64 KiB writes, finish, read the
/// response head.
asio::awaitable<void> upload(session_pair& p, const std::vector<std::uint8_t>& body, upload_side& out) {
    auto& io = p.io();
    auto& client = p.client();
    auto& m = client.streams();
    auto [open_ec, st] = co_await engine_op<void(std::error_code, stream_ptr)>(
        io, [&](auto op) { client.open_stream(std::move(op)); }, tuple);
    out.open = open_ec;
    if (!open_ec) {
        const h3co::request req{.method = "POST", .url = "/upload"};
        auto [hec] = co_await engine_op<void(std::error_code)>(
            io, [&](auto op) { m.send_request_header(*st, req, std::move(op)); }, tuple);
        out.header = hec;
        for (std::size_t off = 0; off < body.size() && !hec;) {
            const std::size_t n = std::min<std::size_t>(64 * 1024, body.size() - off);
            auto [wec, written] = co_await engine_op<void(std::error_code, std::size_t)>(
                io, [&](auto op) { m.write(*st, asio::buffer(body.data() + off, n), true, std::move(op)); }, tuple);
            out.writes.push_back(wec);
            if (wec || written != n) break;
            off += n;
        }
        auto [fec] = co_await engine_op<void(std::error_code)>(io, [&](auto op) { m.finish(*st, std::move(op)); }, tuple);
        out.finish = fec;
        auto [rec, head] = co_await engine_op<void(std::error_code, h3co::response_head)>(
            io, [&](auto op) { m.read_response(*st, std::move(op)); }, tuple);
        out.response = rec;
        out.status = head.status;
    }
    out.done = true;
}

/// The server's handler: read the body until eof, answer 200, finish.
asio::awaitable<void> handle(session_pair& p, stream_ptr st, handler_side& out) {
    auto& io = p.io();
    auto& m = p.server()->streams();
    out.method = st->request.method;
    out.path = st->request.path;
    std::vector<std::uint8_t> buf(16 * 1024);
    for (;;) {
        auto [ec, n] = co_await engine_op<void(std::error_code, std::size_t)>(
            io, [&](auto op) { m.read(*st, asio::buffer(buf), std::move(op)); }, tuple);
        out.body.insert(out.body.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        if (ec) {
            out.end = ec;
            break;
        }
    }
    auto [hec] = co_await engine_op<void(std::error_code)>(
        io, [&](auto op) { m.send_response_header(*st, 200, {}, std::move(op)); }, tuple);
    out.header = hec;
    auto [fec] = co_await engine_op<void(std::error_code)>(io, [&](auto op) { m.finish(*st, std::move(op)); }, tuple);
    out.finish = fec;
    out.done = true;
}

struct upload_run {
    std::vector<std::uint8_t> received;
    std::size_t to_server = 0, to_client = 0;  ///< datagrams written each way
    std::uint64_t sim_time = 0;                ///< simulated nanoseconds from start to the end
    std::uint64_t client_packets_lost = 0;
    std::size_t server_timer_wakeups = 0;  ///< the receiver's wake-ups by its timer (session_pair)
};

/// A handshake and an upload of `body` on `p`, checked on the way; returns what was counted.
upload_run run_upload(session_pair& p, const std::vector<std::uint8_t>& body) {
    const auto start = p.now();
    handler_side server;
    upload_side client;
    // On the way out, even through a failed REQUIRE: the coroutines write into `server` and
    // `client`, so they must be done before those go.
    struct drain {
        session_pair& p;
        ~drain() { p.shutdown(); }
    } drain_first{p};
    p.on_request = [&](stream_ptr st) {
        asio::co_spawn(p.io(), handle(p, std::move(st), server), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    };
    REQUIRE(p.handshake());
    asio::co_spawn(p.io(), upload(p, body, client), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    REQUIRE(p.run_until([&] { return client.done && server.done; }));

    CHECK(client.open == std::error_code());
    CHECK(client.header == std::error_code());
    for (const auto& ec : client.writes) CHECK(ec == std::error_code());
    CHECK(client.finish == std::error_code());
    CHECK(client.response == std::error_code());
    CHECK(client.status == 200);
    CHECK(server.method == "POST");
    CHECK(server.path == "/upload");
    CHECK(server.end == h3co::error::eof);
    CHECK(server.header == std::error_code());
    CHECK(server.finish == std::error_code());
    // Both streams end and are freed by their sessions.
    REQUIRE(p.run_until([&] { return p.client().open_stream_count() == 0 && p.server()->open_stream_count() == 0; }));

    upload_run r;
    r.received = std::move(server.body);
    r.to_server = p.to_server.sent;
    r.to_client = p.to_client.sent;
    r.sim_time = p.now() - start;
    r.client_packets_lost = p.client().stats().packets_lost;
    r.server_timer_wakeups = p.server()->timer_wakeups;
    return r;
}


TEST_CASE("sans-I/O: a handshake with a fake clock and no socket", "[sans_io]") {
    const auto fds_before = open_fds();
    session_pair p;
    REQUIRE(p.handshake());
    CHECK(p.client().established_events == 1);
    CHECK(p.server()->established_events == 1);
    CHECK(p.client().terminations.empty());
    CHECK(p.server()->terminations.empty());
    // At least one round trip of simulated time, and nowhere near a real timeout.
    CHECK(p.now() - 1'000 * ms >= 10 * ms);
    CHECK(p.now() - 1'000 * ms < 200 * ms);
    CHECK(p.to_server.sent >= 2);
    CHECK(p.to_client.sent >= 1);
    CHECK(p.unroutable == 0);
    CHECK(open_fds() == fds_before);  // nothing was opened: no socket, no timer
}

TEST_CASE("sans-I/O: a client's close() sends GOAWAY before its CONNECTION_CLOSE", "[sans_io][goaway]") {
    session_pair p;
    REQUIRE(p.handshake());
    REQUIRE_FALSE(p.server()->going_away());
    p.client().close(p.now(), 0x0100 /* H3_NO_ERROR */, "");
    p.client().flush_wanted = true;
    REQUIRE(p.run_until([&] { return p.server()->terminated(); }, 5'000 * ms));
    // The server read the client's GOAWAY (RFC 9114 §5.2) before the close ended the connection,
    // and the close was a clean one.
    CHECK(p.server()->going_away());
    CHECK(p.server()->close_error() == h3co::error::connection_closed);
    CHECK(p.client().close_error() == h3co::error::connection_closed);
}

TEST_CASE("sans-I/O: 1 MiB upload, byte-exact and the same datagrams every run", "[sans_io]") {
    const auto body = pattern(1024 * 1024);
    const auto fds_before = open_fds();
    std::vector<upload_run> runs;
    for (int i = 0; i < 3; ++i) {
        session_pair p;
        runs.push_back(run_upload(p, body));
        CHECK(open_fds() == fds_before);
    }
    for (const auto& r : runs) {
        CHECK(r.received.size() == body.size());
        CHECK(first_difference(r.received, body) == std::string::npos);
        CHECK(r.client_packets_lost == 0);
        // 1 MiB needs at least 1 MiB / 1452 bytes of datagrams.
        CHECK(r.to_server >= body.size() / 1452);
    }
    CHECK(runs[1].to_server == runs[0].to_server);
    CHECK(runs[2].to_server == runs[0].to_server);
    CHECK(runs[1].to_client == runs[0].to_client);
    CHECK(runs[2].to_client == runs[0].to_client);
    CHECK(runs[1].sim_time == runs[0].sim_time);
    CHECK(runs[2].sim_time == runs[0].sim_time);
    UNSCOPED_INFO("datagrams to server " << runs[0].to_server << ", to client " << runs[0].to_client
                                        << ", simulated ms " << runs[0].sim_time / ms);
}

TEST_CASE("sans-I/O: the receiver acknowledges after ack_threshold packets, and the upload is the same", "[sans_io][ack]") {
    const auto body = pattern(1024 * 1024);
    // The receiver is the server; each datagram to it arrives 100 us after the one before, as off
    // a paced path (100 Mbit/s), so that it reads them one by one and the threshold decides.
    auto run_with = [&](std::size_t threshold) {
        test::sans_io::pair_config config;
        config.server_options.ack_threshold = threshold;
        std::uint64_t last = 0;  // before the pair, which calls extra_delay until it goes
        session_pair p(config);
        p.to_server.extra_delay = [&last](const test::sans_io::datagram& d) {
            const std::uint64_t at = std::max(d.deliver_at, last + ms / 10);
            last = at;
            return at - d.deliver_at;
        };
        return run_upload(p, body);
    };
    const auto every_2 = run_with(2);
    const auto every_8 = run_with(8);
    const auto every_1 = run_with(0);  // 0 is taken as 1
    for (const auto* r : {&every_2, &every_8, &every_1}) {
        CHECK(r->received.size() == body.size());
        CHECK(first_difference(r->received, body) == std::string::npos);
    }
    UNSCOPED_INFO("datagrams to server / to client: ack_threshold 1 " << every_1.to_server << " / " << every_1.to_client
                  << ", 2 " << every_2.to_server << " / " << every_2.to_client << ", 8 " << every_8.to_server << " / "
                  << every_8.to_client);
    // Every packet, every other one, every eighth: the acknowledgements (nearly all the
    // datagrams to the client) follow.
    CHECK(every_1.to_client * 10 > every_1.to_server * 8);
    CHECK(every_2.to_client * 10 > every_2.to_server * 4);
    CHECK(every_8.to_client * 10 < every_8.to_server * 2);
    CHECK(every_8.to_client * 10 > every_8.to_server * 1);
    // The upload takes no longer for it (simulated time, within 5 %).
    CHECK(every_8.sim_time * 100 < every_2.sim_time * 105);
}

TEST_CASE("sans-I/O: a receiver that only acknowledges is not woken by a pacing timer", "[sans_io][ack][pacing]") {
    // An upload off a paced path (a datagram every 100 us, as at 100 Mbit/s): the server sends
    // ACKs (every fourth with a PING) and little else. Pacing each such round set ngtcp2's pacing
    // time up to a millisecond ahead with nothing to send: a timer wake-up for every ACK.
    const auto body = pattern(1024 * 1024);
    std::uint64_t last = 0;
    session_pair p;
    p.to_server.extra_delay = [&last](const test::sans_io::datagram& d) {
        const std::uint64_t at = std::max(d.deliver_at, last + ms / 10);
        last = at;
        return at - d.deliver_at;
    };
    const auto r = run_upload(p, body);
    CHECK(r.received.size() == body.size());
    UNSCOPED_INFO("datagrams to server " << r.to_server << ", to client " << r.to_client << ", server timer wake-ups "
                                          << r.server_timer_wakeups);
    CHECK(r.to_client * 10 > r.to_server * 4);  // an ACK for about every other packet
    // What is left wakes it: the handshake, ACK-delay deadlines, the loss timer of its few
    // ack-eliciting packets, and pacing once per packet's worth of ACKs (about one in twenty);
    // before, about one wake-up per ACK.
    CHECK(r.server_timer_wakeups * 8 < r.to_client);
}

TEST_CASE("sans-I/O: a lost datagram each way, and the upload is still byte-exact", "[sans_io]") {
    const auto body = pattern(1024 * 1024);
    session_pair lossless;
    const auto baseline = run_upload(lossless, body);

    session_pair p;
    // Datagram 100 to the server carries body bytes mid-upload; datagram 20 to the client is
    // an ACK (or the response) the client must do without.
    p.to_server.drop = [](const test::sans_io::datagram& d) { return d.seq == 100; };
    p.to_client.drop = [](const test::sans_io::datagram& d) { return d.seq == 20; };
    const auto r = run_upload(p, body);
    CHECK(p.to_server.dropped == 1);
    CHECK(p.to_client.dropped == 1);
    CHECK(r.received.size() == body.size());
    CHECK(first_difference(r.received, body) == std::string::npos);
    CHECK(r.client_packets_lost >= 1);  // ngtcp2 declared it lost, and sent its bytes again
    CHECK(baseline.client_packets_lost == 0);
}

TEST_CASE("sans-I/O: a datagram overtaken by later ones, and the upload is still byte-exact", "[sans_io]") {
    const auto body = pattern(1024 * 1024);
    session_pair p;
    std::size_t overtaken_by = 0;
    std::uint64_t held_until = 0;
    p.to_server.extra_delay = [&](const test::sans_io::datagram& d) -> std::uint64_t {
        if (d.seq != 100) return 0;
        held_until = d.deliver_at + 3 * ms;
        return 3 * ms;
    };
    p.on_deliver = [&](const test::sans_io::datagram& d) {
        if (d.dir == direction::to_server && d.seq > 100 && d.deliver_at < held_until) ++overtaken_by;
    };
    const auto r = run_upload(p, body);
    CHECK(overtaken_by > 0);
    CHECK(r.received.size() == body.size());
    CHECK(first_difference(r.received, body) == std::string::npos);
}

TEST_CASE("sans-I/O: the client's first Initial is lost, and the fake clock jumps to the probe timeout", "[sans_io]") {
    session_pair p;
    p.to_server.drop = [](const test::sans_io::datagram& d) { return d.seq == 0; };
    REQUIRE(p.handshake());
    CHECK(p.to_server.dropped == 1);
    // The retransmission waited for the PTO (initial RTT 333 ms, so about a second), which took no
    // real time.
    CHECK(p.now() - 1'000 * ms >= 500 * ms);
    CHECK(p.server()->established());
}

TEST_CASE("sans-I/O: a server that never gets the client's Finished gives up silently, and the client ends with handshake_timeout, not an idle timeout",
          "[sans_io][handshake_timeout]") {
    // The stall of docs/performance.md ("Many slow connections"): the client completes its half of
    // the handshake and sends its Finished, which the server never receives (every long-header
    // datagram after the first Initial is lost here; through a full queue it took a run of losses).
    // At its handshake timeout the server drops the connection without a word; the client, which
    // counted the handshake done, used to wait out its whole idle timeout (60 s in the bench).
    test::sans_io::pair_config config;
    config.client_options.idle_timeout = std::chrono::seconds(60);
    session_pair p(config);
    const auto start = p.now();
    p.to_server.drop = [](const test::sans_io::datagram& d) { return d.seq > 0 && (d.bytes[0] & 0x80) != 0; };
    p.start();
    REQUIRE(p.run_until([&] { return p.client().established(); }, 5'000 * ms));
    REQUIRE(p.run_until([&] { return p.client().terminated(); }, 30'000 * ms));
    REQUIRE(p.client().terminations.size() == 1);
    CHECK(p.client().terminations[0] == h3co::error::handshake_timeout);
    CHECK(p.now() - start >= 10'000 * ms);  // connection_options::handshake_timeout, from the start
    CHECK(p.now() - start < 10'100 * ms);
    // The server's half ends at its own handshake timeout, which started half a round trip later.
    REQUIRE(p.server() != nullptr);
    CHECK(p.run_until([&] { return p.server()->terminated(); }, 1'000 * ms));
    REQUIRE(p.server()->terminations.size() == 1);
    CHECK(p.server()->terminations[0] == h3co::error::handshake_timeout);
}

TEST_CASE("sans-I/O: a confirmed handshake no longer times out: a quiet connection outlives handshake_timeout",
          "[sans_io][handshake_timeout]") {
    session_pair p;
    const auto start = p.now();
    REQUIRE(p.handshake());
    p.run_until([] { return false; }, 200 * ms);  // the server's HANDSHAKE_DONE arrives
    // 20 s pass with nothing to send (the idle timeout is 30 s); the timers that are due run.
    p.advance(20'000 * ms);
    p.run_until([] { return false; }, 1'000 * ms);
    CHECK(p.now() - start >= 20'000 * ms);
    INFO((p.client().terminations.empty() ? std::string() : p.client().terminations[0].message()));
    CHECK(p.client().terminations.empty());
    CHECK(p.server()->terminations.empty());
}

}  // namespace sans_io_test
