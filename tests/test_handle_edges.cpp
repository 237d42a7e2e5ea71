// The public handles at their edges: handles without a stream (default-constructed or moved from),
// a pipe reader closed while a view is out, and fields that HTTP/3 forbids (RFC 9114 §4.2).
#include "support/test_support.hpp"

#include <asio/bind_executor.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <array>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace handle_edges_test {

/// A server on 127.0.0.1: /ok answers 200 with a short body.
struct fixture {
    asio::io_context io;
    h3co::server server{test::executor(io), test::server_identity()};
    std::uint16_t port = 0;

    fixture() {
        server.handle("/ok", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
            co_await res.send_header(200);
            co_await res.write(asio::buffer(std::string_view("ok")));
        });
    }
    void listen() { port = server.listen("127.0.0.1", 0).port(); }
    ~fixture() {
        server.close();
        test::settle(io, 100ms);
    }
    h3co::connection connect() {
        return test::run(io, h3co::connect(test::executor(io), "127.0.0.1", port, test::trusting_test_ca()));
    }
    std::string url(const std::string& path) const { return test::url(port, path, "127.0.0.1"); }
};

// ---- trailers() on a handle without a stream ------------------------------------------------------

TEST_CASE("handle edges: trailers() on a default-constructed or moved-from handle is empty", "[handle-edges][trailers]") {
    const h3co::http_stream none;
    CHECK(none.trailers().empty());
    const h3co::request_stream no_request;
    CHECK(no_request.trailers().empty());

    fixture f;
    f.listen();
    auto conn = f.connect();
    auto stream = test::run(f.io, conn.open_request_stream());
    const auto taken = std::move(stream);
    CHECK(taken.is_open());
    CHECK_FALSE(stream.is_open());
    CHECK(stream.trailers().empty());
}

// ---- operations on a handle without a stream ------------------------------------------------------

TEST_CASE("handle edges: an operation on a handle without a stream completes with not_open", "[handle-edges][empty-handle]") {
    fixture f;
    SECTION("a plain callback: completed on the system executor, never a bad_executor exception") {
        h3co::http_stream none;
        std::vector<char> buf(16);
        std::promise<std::pair<std::error_code, std::size_t>> done;
        CHECK_NOTHROW(none.read_some(asio::buffer(buf), [&](std::error_code ec, std::size_t n) { done.set_value({ec, n}); }));
        auto result = done.get_future();
        REQUIRE(result.wait_for(10s) == std::future_status::ready);
        const auto [ec, n] = result.get();
        CHECK(ec == h3co::error::not_open);
        CHECK(n == 0);
    }
    SECTION("a callback bound to an executor: completed there") {
        h3co::request_stream none;
        std::optional<std::error_code> got;
        CHECK_NOTHROW(none.finish(asio::bind_executor(f.io, [&](std::error_code ec) { got = ec; })));
        CHECK_FALSE(got);  // never inline
        test::settle(f.io, 20ms);
        REQUIRE(got);
        CHECK(*got == h3co::error::not_open);
    }
    SECTION("every operation of a default-constructed request stream, awaited") {
        const auto errors = test::run(f.io, []() -> asio::awaitable<std::vector<std::error_code>> {
            h3co::request_stream none;
            std::vector<std::error_code> out;
            const h3co::request req{.method = "GET", .url = "https://127.0.0.1:1/"};
            const h3co::fields trailers{{"x-sum", "1"}};
            std::vector<char> buf(16);
            out.push_back(std::get<0>(co_await none.send_header(req, tuple)));
            out.push_back(std::get<0>(co_await none.read_response(tuple)));
            out.push_back(std::get<0>(co_await none.read_interim(tuple)));
            out.push_back(std::get<0>(co_await none.read_some(asio::buffer(buf), tuple)));
            out.push_back(std::get<0>(co_await none.write(asio::buffer(buf), tuple)));
            out.push_back(std::get<0>(co_await none.async_write_some(asio::buffer(buf), tuple)));
            out.push_back(std::get<0>(co_await none.finish(tuple)));
            out.push_back(std::get<0>(co_await none.finish_with_trailers(trailers, tuple)));
            out.push_back(std::get<0>(co_await none.send_datagram(asio::buffer(buf), tuple)));
            out.push_back(std::get<0>(co_await none.receive_datagram(asio::buffer(buf), tuple)));
            none.reset();  // nothing to reset: no effect, no exception
            co_return out;
        }());
        REQUIRE(errors.size() == 10);
        for (std::size_t i = 0; i < errors.size(); ++i) {
            INFO("operation " << i << ": " << errors[i].message());
            CHECK(errors[i] == h3co::error::not_open);
        }
    }
    SECTION("a connection handle without a connection: open_request_stream completes with not_open") {
        // h3co_sim found it: a worker whose connect() failed opened a stream on the empty handle,
        // which dereferenced a null engine.
        const auto errors = test::run(f.io, []() -> asio::awaitable<std::vector<std::error_code>> {
            std::vector<std::error_code> out;
            h3co::connection none;
            auto [ec, stream] = co_await none.open_request_stream(tuple);
            out.push_back(ec);
            h3co::connection moved_to = std::move(none);
            auto [moved_ec, moved_stream] = co_await none.open_request_stream(tuple);
            out.push_back(moved_ec);
            co_return out;
        }());
        REQUIRE(errors.size() == 2);
        CHECK(errors[0] == h3co::error::not_open);
        CHECK(errors[1] == h3co::error::not_open);
    }
    SECTION("a moved-from client stream fails, the stream it moved to goes on") {
        f.listen();
        auto conn = f.connect();
        const auto [moved_ec, status] = test::run(f.io, [&]() -> asio::awaitable<std::pair<std::error_code, int>> {
            auto stream = co_await conn.open_request_stream();
            auto taken = std::move(stream);
            const h3co::request req{.method = "GET", .url = f.url("/ok")};
            auto [ec] = co_await stream.send_header(req, tuple);
            co_await taken.send_header(req);
            co_await taken.finish();
            const auto head = co_await taken.read_response();
            co_return std::pair{ec, head.status};
        }());
        CHECK(moved_ec == h3co::error::not_open);
        CHECK(status == 200);
    }
    SECTION("a handler's moved-from request and response fail, the ones they moved to answer") {
        struct seen_t {
            std::error_code header, write, read;
            bool empty_head = false;
            std::int64_t stream_id = 0;
            bool header_sent = true;
        };
        auto seen = std::make_shared<seen_t>();
        f.server.handle("/moved", [seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            auto kept_req = std::move(req);
            auto kept_res = std::move(res);
            std::vector<char> buf(16);
            std::tie(seen->read, std::ignore) = co_await req.read_some(asio::buffer(buf), tuple);
            seen->empty_head = req.path().empty() && req.method().empty() && req.headers().empty() && req.trailers().empty();
            seen->stream_id = req.stream_id();
            seen->header_sent = res.header_sent();
            std::tie(seen->header) = co_await res.send_header(500, tuple);
            std::tie(seen->write, std::ignore) = co_await res.write(asio::buffer(buf), tuple);
            auto none = res.take_over();
            CHECK_FALSE(none.is_open());
            co_await kept_res.send_header(204);
            (void)kept_req;
        });
        f.listen();
        auto conn = f.connect();
        auto stream = test::run(f.io, conn.open_request_stream());
        const auto status = test::run(f.io, [&]() -> asio::awaitable<int> {
            const h3co::request req{.method = "GET", .url = f.url("/moved")};
            co_await stream.send_header(req);
            co_await stream.finish();
            co_return (co_await stream.read_response()).status;
        }());
        CHECK(status == 204);
        CHECK(seen->read == h3co::error::not_open);
        CHECK(seen->empty_head);
        CHECK(seen->stream_id == -1);
        CHECK_FALSE(seen->header_sent);
        CHECK(seen->header == h3co::error::not_open);
        CHECK(seen->write == h3co::error::not_open);
    }
    SECTION("moved-from pipe ends") {
        auto [reader, writer] = h3co::make_pipe(test::executor(f.io));
        auto kept_reader = std::move(reader);
        auto kept_writer = std::move(writer);
        const auto errors = test::run(f.io, [&]() -> asio::awaitable<std::vector<std::error_code>> {
            std::vector<char> buf(16);
            std::vector<std::error_code> out;
            out.push_back(std::get<0>(co_await reader.async_read_some(asio::buffer(buf), tuple)));
            out.push_back(std::get<0>(co_await reader.async_read_view(tuple)));
            out.push_back(std::get<0>(co_await writer.write(asio::buffer(buf), tuple)));
            reader.consume(1);  // no effect, no exception
            writer.close();
            reader.close();
            co_return out;
        }());
        REQUIRE(errors.size() == 3);
        CHECK(errors[0] == h3co::error::not_open);
        CHECK(errors[1] == h3co::error::not_open);
        CHECK(errors[2] == h3co::error::not_open);
    }
}

// ---- a pipe reader closed while a view is out -----------------------------------------------------

TEST_CASE("handle edges: a pipe reader closed while a view of the writer's buffer is out completes the write only once the view is given back",
          "[handle-edges][pipe]") {
    asio::io_context io;
    auto [reader, writer] = h3co::make_pipe(test::executor(io));
    const std::string data(100, 'v');
    std::optional<std::pair<std::error_code, std::size_t>> write_result;
    asio::const_buffer view;
    reader.async_read_view([&](std::error_code, asio::const_buffer v) { view = v; });
    writer.write(asio::buffer(data), [&](std::error_code ec, std::size_t n) { write_result.emplace(ec, n); });
    test::settle(io, 20ms);
    REQUIRE(view.data() == data.data());

    reader.close();
    test::settle(io, 20ms);
    CHECK_FALSE(write_result);  // the view still points into the writer's buffer
    reader.consume(30);
    test::settle(io, 20ms);
    REQUIRE(write_result);
    CHECK(write_result->first == h3co::error::broken_pipe);
    CHECK(write_result->second == 30);

    // The closed reader takes no more reads, and says so.
    const auto [ec, n] = test::run(io, [&]() -> asio::awaitable<std::pair<std::error_code, std::size_t>> {
        std::vector<char> buf(8);
        auto [read_ec, read_n] = co_await reader.async_read_some(asio::buffer(buf), tuple);
        co_return std::pair{read_ec, read_n};
    }());
    CHECK(ec == h3co::error::not_open);
    CHECK(n == 0);
}

TEST_CASE("handle edges: a pipe reader dropped while a view is out gives the view back", "[handle-edges][pipe]") {
    asio::io_context io;
    auto [reader, writer] = h3co::make_pipe(test::executor(io));
    std::optional<h3co::pipe_reader> holder(std::move(reader));
    const std::string data(100, 'w');
    std::optional<std::pair<std::error_code, std::size_t>> write_result;
    asio::const_buffer view;
    holder->async_read_view([&](std::error_code, asio::const_buffer v) { view = v; });
    writer.write(asio::buffer(data), [&](std::error_code ec, std::size_t n) { write_result.emplace(ec, n); });
    test::settle(io, 20ms);
    REQUIRE(view.data() == data.data());
    holder->close();
    test::settle(io, 20ms);
    CHECK_FALSE(write_result);
    holder.reset();  // nobody can read the view any more: the writer is done
    test::settle(io, 20ms);
    REQUIRE(write_result);
    CHECK(write_result->first == h3co::error::broken_pipe);
    CHECK(write_result->second == 0);
}

TEST_CASE("handle edges: a pipe reader closed while a view of the pipe's own buffer is out keeps that buffer",
          "[handle-edges][pipe]") {
    asio::io_context io;
    auto [reader, writer] = h3co::make_pipe(test::executor(io), 4096);
    const std::string data(4096, 'b');
    bool write_done = false;
    writer.write(asio::buffer(data), [&](std::error_code ec, std::size_t) {
        CHECK_FALSE(ec);
        write_done = true;
    });
    test::settle(io, 20ms);
    REQUIRE(write_done);  // all of it went into the pipe's buffer
    asio::const_buffer view;
    reader.async_read_view([&](std::error_code, asio::const_buffer v) { view = v; });
    test::settle(io, 20ms);
    REQUIRE(view.size() == data.size());
    reader.close();
    test::settle(io, 20ms);
    // Still readable: the buffer is released when the view is given back (ASan reports it otherwise).
    CHECK(std::string(static_cast<const char*>(view.data()), view.size()) == data);
    reader.consume(view.size());
    test::settle(io, 20ms);
}

// ---- connection-specific fields (RFC 9114 §4.2) ---------------------------------------------------

TEST_CASE("handle edges: connection-specific fields are refused with invalid_request", "[handle-edges][fields]") {
    fixture f;
    auto seen = std::make_shared<std::vector<std::error_code>>();
    f.server.handle("/answer", [seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        const auto& fs = req.headers();
        const h3co::fields bad{{std::string(fs.find("x-name").value_or("")), std::string(fs.find("x-value").value_or(""))}};
        auto [ec] = co_await res.send_header(200, bad, tuple);
        seen->push_back(ec);
        if (ec) co_await res.send_header(203);
    });
    f.server.handle("/te", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        const h3co::fields te{{"te", "trailers"}};
        co_await res.send_header(200, te);
    });
    f.listen();
    auto conn = f.connect();
    const std::vector<h3co::field> refused{
        {"connection", "close"},    {"Connection", "keep-alive"},    {"keep-alive", "timeout=5"},
        {"proxy-connection", "x"},  {"transfer-encoding", "chunked"}, {"upgrade", "websocket"},
        {"te", "gzip"},             {"te", "trailers, gzip"},
    };
    for (const auto& field : refused) {
        INFO(field.name << ": " << field.value);
        SECTION("client: " + field.name + ": " + field.value) {
            auto stream = test::run(f.io, conn.open_request_stream());
            const h3co::request req{.method = "GET", .url = f.url("/ok"), .headers = {field}};
            const auto [ec] = test::run(f.io, stream.send_header(req, tuple));
            CHECK(ec == h3co::error::invalid_request);
        }
        SECTION("server: " + field.name + ": " + field.value) {
            auto stream = test::run(f.io, conn.open_request_stream());
            const h3co::request req{.method = "GET", .url = f.url("/answer"),
                                    .headers = {{"x-name", field.name}, {"x-value", field.value}}};
            const auto status = test::run(f.io, [&]() -> asio::awaitable<int> {
                co_await stream.send_header(req);
                co_await stream.finish();
                co_return (co_await stream.read_response()).status;
            }());
            CHECK(status == 203);
            REQUIRE(seen->size() == 1);
            CHECK(seen->front() == h3co::error::invalid_request);
        }
    }
    SECTION("te: trailers is allowed, both ways") {
        auto stream = test::run(f.io, conn.open_request_stream());
        const h3co::request req{.method = "GET", .url = f.url("/te"), .headers = {{"te", "trailers"}}};
        const auto status = test::run(f.io, [&]() -> asio::awaitable<int> {
            co_await stream.send_header(req);
            co_await stream.finish();
            co_return (co_await stream.read_response()).status;
        }());
        CHECK(status == 200);
    }
}

}  // namespace handle_edges_test
