// Stream limits over a connection's life: what the peer may open grows back as streams close, in
// ngtcp2 and in nghttp3 alike. A browser names request streams far past the first hundred in
// PRIORITY_UPDATE frames (RFC 9218), and a peer may open reserved (GREASE) unidirectional streams
// beside its critical ones (RFC 9114 §6.2.3) at any time.
#include "support/test_support.hpp"

#include <h3co/testing.hpp>

#include <array>
#include <cstdint>
#include <string>

using namespace std::chrono_literals;

namespace stream_limits_test {

struct echo_server {
    h3co::server server;
    std::uint16_t port;

    explicit echo_server(asio::io_context& io) : server(test::executor(io), test::server_identity()), port(0) {
        server.handle("/ok", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            const auto body = co_await test::read_all(req);
            co_await res.send_header(200);
            if (!body.empty()) co_await res.write(asio::buffer(body));
            co_await res.finish();
        });
        port = server.listen("127.0.0.1", 0).port();
    }
};

asio::awaitable<int> get_ok(h3co::connection& conn, std::uint16_t port) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "GET", .url = test::url(port, "/ok", "127.0.0.1")};
    co_await stream.send_header(req);
    co_await stream.finish();
    const auto resp = co_await stream.read_response();
    co_await test::read_all(stream);
    co_return resp.status;
}

TEST_CASE("stream limits: PRIORITY_UPDATE for the 151st request stream of a connection", "[stream-limits]") {
    asio::io_context io;
    echo_server srv(io);
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port,
                                           test::trusting_test_ca());
        // More streams than max_concurrent_streams (100), one after another.
        for (int i = 0; i < 150; ++i) {
            INFO("request " << i);
            const int status = co_await get_ok(conn, srv.port);
            REQUIRE(status == 200);
        }
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = test::url(srv.port, "/ok", "127.0.0.1")};
        co_await stream.send_header(req);
        // As a browser does when the request's importance changes: the server must accept the ID.
        co_await h3co::testing::send_priority_update(stream, 1, true);
        const std::string body = "after the priority update";
        co_await stream.write(asio::buffer(body));
        co_await stream.finish();
        auto [ec, resp] = co_await stream.read_response(tuple);
        REQUIRE_FALSE(ec);
        CHECK(resp.status == 200);
        const auto echoed = co_await test::read_all(stream);
        CHECK(echoed == body);
        CHECK(conn.is_open());
    }(), 60s);
}

TEST_CASE("stream limits: 20 reserved unidirectional streams over a connection's life", "[stream-limits]") {
    asio::io_context io;
    echo_server srv(io);
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port,
                                           test::trusting_test_ca());
        // A reserved stream type (0x1f * 0 + 0x21) and a few bytes the server must ignore.
        const std::array<std::uint8_t, 6> grease{0x21, 'g', 'r', 'e', 'a', 's'};
        int opened = 0;
        for (int round = 0; round < 100 && opened < 20; ++round) {
            const auto ec = h3co::testing::send_raw_uni_stream(conn, grease);
            if (!ec)
                ++opened;
            else
                REQUIRE(ec == asio::error::would_block);
            // A request on the connection between streams: the server's MAX_STREAMS has time to come.
            const int status = co_await get_ok(conn, srv.port);
            REQUIRE(status == 200);
        }
        CHECK(opened == 20);
        CHECK(conn.is_open());
    }(), 60s);
}

}  // namespace stream_limits_test
