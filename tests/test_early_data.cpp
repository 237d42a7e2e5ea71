// 0-RTT (RFC 9001 §4.6) with RFC 8470's replay rules: a client holding a ticket that allows early
// data sends its first requests before the handshake completes (connection_options::early_data),
// safe methods only unless a request opts in; a server accepts it only when server_options allows
// it, tells handlers which requests came early, and answers an unsafe early request 425 Too Early.
// A rejected 0-RTT fails the requests sent early with error::early_data_rejected and the connection
// goes on. Real QUIC and TLS over loopback UDP.
#include "support/lossy_relay.hpp"
#include "support/test_support.hpp"

#include <h3co/session_cache.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace early_data_test {

/// What a handler saw: the method, and whether the request came in early data.
struct seen {
    std::string method;
    bool early = false;
    bool offered = false;  ///< the server's connection_stats::early_data_offered
};

/// A server on 127.0.0.1 that answers /hello with "hi" (any method), noting each request. Clients
/// reach it through a relay that delays its answers by 40 ms (port is the relay's): as on a real
/// path, a client's first requests leave long before the handshake can complete.
struct hello_server {
    hello_server(asio::io_context& io, const h3co::server_options& limits)
        : server(test::executor(io), test::server_identity(), {}, limits) {
        server.handle("/hello", [log = log](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            log->push_back({req.method(), req.early_data(), req.connection_stats().early_data_offered});
            co_await res.send_header(200);
            co_await res.write(asio::buffer(std::string("hi")));
        });
        const auto direct = server.listen("127.0.0.1", 0).port();
        relay = std::make_unique<test::lossy_relay>(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), direct));
        test::fault_policy slow;
        slow.delay = 40ms;
        relay->set(test::lossy_relay::direction::to_client, slow);
        port = relay->port();
    }
    std::shared_ptr<std::vector<seen>> log = std::make_shared<std::vector<seen>>();
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

TEST_CASE("early-data: a rejected 0-RTT fails the early request with early_data_rejected and the connection goes on",
          "[early-data]") {
    asio::io_context io;
    // Same secret: the second server resumes the first one's tickets but refuses their early data.
    hello_server issuer(io, limits(true));
    hello_server refuser(io, limits(false));
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        co_await first_visit(issuer.port, cache);
        const auto from = "127.0.0.1:" + std::to_string(issuer.port);
        const auto to = "127.0.0.1:" + std::to_string(refuser.port);
        std::vector<h3co::session_cache::ticket> tickets;
        while (auto t = cache->take(from)) tickets.push_back(std::move(*t));
        for (auto it = tickets.rbegin(); it != tickets.rend(); ++it) cache->store(to, std::move(*it));
        const auto ex = co_await asio::this_coro::executor;
        auto conn = co_await h3co::connect(ex, "127.0.0.1", refuser.port, test::trusting_test_ca(),
                                           client_options(cache), asio::use_awaitable);
        const auto early = co_await ask(conn, "GET");
        CHECK(early == h3co::make_error_code(h3co::error::early_data_rejected).message());
        REQUIRE(conn.is_open());
        const auto again = co_await ask(conn, "GET");
        CHECK(again == "200 hi");
        const auto stats = conn.stats();
        CHECK(stats.resumed);
        CHECK(stats.early_data_offered);
        CHECK_FALSE(stats.early_data_accepted);
        conn.close();
    }());
    REQUIRE(refuser.log->size() == 1);  // only the GET sent after the handshake
    CHECK_FALSE((*refuser.log)[0].early);
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

TEST_CASE("early-data: basic_client sends a GET again when the server rejected its 0-RTT", "[early-data]") {
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
