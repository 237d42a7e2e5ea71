// Trailers at the limits: oversized trailers fail the reader's body with a named error and reset
// the stream, while a running handler's request head stays as it was (its views stay valid); and
// finish_with_trailers refuses fields it cannot send, at the call, without harming the connection.
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

using namespace std::chrono_literals;

// Requests are named variables, never temporaries inside a co_await expression (g++ 12, see
// docs/getting-started.md).

namespace trailers_limits_test {

/// Polls `done` for up to two seconds.
asio::awaitable<void> until(std::function<bool()> done) {
    for (int i = 0; i < 400 && !done(); ++i) co_await h3co::sleep_for(5ms);
    REQUIRE(done());
}

/// Reads `stream` to its end: the bytes and how it ended.
template <class Stream>
asio::awaitable<std::pair<std::error_code, std::string>> read_to_end(Stream& stream) {
    std::string data;
    std::array<char, 4096> buf;
    for (int i = 0; i < 100000; ++i) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        data.append(buf.data(), n);
        if (ec) co_return std::pair{ec, std::move(data)};
    }
    co_return std::pair{std::error_code{}, std::move(data)};
}

/// A limit of 2 KiB on header blocks, with a trailer block of about 4 KiB.
h3co::connection_options small_headers() {
    h3co::connection_options o;
    o.max_header_bytes = 2048;
    return o;
}
const h3co::fields big_trailers{{"x-big-trailer", std::string(4096, 't')}};

/// A path long enough to live on the heap, so that a view of a freed one is seen by ASan.
const std::string long_path = "/t?" + std::string(200, 'q');

struct handler_saw {
    bool started = false;
    bool done = false;
    std::string body;
    std::error_code end;
    std::string path_after;       ///< req.path() after the read failed
    std::string view_after;       ///< a view of req.path() taken when the handler started
    std::string header_view_after;  ///< likewise, a view of a header's value
};

TEST_CASE("trailers-limits: oversized request trailers fail the handler's read and leave its request head intact",
          "[trailers-limits]") {
    asio::io_context io;
    h3co::server server{test::executor(io), test::server_identity(), small_headers()};
    auto saw = std::make_shared<handler_saw>();
    server.handle("/t", [saw](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        const std::string_view path = req.path();  // views a handler may hold for its whole life
        const std::string_view agent = *req.headers().find("x-agent");
        saw->started = true;
        auto [ec, body] = co_await read_to_end(req);
        saw->body = std::move(body);
        saw->end = ec;
        saw->path_after = req.path();
        saw->view_after = std::string(path);
        saw->header_view_after = std::string(agent);
        if (!ec) co_await res.send_header(200);  // no response under the handler otherwise
        saw->done = true;
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    const std::string agent(100, 'a');
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request post{.method = "POST", .url = long_path, .headers = {{"x-agent", agent}}};
        co_await stream.send_header(post);
        const std::string body = "request body";
        co_await stream.write(asio::buffer(body));
        co_await until([&] { return saw->started; });  // the handler runs, holding its views
        auto trailers = big_trailers;
        co_await stream.finish_with_trailers(std::move(trailers), tuple);
        auto [rec, head] = co_await stream.read_response(tuple);
        CHECK(rec == h3co::h3_error::excessive_load);  // the server reset the stream: no 431
        CHECK(head.status == 0);
        co_await until([&] { return saw->done; });
    }());
    CHECK(saw->end == h3co::error::header_too_large);  // not a clean end of the body
    CHECK(saw->path_after == long_path);
    CHECK(saw->view_after == long_path);
    CHECK(saw->header_view_after == agent);
}

TEST_CASE("trailers-limits: oversized response trailers fail the client's read with header_too_large",
          "[trailers-limits]") {
    asio::io_context io;
    h3co::server server{test::executor(io), test::server_identity()};
    server.handle("/r", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        const h3co::fields kept{{"x-kept", "yes"}};
        co_await res.send_header(200, kept);
        const std::string body = "response body";
        co_await res.write(asio::buffer(body));
        auto trailers = big_trailers;
        co_await res.finish_with_trailers(std::move(trailers), tuple);
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca(),
                                           small_headers());
        auto stream = co_await conn.open_request_stream();
        const h3co::request get{.method = "GET", .url = "/r"};
        co_await stream.send_header(get);
        co_await stream.finish();
        const auto head = co_await stream.read_response();
        CHECK(head.status == 200);
        CHECK(head.headers.find("x-kept") == "yes");
        auto [ec, body] = co_await read_to_end(stream);
        CHECK(ec == h3co::error::header_too_large);
        CHECK(stream.trailers().empty());
    }());
}

TEST_CASE("trailers-limits: finish_with_trailers refuses a field it cannot send and the connection lives on",
          "[trailers-limits]") {
    asio::io_context io;
    h3co::server server{test::executor(io), test::server_identity()};
    auto server_refusals = std::make_shared<std::vector<std::error_code>>();
    server.handle("/bad", [server_refusals](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        co_await read_to_end(req);
        co_await res.send_header(200);
        const std::string body = "answer";
        co_await res.write(asio::buffer(body));
        const std::vector<h3co::field> bad{
            {"x-bad", "line\nbreak"}, {"x-bad", std::string("nul\0", 4)}, {":status", "200"}, {"bad name", "v"}};
        for (const auto& f : bad) {
            h3co::fields copy{f};
            auto [ec] = co_await res.finish_with_trailers(std::move(copy), tuple);
            server_refusals->push_back(ec);
        }
        h3co::fields good{{"x-good", "yes"}};
        co_await res.finish_with_trailers(std::move(good));  // the stream is still whole
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        {  // the client's own bad trailer: refused at the call; the stream finishes after it
            auto stream = co_await conn.open_request_stream();
            const h3co::request post{.method = "POST", .url = "/bad"};
            co_await stream.send_header(post);
            const std::string body = "request body";
            co_await stream.write(asio::buffer(body));
            h3co::fields bad{{"x-bad", "line\nbreak"}};
            auto [ec] = co_await stream.finish_with_trailers(std::move(bad), tuple);
            CHECK(ec == h3co::error::invalid_request);
            auto [fec] = co_await stream.finish(tuple);
            CHECK_FALSE(fec);
            auto [rec, head] = co_await stream.read_response(tuple);
            REQUIRE_FALSE(rec);
            CHECK(head.status == 200);
            auto [ec2, data] = co_await read_to_end(stream);
            CHECK(ec2 == h3co::error::eof);
            CHECK(data == "answer");
            CHECK(stream.trailers().find("x-good") == "yes");
        }
        {  // and a second request on the same connection
            auto stream = co_await conn.open_request_stream();
            const h3co::request post{.method = "POST", .url = "/bad"};
            co_await stream.send_header(post);
            co_await stream.finish();
            auto [rec, head] = co_await stream.read_response(tuple);
            REQUIRE_FALSE(rec);
            CHECK(head.status == 200);
            auto [ec2, data] = co_await read_to_end(stream);
            CHECK(ec2 == h3co::error::eof);
            CHECK(data == "answer");
        }
        CHECK(conn.is_open());
    }());
    REQUIRE(server_refusals->size() == 8);
    for (const auto& ec : *server_refusals) CHECK(ec == h3co::error::invalid_request);
}

}  // namespace trailers_limits_test
