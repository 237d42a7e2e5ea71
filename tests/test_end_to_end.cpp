// The seed's two programs as tests, on real UDP over loopback with real TLS verification.
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <mutex>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace end_to_end_test {

struct arrival {
    std::string bytes;
    clock_type::time_point when;
};

/// A handler that records each piece of body as it arrives, with its time.
struct recording_handler {
    std::shared_ptr<std::vector<arrival>> arrivals = std::make_shared<std::vector<arrival>>();
    std::shared_ptr<std::error_code> end = std::make_shared<std::error_code>();

    asio::awaitable<void> read_body(auto& source) {
        std::array<char, 4096> buf;
        for (;;) {
            auto [ec, n] = co_await source.read_some(asio::buffer(buf), tuple);
            if (n) arrivals->push_back({std::string(buf.data(), n), clock_type::now()});
            if (ec) {
                *end = ec;
                co_return;
            }
        }
    }

    std::string body() const {
        std::string all;
        for (const auto& a : *arrivals) all += a.bytes;
        return all;
    }
};

std::string chunk_text(int i) { return "data chunk #" + std::to_string(i) + "\n"; }

std::string all_chunks(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += chunk_text(i);
    return s;
}


TEST_CASE("end to end: pipe-fed body reaches the handler while it is still being produced", "[e2e]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    recording_handler rec;
    server.handle("/stream", [rec](h3co::server_request& req, h3co::response& res) mutable -> asio::awaitable<void> {
        co_await rec.read_body(req);
        co_await res.send_header(200);
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    h3co::client client(test::executor(io), test::trusting_test_ca());

    std::vector<clock_type::time_point> written;
    clock_type::time_point closed_at;
    const int status = test::run(io, [&]() -> asio::awaitable<int> {
        auto [reader, writer] = h3co::make_pipe(test::executor(io));
        asio::co_spawn(io, [&, w = std::move(writer)]() mutable -> asio::awaitable<void> {
            for (int i = 0; i < 10; ++i) {
                const std::string c = chunk_text(i);
                co_await w.write(asio::buffer(c));
                written.push_back(clock_type::now());
                co_await h3co::sleep_for(100ms);
            }
            closed_at = clock_type::now();
            w.close();
        }, asio::detached);
        const h3co::request req{.method = "POST", .url = test::url(port)};
        auto response = co_await client.request(req, std::move(reader));
        co_return response.status;
    }());
    CHECK(status == 200);
    CHECK(rec.body() == all_chunks(10));
    CHECK(*rec.end == h3co::error::eof);
    REQUIRE(rec.arrivals->size() >= 5);
    // Streaming, not buffering: the first chunk reached the handler long before the body ended.
    CHECK(rec.arrivals->front().when < closed_at - 500ms);
    CHECK(rec.arrivals->front().when - written.front() < 90ms);
    client.close();
    test::settle(io);  // let the close fail what still waits (the pump's FIN acknowledgement)
}

TEST_CASE("end to end: takeover after 200, the client writes only after the response", "[e2e]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    recording_handler rec;
    auto answered_at = std::make_shared<clock_type::time_point>();
    server.handle("/stream", [rec, answered_at](h3co::server_request&, h3co::response& res) mutable -> asio::awaitable<void> {
        co_await res.send_header(200);
        *answered_at = clock_type::now();
        auto stream = res.take_over();
        co_await rec.read_body(stream);
        const std::string bye = "got it\n";
        co_await stream.write(asio::buffer(bye));
    });
    const auto port = server.listen("::1", 0).port();

    std::string reply;
    clock_type::time_point response_seen;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("::1"), port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = test::url(port, "/stream", "[::1]")};
        co_await stream.send_header(req);
        auto head = co_await stream.read_response();
        response_seen = clock_type::now();
        REQUIRE(head.status == 200);
        for (int i = 0; i < 10; ++i) {
            const std::string c = chunk_text(i);
            co_await stream.write(asio::buffer(c));
            co_await h3co::sleep_for(20ms);
        }
        co_await stream.finish();
        std::array<char, 64> buf;
        for (;;) {
            auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
            reply.append(buf.data(), n);
            if (ec == h3co::error::eof) break;
            if (ec) throw std::system_error(ec);
        }
    }());
    CHECK(rec.body() == all_chunks(10));
    CHECK(reply == "got it\n");
    REQUIRE_FALSE(rec.arrivals->empty());
    CHECK(rec.arrivals->front().when > response_seen);  // no body moved before the answer
    CHECK(*answered_at <= response_seen);
}

TEST_CASE("end to end: the server refuses with 403 and the client sees it before writing", "[e2e]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    auto body_bytes_seen = std::make_shared<std::size_t>(0);
    server.handle("/stream", [body_bytes_seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        if (req.headers().find("authorization")) co_return;  // would accept
        const h3co::fields why{{"content-type", "text/plain"}};
        co_await res.send_header(403, why);
        const std::string text = "forbidden\n";
        co_await res.write(asio::buffer(text));
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = test::url(port, "/stream", "127.0.0.1")};
        co_await stream.send_header(req);
        auto head = co_await stream.read_response();
        CHECK(head.status == 403);
        CHECK(head.headers.find("content-type") == std::optional<std::string_view>("text/plain"));
        CHECK(stream.bytes_sent() == 0);
        std::string text;
        std::array<char, 64> buf;
        for (;;) {
            auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
            text.append(buf.data(), n);
            if (ec) {
                CHECK(ec == h3co::error::eof);
                break;
            }
        }
        CHECK(text == "forbidden\n");
        // The server stopped reading (STOP_SENDING): a write now fails with its code, not silently.
        co_await h3co::sleep_for(50ms);
        const std::string late = "late body";
        auto [wec, n] = co_await stream.write(asio::buffer(late), tuple);
        CHECK(wec);
    }());
}

TEST_CASE("end to end: a response body of 2 MiB is read back intact, over IPv4 and IPv6", "[e2e]") {
    const std::string host = GENERATE(std::string("127.0.0.1"), std::string("::1"));
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    std::string payload(2 * 1024 * 1024, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>((i * 2654435761u) >> 13);
    server.handle("/data", [&payload](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        for (std::size_t off = 0; off < payload.size(); off += 100000)
            co_await res.write(asio::buffer(payload.data() + off, std::min<std::size_t>(100000, payload.size() - off)));
    });
    server.listen("::", 0);
    const auto port = server.local_endpoints().front().port();
    h3co::client client(test::executor(io), test::trusting_test_ca());
    std::string got;
    test::run(io, [&]() -> asio::awaitable<void> {
        const std::string authority = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        const h3co::request req{.method = "GET", .url = test::url(port, "/data", authority)};
        auto response = co_await client.request(req);
        CHECK(response.status == 200);
        std::vector<char> buf(65536);
        for (;;) {
            auto [ec, n] = co_await response.read_some(asio::buffer(buf), tuple);
            got.append(buf.data(), n);
            if (ec == h3co::error::eof) break;
            if (ec) throw std::system_error(ec);
        }
    }());
    CHECK(got.size() == payload.size());
    CHECK(got == payload);
    client.close();
}

TEST_CASE("end to end: an unknown path gets 404", "[e2e]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    const auto port = server.listen("127.0.0.1", 0).port();
    h3co::client client(test::executor(io), test::trusting_test_ca());
    const int status = test::run(io, [&]() -> asio::awaitable<int> {
        const h3co::request req{.method = "GET", .url = test::url(port, "/nowhere", "127.0.0.1")};
        auto response = co_await client.request(req);
        co_return response.status;
    }());
    CHECK(status == 404);
    client.close();
}

TEST_CASE("end to end: a pooled connection handle from connection_for leaves the connection open when dropped",
          "[e2e][client]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/ok", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(204);
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    h3co::client client(test::executor(io), test::trusting_test_ca());
    test::run(io, [&]() -> asio::awaitable<void> {
        const std::string url = test::url(port, "/ok", "127.0.0.1");
        const void* first_engine = nullptr;
        {
            auto conn = co_await client.connection_for(url);
            CHECK(conn.is_open());
            first_engine = h3co::testing::connection_identity(conn);
        }  // the handle is dropped here; the pool keeps the connection
        co_await h3co::sleep_for(std::chrono::milliseconds(50));
        auto again = co_await client.connection_for(url);
        CHECK(again.is_open());
        CHECK(h3co::testing::connection_identity(again) == first_engine);  // the same connection, not a new handshake
        const h3co::request req{.method = "GET", .url = url};
        auto response = co_await client.request(req);
        CHECK(response.status == 204);
        again.close();  // an explicit close() closes the pooled connection for everyone
        co_await h3co::sleep_for(std::chrono::milliseconds(50));
        auto fresh = co_await client.connection_for(url);
        CHECK(h3co::testing::connection_identity(fresh) != first_engine);
    }());
    client.close();
}

}  // namespace end_to_end_test
