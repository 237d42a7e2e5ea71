// Many streams and their ends: concurrency beyond the peer's limit, cancellation, resets, closes,
// GOAWAY. Every stream's state must be freed however it ends.
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace streams_test {

long live_streams() { return h3co::testing::live_stream_states(); }

/// Echo: the response body is the request body, written back as it arrives (full duplex).
asio::awaitable<void> echo(h3co::server_request& req, h3co::response& res) {
    co_await res.send_header(200);
    std::array<char, 8192> buf;
    for (;;) {
        auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
        if (n) co_await res.write(asio::buffer(buf.data(), n));
        if (ec) break;
    }
}

/// Records how a handler's body read ended.
struct read_end_recorder {
    std::shared_ptr<std::vector<std::error_code>> ends = std::make_shared<std::vector<std::error_code>>();
    auto handler() {
        return [ends = ends](h3co::server_request& req, h3co::response&) -> asio::awaitable<void> {
            std::array<char, 4096> buf;
            for (;;) {
                auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
                if (ec) {
                    ends->push_back(ec);
                    co_return;
                }
            }
        };
    }
};

/// A server on 127.0.0.1 whose /hang handler reads the body until it ends, never answers, and
/// records how the read ended.
struct hanging_server {
    h3co::server server;
    read_end_recorder rec;
    std::uint16_t port;

    explicit hanging_server(asio::io_context& io) : server(test::executor(io), test::server_identity()) {
        server.handle("/hang", rec.handler());
        port = server.listen("127.0.0.1", 0).port();
    }

    /// Opens a stream on `conn` and sends POST /hang's header; the body stays open.
    static asio::awaitable<h3co::request_stream> start_request(h3co::connection& conn) {
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = "/hang"};
        co_await stream.send_header(req);
        co_return stream;
    }
};

using test::read_all;


TEST_CASE("streams: full duplex echo, the response flows while the request body is still sent", "[streams]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/echo", echo);
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = test::url(port, "/echo", "127.0.0.1")};
        co_await stream.send_header(req);
        auto head = co_await stream.read_response();  // arrives before any body is sent
        CHECK(head.status == 200);
        for (int i = 0; i < 20; ++i) {
            const std::string line = "line " + std::to_string(i) + "\n";
            co_await stream.write(asio::buffer(line));
            std::string echoed;
            std::array<char, 64> buf;
            while (echoed.size() < line.size()) {  // each line comes back before the next is sent
                auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
                REQUIRE_FALSE(ec);
                echoed.append(buf.data(), n);
            }
            CHECK(echoed == line);
        }
        co_await stream.finish();
        const std::string rest = co_await read_all(stream);  // named: see the g++ 12 note in docs
        CHECK(rest.empty());
    }());
}

TEST_CASE("streams: 100 concurrent requests on one connection, beyond the server's limit of 10", "[streams]") {
    asio::io_context io;
    h3co::connection_options limited;
    limited.max_concurrent_streams = 10;
    h3co::server server(test::executor(io), test::server_identity(), limited);
    server.handle("/echo", echo);
    const auto port = server.listen("127.0.0.1", 0).port();
    const long live_before = live_streams();
    int intact = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto one = [&](int i) -> asio::awaitable<void> {
            auto stream = co_await conn.open_request_stream();  // waits for MAX_STREAMS past 10
            const h3co::request req{.method = "POST", .url = test::url(port, "/echo", "127.0.0.1")};
            co_await stream.send_header(req);
            std::string body;
            for (int k = 0; k < 50; ++k) body += "stream " + std::to_string(i) + " piece " + std::to_string(k) + ";";
            co_await stream.write(asio::buffer(body));
            co_await stream.finish();
            co_await stream.read_response();
            const std::string echoed = co_await read_all(stream);
            if (echoed == body) ++intact;
        };
        auto ex = co_await asio::this_coro::executor;
        int finished = 0;
        for (int i = 0; i < 100; ++i)
            asio::co_spawn(ex, one(i), [&](std::exception_ptr e) {
                ++finished;
                if (e) std::rethrow_exception(e);
            });
        while (finished < 100) co_await h3co::sleep_for(10ms);
    }(), std::chrono::seconds(60));
    CHECK(intact == 100);
    test::settle(io);
    CHECK(live_streams() == live_before);
}

TEST_CASE("streams: 50 client connections to one server", "[streams]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/echo", echo);
    const auto port = server.listen("::", 0).port();
    int intact = 0, finished = 0;
    for (int i = 0; i < 50; ++i) {
        asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
            auto conn = co_await h3co::connect(test::executor(io), std::string(i % 2 ? "::1" : "127.0.0.1"), port,
                                               test::trusting_test_ca());
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "POST", .url = "/echo"};
            co_await stream.send_header(req);
            const std::string body = "connection " + std::to_string(i);
            co_await stream.write(asio::buffer(body));
            co_await stream.finish();
            co_await stream.read_response();
            const std::string echoed = co_await read_all(stream);
            if (echoed == body) ++intact;
        }, [&](std::exception_ptr) { ++finished; });
    }
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (finished < 50 && std::chrono::steady_clock::now() < deadline) {
        io.restart();
        io.run_for(50ms);
    }
    CHECK(finished == 50);
    CHECK(intact == 50);
    test::settle(io);
    INFO("datagrams the server dropped: " << server.dropped_datagrams());
    CHECK(server.connection_count() == 0);  // every client closed its connection when done
}

TEST_CASE("streams: a timeout with || cancels the read and the server sees H3_REQUEST_CANCELLED", "[streams][cancel]") {
    asio::io_context io;
    hanging_server srv(io);
    const long live_before = live_streams();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        auto stream = co_await hanging_server::start_request(conn);
        asio::steady_timer timer(co_await asio::this_coro::executor, 200ms);
        auto result = co_await (stream.read_response() || timer.async_wait(asio::use_awaitable));
        CHECK(result.index() == 1);  // the timer won
        // The stream was reset: later operations fail instead of waiting forever.
        const std::string more = "more";
        auto [ec, n] = co_await stream.write(asio::buffer(more), tuple);
        CHECK(ec);
        co_await h3co::sleep_for(100ms);
    }());
    test::settle(io);
    REQUIRE(srv.rec.ends->size() == 1);
    CHECK(srv.rec.ends->front() == h3co::h3_error::request_cancelled);
    CHECK(live_streams() == live_before);
}

TEST_CASE("streams: dropping an open stream resets it - the server sees H3_REQUEST_CANCELLED", "[streams][cancel]") {
    asio::io_context io;
    hanging_server srv(io);
    const long live_before = live_streams();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        {
            auto stream = co_await hanging_server::start_request(conn);
            const std::string part = "partial body";
            co_await stream.write(asio::buffer(part));
            co_await h3co::sleep_for(100ms);  // let the request and some body reach the handler
        }  // dropped mid-upload
        co_await h3co::sleep_for(200ms);
    }());
    test::settle(io);
    REQUIRE(srv.rec.ends->size() == 1);
    CHECK(srv.rec.ends->front() == h3co::h3_error::request_cancelled);
    CHECK(live_streams() == live_before);
}

TEST_CASE("streams: a server reset reaches the client with its code", "[streams]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/reject", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        auto stream = res.take_over();
        stream.reset(h3co::h3_error::request_rejected);
        co_return;
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = "/reject"};
        co_await stream.send_header(req);
        std::array<char, 16> buf;
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        CHECK(ec == h3co::h3_error::request_rejected);
        CHECK(ec.category() == h3co::h3_category());
    }());
}

TEST_CASE("streams: a connection closed by the peer with a code fails pending operations with it", "[streams]") {
    asio::io_context io;
    hanging_server srv(io);
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        auto stream = co_await hanging_server::start_request(conn);
        co_await h3co::sleep_for(100ms);
        conn.close(h3co::h3_error::excessive_load, "too much");
        std::array<char, 16> buf;
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        CHECK(ec);  // our own close: the stream cannot go on
        co_await h3co::sleep_for(100ms);
    }());
    test::settle(io);
    REQUIRE(srv.rec.ends->size() == 1);
    CHECK(srv.rec.ends->front() == h3co::h3_error::excessive_load);
}

TEST_CASE("streams: server shutdown sends GOAWAY - in-flight requests finish, new ones are refused", "[streams][shutdown]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/slow", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await h3co::sleep_for(300ms);
        co_await res.send_header(200);
        const std::string done = "done";
        co_await res.write(asio::buffer(done));
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = "/slow"};
        co_await stream.send_header(req);
        co_await stream.finish();
        co_await h3co::sleep_for(50ms);
        server.shutdown();
        co_await h3co::sleep_for(100ms);
        CHECK(conn.going_away());
        auto [open_ec, refused] = co_await conn.open_request_stream(tuple);
        CHECK(open_ec == h3co::error::going_away);
        auto head = co_await stream.read_response();  // the in-flight request still completes
        CHECK(head.status == 200);
        const std::string body = co_await read_all(stream);
        CHECK(body == "done");
    }());
}

TEST_CASE("streams: shutdown closes what is still open after its grace period", "[streams][shutdown]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/forever", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        co_await h3co::sleep_for(10s);  // would outlive any reasonable shutdown
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    std::chrono::steady_clock::duration waited{};
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = "/forever"};
        co_await stream.send_header(req);
        co_await stream.finish();
        co_await stream.read_response();
        const auto started = std::chrono::steady_clock::now();
        server.shutdown(300ms);
        std::array<char, 16> buf;
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        waited = std::chrono::steady_clock::now() - started;
        CHECK(ec == h3co::error::connection_closed);  // closed by the server, not a timeout of ours
        CHECK_FALSE(conn.is_open());
    }());
    CHECK(waited >= 250ms);
    CHECK(waited < 3s);
    test::settle(io);
    CHECK(server.connection_count() == 0);
}

}  // namespace streams_test
