// 0-RTT (RFC 9001 §4.6) with RFC 8470's replay rules: a client holding a ticket that allows early
// data sends its first requests before the handshake completes (connection_options::early_data),
// safe methods only unless a request opts in; a server accepts it only when server_options allows
// it, tells handlers which requests came early, and answers an unsafe early request 425 Too Early.
// A rejected 0-RTT is sent again inside the session once the handshake completes, on fresh
// streams, headers, body and FIN, and the application never sees it. Real QUIC and TLS over
// loopback UDP.
#include "support/lossy_relay.hpp"
#include "support/test_support.hpp"

#include <h3co/pipe.hpp>
#include <h3co/session_cache.hpp>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace early_data_test {

/// What a handler saw: the method, and whether the request came in early data.
struct seen {
    std::string method;
    bool early = false;
    bool offered = false;  ///< the server's connection_stats::early_data_offered
};

/// What /upload received: the whole body, and whether the request came early.
struct upload {
    std::string body;
    bool early = false;
    std::string trailer;  ///< the value of the x-check trailer field, if one came
};

/// A server on 127.0.0.1 that answers /hello with "hi" (any method), noting each request, and
/// /upload with the size of the body it read (noted in `uploads`). Clients
/// reach it through a relay that delays its answers by 40 ms (port is the relay's): as on a real
/// path, a client's first requests leave long before the handshake can complete.
struct hello_server {
    hello_server(asio::io_context& io, const h3co::server_options& limits, const h3co::connection_options& conn = {})
        : server(test::executor(io), test::server_identity(), conn, limits) {
        server.handle("/hello", [log = log](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            log->push_back({req.method(), req.early_data(), req.connection_stats().early_data_offered});
            co_await res.send_header(200);
            co_await res.write(asio::buffer(std::string("hi")));
        });
        server.handle("/upload", [uploads = uploads](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            const bool early = req.early_data();
            std::string body = co_await test::read_all(req);
            const std::string size = std::to_string(body.size());
            const auto check = req.trailers().find("x-check");
            uploads->push_back({std::move(body), early, check ? std::string(*check) : std::string()});
            co_await res.send_header(200);
            co_await res.write(asio::buffer(size));
        });
        const auto direct = server.listen("127.0.0.1", 0).port();
        relay = std::make_unique<test::lossy_relay>(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), direct));
        test::fault_policy slow;
        slow.delay = 40ms;
        relay->set(test::lossy_relay::direction::to_client, slow);
        port = relay->port();
    }
    std::shared_ptr<std::vector<seen>> log = std::make_shared<std::vector<seen>>();
    std::shared_ptr<std::vector<upload>> uploads = std::make_shared<std::vector<upload>>();
    h3co::server server;
    std::unique_ptr<test::lossy_relay> relay;
    std::uint16_t port = 0;
};

h3co::server_options limits(bool early_data, const std::string& secret = std::string(32, 'a')) {
    h3co::server_options o;
    o.secret = secret;
    o.early_data = early_data;
    return o;
}

/// One request on `conn`: "status body", or the error's message.
asio::awaitable<std::string> ask(h3co::connection& conn, std::string method, bool opt_in = false) {
    auto [oec, stream] = co_await conn.open_request_stream(tuple);
    if (oec) co_return oec.message();
    h3co::request req;
    req.method = std::move(method);
    req.url = "/hello";
    req.early_data = opt_in;
    auto [hec] = co_await stream.send_header(req, tuple);
    if (hec) co_return hec.message();
    auto [fec] = co_await stream.finish(tuple);
    if (fec) co_return fec.message();
    auto [rec, head] = co_await stream.read_response(tuple);
    if (rec) co_return rec.message();
    std::string body = co_await test::read_all(stream);
    co_return std::to_string(head.status) + " " + body;
}

h3co::connection_options client_options(std::shared_ptr<h3co::session_cache> cache, bool early_data = true) {
    h3co::connection_options o;
    o.session_cache = std::move(cache);
    o.early_data = early_data;
    return o;
}

/// A first connection that gets the server's tickets (one GET, full handshake).
asio::awaitable<void> first_visit(std::uint16_t port, std::shared_ptr<h3co::session_cache> cache) {
    const auto ex = co_await asio::this_coro::executor;
    auto conn = co_await h3co::connect(ex, "127.0.0.1", port, test::trusting_test_ca(), client_options(cache),
                                       asio::use_awaitable);
    const auto body = co_await ask(conn, "GET");
    CHECK(body == "200 hi");
    CHECK_FALSE(conn.stats().early_data_offered);
    conn.close();
}

TEST_CASE("early-data: a repeat GET goes in 0-RTT and the server accepts it", "[early-data]") {
    asio::io_context io;
    hello_server srv(io, limits(true));
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        co_await first_visit(srv.port, cache);
        const auto ex = co_await asio::this_coro::executor;
        auto conn = co_await h3co::connect(ex, "127.0.0.1", srv.port, test::trusting_test_ca(), client_options(cache),
                                           asio::use_awaitable);
        const auto body = co_await ask(conn, "GET");
        CHECK(body == "200 hi");
        const auto stats = conn.stats();
        CHECK(stats.resumed);
        CHECK(stats.early_data_offered);
        CHECK(stats.early_data_accepted);
        conn.close();
    }());
    REQUIRE(srv.log->size() == 2);
    CHECK_FALSE((*srv.log)[0].early);
    CHECK_FALSE((*srv.log)[0].offered);
    CHECK((*srv.log)[1].early);  // its HEADERS came before the client's Finished
    CHECK((*srv.log)[1].offered);
}

TEST_CASE("early-data: without connection_options::early_data the client waits for the handshake", "[early-data]") {
    asio::io_context io;
    hello_server srv(io, limits(true));
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        co_await first_visit(srv.port, cache);
        const auto ex = co_await asio::this_coro::executor;
        auto conn = co_await h3co::connect(ex, "127.0.0.1", srv.port, test::trusting_test_ca(),
                                           client_options(cache, false), asio::use_awaitable);
        const auto body = co_await ask(conn, "GET");
        CHECK(body == "200 hi");
        CHECK(conn.stats().resumed);
        CHECK_FALSE(conn.stats().early_data_offered);
        conn.close();
    }());
    REQUIRE(srv.log->size() == 2);
    CHECK_FALSE((*srv.log)[1].early);
}

TEST_CASE("early-data: a server without early_data issues tickets that allow none", "[early-data]") {
    asio::io_context io;
    hello_server srv(io, limits(false));
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        co_await first_visit(srv.port, cache);
        const auto ex = co_await asio::this_coro::executor;
        auto conn = co_await h3co::connect(ex, "127.0.0.1", srv.port, test::trusting_test_ca(), client_options(cache),
                                           asio::use_awaitable);
        const auto body = co_await ask(conn, "GET");
        CHECK(body == "200 hi");
        CHECK(conn.stats().resumed);
        CHECK_FALSE(conn.stats().early_data_offered);
        CHECK_FALSE(conn.stats().early_data_accepted);
        conn.close();
    }());
    REQUIRE(srv.log->size() == 2);
    CHECK_FALSE((*srv.log)[1].early);
}

TEST_CASE("early-data: an unsafe method waits for the handshake unless the request opts in", "[early-data]") {
    asio::io_context io;
    hello_server srv(io, limits(true));
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        co_await first_visit(srv.port, cache);
        const auto ex = co_await asio::this_coro::executor;
        auto conn = co_await h3co::connect(ex, "127.0.0.1", srv.port, test::trusting_test_ca(), client_options(cache),
                                           asio::use_awaitable);
        // Opened before the handshake completes: the POST is held until it has, the GET goes early.
        const auto post = co_await ask(conn, "POST");
        CHECK(post == "200 hi");
        CHECK(conn.stats().early_data_accepted);
        conn.close();
    }());
    REQUIRE(srv.log->size() == 2);
    CHECK((*srv.log)[1].method == "POST");
    CHECK_FALSE((*srv.log)[1].early);
}

TEST_CASE("early-data: an unsafe request sent early is answered 425 Too Early without its handler", "[early-data]") {
    asio::io_context io;
    hello_server srv(io, limits(true));
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        co_await first_visit(srv.port, cache);
        const auto ex = co_await asio::this_coro::executor;
        auto conn = co_await h3co::connect(ex, "127.0.0.1", srv.port, test::trusting_test_ca(), client_options(cache),
                                           asio::use_awaitable);
        const auto post = co_await ask(conn, "POST", true);
        CHECK(post == "425 ");
        // After the handshake the same request is served.
        const auto again = co_await ask(conn, "POST", true);
        CHECK(again == "200 hi");
        conn.close();
    }());
    REQUIRE(srv.log->size() == 2);  // the first visit's GET and the retried POST
    CHECK((*srv.log)[1].method == "POST");
    CHECK_FALSE((*srv.log)[1].early);
}

TEST_CASE("early-data: with reject_unsafe_early_requests off an early POST reaches its handler", "[early-data]") {
    asio::io_context io;
    auto o = limits(true);
    o.reject_unsafe_early_requests = false;
    hello_server srv(io, o);
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        co_await first_visit(srv.port, cache);
        const auto ex = co_await asio::this_coro::executor;
        auto conn = co_await h3co::connect(ex, "127.0.0.1", srv.port, test::trusting_test_ca(), client_options(cache),
                                           asio::use_awaitable);
        const auto post = co_await ask(conn, "POST", true);
        CHECK(post == "200 hi");
        conn.close();
    }());
    REQUIRE(srv.log->size() == 2);
    CHECK((*srv.log)[1].method == "POST");
    CHECK((*srv.log)[1].early);
}

/// basic_client: `method` on /hello of `port` ("status body", or the error's message).
asio::awaitable<std::string> fetch(h3co::client& client, std::uint16_t port, std::string method, bool opt_in) {
    h3co::request req;
    req.method = std::move(method);
    req.url = "https://127.0.0.1:" + std::to_string(port) + "/hello";
    req.early_data = opt_in;
    auto [ec, res] = co_await client.request(req, tuple);
    if (ec) co_return ec.message();
    std::string body = co_await test::read_all(res.body);
    co_return std::to_string(res.status) + " " + body;
}

/// Moves the tickets `cache` holds for `from` to `to`: a client then resumes at `to` with them.
void move_tickets(h3co::session_cache& cache, std::uint16_t from, std::uint16_t to) {
    std::vector<h3co::session_cache::ticket> tickets;
    while (auto t = cache.take("127.0.0.1:" + std::to_string(from))) tickets.push_back(std::move(*t));
    REQUIRE_FALSE(tickets.empty());
    for (auto it = tickets.rbegin(); it != tickets.rend(); ++it) cache.store("127.0.0.1:" + std::to_string(to), std::move(*it));
}

/// A connection to the server on `to` that offers 0-RTT with tickets from the one on `from`: a
/// first visit to `from` fetches them, and they move to `to`'s name.
asio::awaitable<h3co::connection> reconnect_with_tickets(std::uint16_t from, std::uint16_t to,
                                                         std::shared_ptr<h3co::session_cache> cache,
                                                         bool h3_datagrams = false) {
    co_await first_visit(from, cache);
    move_tickets(*cache, from, to);
    auto options = client_options(cache);
    options.h3_datagrams = h3_datagrams;
    const auto ex = co_await asio::this_coro::executor;
    co_return co_await h3co::connect(ex, "127.0.0.1", to, test::trusting_test_ca(), options, asio::use_awaitable);
}

TEST_CASE("early-data: a GET in a rejected 0-RTT is sent again on the same connection", "[early-data][0rtt-resend]") {
    asio::io_context io;
    // Same secret: the second server resumes the first one's tickets but refuses their early data.
    hello_server issuer(io, limits(true));
    hello_server refuser(io, limits(false));
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await reconnect_with_tickets(issuer.port, refuser.port, cache);
        const auto early = co_await ask(conn, "GET");
        CHECK(early == "200 hi");
        REQUIRE(conn.is_open());
        const auto again = co_await ask(conn, "GET");
        CHECK(again == "200 hi");
        const auto stats = conn.stats();
        CHECK(stats.resumed);
        CHECK(stats.early_data_offered);
        CHECK_FALSE(stats.early_data_accepted);
        CHECK(stats.early_requests_resent == 1);
        conn.close();
    }());
    REQUIRE(refuser.log->size() == 2);  // the early GET, sent again after the handshake, and the second
    CHECK_FALSE((*refuser.log)[0].early);
    CHECK_FALSE((*refuser.log)[1].early);
}

/// Whether the bodies /upload received are `sent`, each once and byte-exact, in any order.
bool uploads_match(const std::vector<upload>& received, std::vector<std::string> sent) {
    std::vector<std::string> got;
    for (const auto& u : received) got.push_back(u.body);
    std::sort(got.begin(), got.end());
    std::sort(sent.begin(), sent.end());
    return got == sent;
}

/// `n` bytes in which each position shows where it belongs (a byte lost, doubled or moved shows).
std::string pattern(std::size_t n, unsigned salt) {
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 7 + i / 251 + salt) % 251);
    return out;
}

/// A PUT of `body` to /upload that opts in to 0-RTT (else a POST held for the handshake), written
/// in `chunks` writes: "status answer", or the error's message.
asio::awaitable<std::string> put(h3co::connection& conn, std::string body, std::size_t chunks = 1, bool early = true) {
    auto [oec, stream] = co_await conn.open_request_stream(tuple);
    if (oec) co_return oec.message();
    h3co::request req;
    req.method = early ? "PUT" : "POST";
    req.url = "/upload";
    req.early_data = early;
    auto [hec] = co_await stream.send_header(req, tuple);
    if (hec) co_return hec.message();
    const std::size_t step = (body.size() + chunks - 1) / chunks;
    for (std::size_t at = 0; at < body.size(); at += step) {
        const auto chunk = asio::buffer(body.data() + at, std::min(step, body.size() - at));
        auto [wec, n] = co_await stream.write(chunk, tuple);
        if (wec) co_return wec.message();
    }
    auto [fec] = co_await stream.finish(tuple);
    if (fec) co_return fec.message();
    auto [rec, head] = co_await stream.read_response(tuple);
    if (rec) co_return rec.message();
    std::string answer = co_await test::read_all(stream);
    co_return std::to_string(head.status) + " " + answer;
}

TEST_CASE("early-data: a stream written in a rejected 0-RTT goes again with every body byte once, and its trailers",
          "[early-data][0rtt-resend]") {
    asio::io_context io;
    hello_server issuer(io, limits(true));
    hello_server refuser(io, limits(false));
    auto cache = std::make_shared<h3co::session_cache>();
    // Small enough that the whole body, its FIN and trailers leave in the first flight (the
    // congestion window allows ~12 kB), so all of it goes again; bigger bodies: the tests below.
    const auto body = pattern(3 * 1500 + 123, 1);
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await reconnect_with_tickets(issuer.port, refuser.port, cache);
        auto [oec, stream] = co_await conn.open_request_stream(tuple);
        REQUIRE_FALSE(oec);
        h3co::request req;
        req.method = "PUT";
        req.url = "/upload";
        req.early_data = true;
        auto [hec] = co_await stream.send_header(req, tuple);
        REQUIRE_FALSE(hec);
        for (std::size_t at = 0; at < body.size(); at += 1500) {
            const auto chunk = asio::buffer(body.data() + at, std::min<std::size_t>(1500, body.size() - at));
            auto [wec, n] = co_await stream.write(chunk, tuple);
            REQUIRE_FALSE(wec);
            CHECK(n == chunk.size());
        }
        h3co::fields trailers;
        trailers.push_back(h3co::field{"x-check", "all-of-it"});
        auto finishing = stream.finish_with_trailers(std::move(trailers), tuple);
        // All of it was written before the server's first packet, so before it refused the 0-RTT.
        CHECK(conn.stats().packets_received == 0);
        auto [fec] = co_await std::move(finishing);
        CHECK_FALSE(fec);
        auto [rec, head] = co_await stream.read_response(tuple);
        REQUIRE_FALSE(rec);
        CHECK(head.status == 200);
        const auto answer = co_await test::read_all(stream);
        CHECK(answer == std::to_string(body.size()));
        const auto stats = conn.stats();
        CHECK(stats.early_data_offered);
        CHECK_FALSE(stats.early_data_accepted);
        CHECK(stats.early_requests_resent == 1);
        conn.close();
    }());
    REQUIRE(refuser.uploads->size() == 1);
    CHECK((*refuser.uploads)[0].body.size() == body.size());
    CHECK((*refuser.uploads)[0].body == body);
    CHECK((*refuser.uploads)[0].trailer == "all-of-it");  // the trailers went again with the FIN
    CHECK_FALSE((*refuser.uploads)[0].early);
}

/// A slow producer: a chunk every 5 ms into `w` until the server's first packets came back to the
/// connection for `url` (the rejection comes in them), then 10 chunks more, well after it. What it
/// wrote goes to `sent`; `before`: how many chunks were written before any packet came back.
asio::awaitable<void> slow_producer(h3co::client& client, std::string url, h3co::pipe_writer w, std::string& sent,
                                    std::size_t& before) {
    const auto ex = co_await asio::this_coro::executor;
    auto conn = co_await client.connection_for(url);
    asio::steady_timer pause(ex);
    std::size_t after = 0;
    for (unsigned i = 0; i < 2000 && after < 10; ++i) {
        const auto chunk = pattern(3000, i);
        auto [wec, n] = co_await w.write(asio::buffer(chunk), tuple);
        if (wec) break;
        sent += chunk;
        if (conn.stats().packets_received == 0)
            ++before;
        else
            ++after;
        pause.expires_after(5ms);
        co_await pause.async_wait(asio::use_awaitable);
    }
    w.close();
}

TEST_CASE("early-data: a pipe body still being written when the 0-RTT is rejected arrives byte-exact",
          "[early-data][0rtt-resend]") {
    asio::io_context io;
    hello_server issuer(io, limits(true));
    hello_server refuser(io, limits(false));
    auto cache = std::make_shared<h3co::session_cache>();
    h3co::client client(test::executor(io), test::trusting_test_ca(), client_options(cache));
    std::string sent;
    std::size_t chunks_before_reply = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto first = co_await fetch(client, issuer.port, "GET", false);
        CHECK(first == "200 hi");
        move_tickets(*cache, issuer.port, refuser.port);
        const auto ex = co_await asio::this_coro::executor;
        const auto url = "https://127.0.0.1:" + std::to_string(refuser.port) + "/upload";
        auto [reader, writer] = h3co::make_pipe(ex, 4096);
        asio::co_spawn(ex, slow_producer(client, url, std::move(writer), sent, chunks_before_reply), asio::detached);
        h3co::request req;
        req.method = "POST";
        req.url = url;
        req.early_data = true;
        auto [ec, res] = co_await client.request(req, std::move(reader), tuple);
        REQUIRE_FALSE(ec);
        CHECK(res.status == 200);
        const auto answer = co_await test::read_all(res.body);
        CHECK(answer == std::to_string(sent.size()));
        auto conn = co_await client.connection_for(url);
        CHECK(conn.stats().early_data_offered);
        CHECK_FALSE(conn.stats().early_data_accepted);
        CHECK(conn.stats().early_requests_resent == 1);
        client.close();
    }());
    CHECK(chunks_before_reply > 0);  // part of the body went in the 0-RTT
    REQUIRE(refuser.uploads->size() == 1);
    CHECK((*refuser.uploads)[0].body.size() == sent.size());
    CHECK((*refuser.uploads)[0].body == sent);
}

TEST_CASE("early-data: eight streams of a rejected 0-RTT, GETs and uploads, and a held POST, all complete",
          "[early-data][0rtt-resend]") {
    asio::io_context io;
    hello_server issuer(io, limits(true));
    hello_server refuser(io, limits(false));
    auto cache = std::make_shared<h3co::session_cache>();
    std::vector<std::string> bodies;
    for (unsigned i = 0; i < 5; ++i) bodies.push_back(pattern(1000 + i * 17000, 10 + i));
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await reconnect_with_tickets(issuer.port, refuser.port, cache);
        auto g1 = ask(conn, "GET");
        auto p1 = put(conn, bodies[0]);
        auto g2 = ask(conn, "GET");
        auto p2 = put(conn, bodies[1], 3);
        auto g3 = ask(conn, "HEAD");
        auto p3 = put(conn, bodies[2], 5);
        auto g4 = ask(conn, "GET");
        auto p4 = put(conn, bodies[3], 2);
        auto held = put(conn, bodies[4], 4, false);  // not early: waits for the handshake, on a stream opened early
        auto [r1, r2, r3, r4, r5, r6, r7, r8, r9] =
            co_await (std::move(g1) && std::move(p1) && std::move(g2) && std::move(p2) && std::move(g3) &&
                      std::move(p3) && std::move(g4) && std::move(p4) && std::move(held));
        CHECK(r1 == "200 hi");
        CHECK(r2 == "200 " + std::to_string(bodies[0].size()));
        CHECK(r3 == "200 hi");
        CHECK(r4 == "200 " + std::to_string(bodies[1].size()));
        CHECK(r5 == "200 ");  // HEAD: no body
        CHECK(r6 == "200 " + std::to_string(bodies[2].size()));
        CHECK(r7 == "200 hi");
        CHECK(r8 == "200 " + std::to_string(bodies[3].size()));
        CHECK(r9 == "200 " + std::to_string(bodies[4].size()));
        const auto stats = conn.stats();
        CHECK(stats.early_data_offered);
        CHECK_FALSE(stats.early_data_accepted);
        CHECK(stats.early_requests_resent == 8);  // the POST was never sent early
        conn.close();
    }());
    CHECK(refuser.log->size() == 4);
    REQUIRE(refuser.uploads->size() == 5);
    CHECK(uploads_match(*refuser.uploads, bodies));
}

TEST_CASE("early-data: a server that lowered its stream limit rejects the 0-RTT, and its eight streams go again as the limit allows",
          "[early-data][0rtt-resend]") {
    asio::io_context io;
    hello_server issuer(io, limits(true));
    h3co::connection_options few;
    few.max_concurrent_streams = 3;  // the ticket remembered 100: 0-RTT opens eight, 1-RTT allows three at a time
    hello_server refuser(io, limits(true), few);
    auto cache = std::make_shared<h3co::session_cache>();
    std::vector<std::string> bodies;
    for (unsigned i = 0; i < 4; ++i) bodies.push_back(pattern(5000 + i * 9000, 30 + i));
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await reconnect_with_tickets(issuer.port, refuser.port, cache);
        auto g1 = ask(conn, "GET");
        auto p1 = put(conn, bodies[0], 2);
        auto g2 = ask(conn, "GET");
        auto p2 = put(conn, bodies[1], 3);
        auto g3 = ask(conn, "GET");
        auto p3 = put(conn, bodies[2]);
        auto g4 = ask(conn, "GET");
        auto p4 = put(conn, bodies[3], 4);
        auto [r1, r2, r3, r4, r5, r6, r7, r8] = co_await (std::move(g1) && std::move(p1) && std::move(g2) &&
                                                          std::move(p2) && std::move(g3) && std::move(p3) &&
                                                          std::move(g4) && std::move(p4));
        CHECK(r1 == "200 hi");
        CHECK(r2 == "200 " + std::to_string(bodies[0].size()));
        CHECK(r3 == "200 hi");
        CHECK(r4 == "200 " + std::to_string(bodies[1].size()));
        CHECK(r5 == "200 hi");
        CHECK(r6 == "200 " + std::to_string(bodies[2].size()));
        CHECK(r7 == "200 hi");
        CHECK(r8 == "200 " + std::to_string(bodies[3].size()));
        const auto stats = conn.stats();
        CHECK(stats.early_data_offered);
        CHECK_FALSE(stats.early_data_accepted);  // BoringSSL: the limits differ from the ticket's
        CHECK(stats.early_requests_resent == 8);
        conn.close();
    }());
    CHECK(refuser.log->size() == 4);
    REQUIRE(refuser.uploads->size() == 4);
    CHECK(uploads_match(*refuser.uploads, bodies));
}

TEST_CASE("early-data: a stream the application reset before the 0-RTT was rejected is not sent again",
          "[early-data][0rtt-resend]") {
    asio::io_context io;
    hello_server issuer(io, limits(true));
    hello_server refuser(io, limits(false));
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await reconnect_with_tickets(issuer.port, refuser.port, cache);
        auto [oec, dropped] = co_await conn.open_request_stream(tuple);
        REQUIRE_FALSE(oec);
        h3co::request req;
        req.url = "/hello";
        auto [hec] = co_await dropped.send_header(req, tuple);
        REQUIRE_FALSE(hec);
        dropped.reset();
        CHECK(conn.stats().packets_received == 0);  // before the server could refuse anything
        const auto kept = co_await ask(conn, "GET");
        CHECK(kept == "200 hi");
        auto [rec, head] = co_await dropped.read_response(tuple);
        CHECK(rec == asio::error::operation_aborted);  // its own reset, not early_data_rejected
        const auto stats = conn.stats();
        CHECK_FALSE(stats.early_data_accepted);
        CHECK(stats.early_requests_resent == 1);  // the GET that was kept
        conn.close();
    }());
    CHECK(refuser.log->size() == 1);
}

TEST_CASE("early-data: a datagram receive started on a stream of a rejected 0-RTT follows the stream to its new ID "
          "and ends with it",
          "[early-data][0rtt-resend][datagrams]") {
    const bool datagrams_supported = std::string(H3CO_TEST_STACK) == "1.x";  // nghttp3 0.8: not_supported
    asio::io_context io;
    h3co::connection_options with_datagrams;
    with_datagrams.h3_datagrams = true;
    hello_server issuer(io, limits(true), with_datagrams);
    hello_server refuser(io, limits(false), with_datagrams);
    auto cache = std::make_shared<h3co::session_cache>();
    std::array<char, 64> buf{};
    std::optional<std::error_code> received;  // the datagram receive's outcome, once it has one
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await reconnect_with_tickets(issuer.port, refuser.port, cache, true);
        auto [oec, stream] = co_await conn.open_request_stream(tuple);
        REQUIRE_FALSE(oec);
        h3co::request req;
        req.url = "/hello";
        auto [hec] = co_await stream.send_header(req, tuple);
        REQUIRE_FALSE(hec);
        // Started in 0-RTT: it waits for the server's SETTINGS (1-RTT), by when the stream has its new ID.
        stream.receive_datagram(asio::buffer(buf), [&](std::error_code ec, std::size_t) { received = ec; });
        CHECK(conn.stats().packets_received == 0);
        auto [fec] = co_await stream.finish(tuple);
        REQUIRE_FALSE(fec);
        auto [rec, head] = co_await stream.read_response(tuple);
        REQUIRE_FALSE(rec);
        CHECK(head.status == 200);
        const auto body = co_await test::read_all(stream);
        CHECK(body == "hi");
        REQUIRE(received.has_value());  // it ended with the stream, not with the connection
        CHECK(*received == (datagrams_supported ? std::error_code(h3co::error::eof)
                                                : std::error_code(h3co::error::not_supported)));
        CHECK(conn.stats().early_requests_resent == 1);
        conn.close();
    }());
    CHECK(refuser.log->size() == 1);
}

TEST_CASE("early-data: basic_client retries a 425 Too Early once, after the handshake", "[early-data]") {
    asio::io_context io;
    hello_server srv(io, limits(true));
    auto cache = std::make_shared<h3co::session_cache>();
    h3co::client client(test::executor(io), test::trusting_test_ca(), client_options(cache));
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto first = co_await fetch(client, srv.port, "GET", false);
        CHECK(first == "200 hi");
        client.close();  // the next request connects anew, in 0-RTT
        const auto post = co_await fetch(client, srv.port, "POST", true);
        CHECK(post == "200 hi");
        client.close();
    }());
    REQUIRE(srv.log->size() == 2);  // the 425 reached no handler
    CHECK((*srv.log)[1].method == "POST");
    CHECK_FALSE((*srv.log)[1].early);
}

TEST_CASE("early-data: basic_client sends a GET again when the server rejected its 0-RTT", "[early-data][0rtt-resend]") {
    asio::io_context io;
    hello_server issuer(io, limits(true));
    hello_server refuser(io, limits(false));
    auto cache = std::make_shared<h3co::session_cache>();
    h3co::client client(test::executor(io), test::trusting_test_ca(), client_options(cache));
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto first = co_await fetch(client, issuer.port, "GET", false);
        CHECK(first == "200 hi");
        std::vector<h3co::session_cache::ticket> tickets;
        while (auto t = cache->take("127.0.0.1:" + std::to_string(issuer.port))) tickets.push_back(std::move(*t));
        REQUIRE_FALSE(tickets.empty());
        for (auto it = tickets.rbegin(); it != tickets.rend(); ++it)
            cache->store("127.0.0.1:" + std::to_string(refuser.port), std::move(*it));
        const auto again = co_await fetch(client, refuser.port, "GET", false);
        CHECK(again == "200 hi");
        auto conn = co_await client.connection_for("https://127.0.0.1:" + std::to_string(refuser.port) + "/");
        CHECK(conn.stats().early_data_offered);
        CHECK_FALSE(conn.stats().early_data_accepted);
        client.close();
    }());
    CHECK(refuser.log->size() == 1);  // the GET sent again after the handshake
}

}  // namespace early_data_test
