// Graceful shutdown (RFC 9114 §5.2): server.shutdown() first sends a GOAWAY notice that refuses
// nothing, waits a few round trips for requests the client has already sent, and only then the
// final GOAWAY with the first stream it will not serve. A request in flight when shutdown() is
// called completes, streaming body included; new requests are refused afterwards.
#include "support/test_support.hpp"

#include <string>

using namespace std::chrono_literals;

namespace graceful_shutdown_test {

/// A server whose /count handler reads the whole request body and answers with its size.
struct counting_server {
    explicit counting_server(asio::io_context& io) : server(test::executor(io), test::server_identity()) {
        server.handle("/count", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            const std::string body = co_await test::read_all(req);
            co_await res.send_header(200);
            const std::string size = std::to_string(body.size());
            co_await res.write(asio::buffer(size));
        });
        port = server.listen("127.0.0.1", 0).port();
    }
    h3co::server server;
    std::uint16_t port = 0;
};

TEST_CASE("graceful shutdown: a request with a streaming body in flight completes", "[graceful-shutdown]") {
    asio::io_context io;
    counting_server srv(io);
    constexpr std::size_t chunk_size = 16 * 1024, chunks = 32;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn =
            co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        const h3co::request req{.method = "POST", .url = "/count"};
        {  // a first request: the server's handshake is complete, it knows stream 0
            auto first = co_await conn.open_request_stream();
            co_await first.send_header(req);
            co_await first.finish();
            co_await first.read_response();
            co_await test::read_all(first);
        }
        auto stream = co_await conn.open_request_stream();
        co_await stream.send_header(req);
        // The request is on its way, its body not yet: the server has not seen the stream yet.
        srv.server.shutdown();
        const std::string chunk(chunk_size, 'b');
        for (std::size_t i = 0; i < chunks; ++i) {
            auto [ec, n] = co_await stream.write(asio::buffer(chunk), tuple);
            REQUIRE_FALSE(ec);
            REQUIRE(n == chunk.size());
        }
        auto [fin_ec] = co_await stream.finish(tuple);
        REQUIRE_FALSE(fin_ec);
        auto [head_ec, head] = co_await stream.read_response(tuple);
        REQUIRE_FALSE(head_ec);  // not H3_REQUEST_REJECTED
        CHECK(head.status == 200);
        const std::string body = co_await test::read_all(stream);
        CHECK(body == std::to_string(chunk_size * chunks));
        CHECK(conn.going_away());
        auto [open_ec, refused] = co_await conn.open_request_stream(tuple);
        CHECK(open_ec == h3co::error::going_away);
    }());
    // The server closes the connection once its last request ended, and stops listening.
    for (int i = 0; i < 100 && srv.server.connection_count() != 0; ++i) io.run_for(20ms);
    CHECK(srv.server.connection_count() == 0);
}

// shutdown() at once after the client's handshake: the server may not have completed its own yet
// (its HTTP/3 control stream does not exist before), so its GOAWAY waits for that. The request's
// HEADERS are queued before shutdown() is called, so they leave before any GOAWAY can arrive.
TEST_CASE("graceful shutdown: a request sent right after the handshake is served, not rejected", "[graceful-shutdown]") {
    asio::io_context io;
    counting_server srv(io);
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn =
            co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = "/count"};
        std::optional<std::error_code> header_sent;
        stream.send_header(req, [&](std::error_code ec) { header_sent = ec; });  // starts here, inline
        srv.server.shutdown();
        for (int i = 0; i < 1000 && !header_sent; ++i) co_await asio::post(io, asio::use_awaitable);
        REQUIRE(header_sent);
        REQUIRE_FALSE(*header_sent);
        const std::string body = "abc";
        auto [wec, n] = co_await stream.write(asio::buffer(body), tuple);
        REQUIRE_FALSE(wec);
        auto [fec] = co_await stream.finish(tuple);
        REQUIRE_FALSE(fec);
        auto [ec, head] = co_await stream.read_response(tuple);
        REQUIRE_FALSE(ec);
        CHECK(head.status == 200);
        const std::string answer = co_await test::read_all(stream);
        CHECK(answer == "3");
    }());
}

}  // namespace graceful_shutdown_test
