// Extended CONNECT (RFC 9220): a server that offers SETTINGS_ENABLE_CONNECT_PROTOCOL gets the
// request's :protocol in request_head::protocol; a client sends :protocol only after reading that
// setting (h3co reads the server's SETTINGS itself: nghttp3 0.8 and 1.8 clients drop it), and gets
// error::not_negotiated from a server that does not offer it. Works on both stacks.
#include "support/lossy_relay.hpp"
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

using namespace std::chrono_literals;

namespace extended_connect_test {

struct seen_request {
    std::string method, protocol, path;
};

/// A server whose /tunnel handler records the request head and answers 200, then echoes the
/// stream's bytes (what a tunnel would carry).
struct connect_server {
    h3co::server server;
    std::shared_ptr<std::vector<seen_request>> seen = std::make_shared<std::vector<seen_request>>();
    std::uint16_t port;
    connect_server(asio::io_context& io, bool offer)
        : server(test::executor(io), test::server_identity(), options(offer)) {
        server.handle("/tunnel", [seen = seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            seen->push_back({req.head().method, req.head().protocol, req.head().path});
            co_await res.send_header(200);
            auto stream = res.take_over();
            std::array<char, 1024> buf;
            for (;;) {
                auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
                if (n) co_await stream.write(asio::buffer(buf.data(), n));
                if (ec) break;
            }
            co_await stream.finish(tuple);
        });
        port = server.listen("127.0.0.1", 0).port();
    }
    static h3co::connection_options options(bool offer) {
        h3co::connection_options o;
        o.extended_connect = offer;
        return o;
    }
};

using test::read_all;


TEST_CASE("extended CONNECT: :protocol reaches the handler and the stream carries bytes both ways", "[connect]") {
    asio::io_context io;
    connect_server srv(io, true);
    int status = 0;
    std::string echoed;
    test::run(io, [&]() -> asio::awaitable<void> {
        // The request goes out right after the handshake, before the server's SETTINGS can have
        // arrived: send_header must wait for them rather than fail or send :protocol blindly.
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "CONNECT", .url = "/tunnel", .protocol = "websocket"};
        co_await stream.send_header(req);
        status = (co_await stream.read_response()).status;
        const std::string through = "through the tunnel";
        co_await stream.write(asio::buffer(through));
        co_await stream.finish();
        echoed = co_await read_all(stream);
    }());
    CHECK(status == 200);
    CHECK(echoed == "through the tunnel");
    REQUIRE(srv.seen->size() == 1);
    CHECK((*srv.seen)[0].method == "CONNECT");
    CHECK((*srv.seen)[0].protocol == "websocket");
    CHECK((*srv.seen)[0].path == "/tunnel");
}

// Through a relay that delays every server-to-client datagram by 100 ms, the server's SETTINGS (sent
// once the server has the client's Finished) reach the client 100 ms after its handshake completed:
// a request sent at once must wait for them, not fail and not send :protocol unannounced.
TEST_CASE("extended CONNECT: send_header waits for the server's SETTINGS", "[connect]") {
    asio::io_context io;
    connect_server srv(io, true);
    test::lossy_relay relay(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), srv.port));
    test::fault_policy late;
    late.delay = 100ms;
    relay.set(test::lossy_relay::direction::to_client, late);
    std::error_code sent;
    int status = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), relay.port(),
                                           test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "CONNECT", .url = "/tunnel", .protocol = "connect-udp"};
        auto [ec] = co_await stream.send_header(req, tuple);
        sent = ec;
        if (ec) co_return;
        co_await stream.finish();
        status = (co_await stream.read_response()).status;
        co_await read_all(stream);
    }());
    CHECK_FALSE(sent);
    CHECK(status == 200);
    REQUIRE(srv.seen->size() == 1);
    CHECK((*srv.seen)[0].protocol == "connect-udp");
}

TEST_CASE("extended CONNECT: ordinary requests carry no protocol", "[connect]") {
    asio::io_context io;
    connect_server srv(io, true);
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = "/tunnel"};
        co_await stream.send_header(req);
        co_await stream.finish();
        CHECK((co_await stream.read_response()).status == 200);
        co_await read_all(stream);
    }());
    REQUIRE(srv.seen->size() == 1);
    CHECK((*srv.seen)[0].protocol.empty());
}

TEST_CASE("extended CONNECT: a server that does not offer it gets no :protocol, the client fails clearly",
          "[connect]") {
    asio::io_context io;
    connect_server srv(io, false);
    std::error_code refused, wrong_method, raw_reset;
    // Built outside the coroutine: g++ 12 rejects initializer lists of string literals inside one.
    const h3co::fields raw_connect{{":method", "CONNECT"},
                                   {":protocol", "websocket"},
                                   {":scheme", "https"},
                                   {":authority", "127.0.0.1:" + std::to_string(srv.port)},
                                   {":path", "/tunnel"}};
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        {
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "CONNECT", .url = "/tunnel", .protocol = "websocket"};
            auto [ec] = co_await stream.send_header(req, tuple);
            refused = ec;
        }
        {
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "GET", .url = "/tunnel", .protocol = "websocket"};  // needs CONNECT
            auto [ec] = co_await stream.send_header(req, tuple);
            wrong_method = ec;
        }
        // Sent anyway (a client that ignores the SETTINGS): the server refuses the malformed request.
        auto stream = co_await conn.open_request_stream();
        co_await h3co::testing::send_raw_header(stream, raw_connect);
        co_await stream.finish(tuple);
        auto [ec, head] = co_await stream.read_response(tuple);
        raw_reset = ec;
    }());
    CHECK(refused == h3co::error::not_negotiated);
    CHECK(wrong_method == h3co::error::invalid_request);
    CHECK(raw_reset == h3co::h3_error::message_error);
    CHECK(srv.seen->empty());
}

}  // namespace extended_connect_test
