// The HTTP semantics users expect, and Asio's conventions: takeover as Go's HTTP/3 client does it
// (content-length: 0, then DATA), end of stream as asio::error::eof, trailers both ways, interim
// responses (100-continue, 103 Early Hints), bodiless responses (HEAD, 204, 304), retries of what
// the server did not process, "localhost", and cancellation as Asio defines its types.
#include "support/test_support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

// Requests are named variables, never temporaries inside a co_await expression: g++ 12 miscompiles
// class-type temporaries that live across a suspension (docs/getting-started.md).

namespace http_semantics_test {


/// What a handler saw.
struct seen_t {
    std::string body;
    std::error_code end;
    h3co::fields trailers;
    int calls = 0;
};

struct fixture {
    asio::io_context io;
    h3co::server server{test::executor(io), test::server_identity()};
    std::shared_ptr<seen_t> seen = std::make_shared<seen_t>();
    std::uint16_t port = 0;

    void listen() { port = server.listen("127.0.0.1", 0).port(); }
    std::string url(const std::string& path) const { return test::url(port, path, "127.0.0.1"); }

    asio::awaitable<h3co::connection> connect() {
        co_return co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
    }
};

/// Polls `done` (a completion posted to this executor) for up to a second.
asio::awaitable<void> until(std::function<bool()> done) {
    for (int i = 0; i < 200 && !done(); ++i) co_await h3co::sleep_for(5ms);
    REQUIRE(done());
}

/// Reads a stream to its end with asio::async_read into a string: the end must be asio's eof.
template <class Stream>
asio::awaitable<std::pair<std::error_code, std::string>> read_all_asio(Stream& stream) {
    std::string data;
    auto [ec, n] = co_await asio::async_read(stream, asio::dynamic_buffer(data), tuple);
    (void)n;
    co_return std::pair{ec, std::move(data)};
}

/// A request stream as Go's HTTP/3 client makes one with DontCloseRequestStream and a nil body:
/// POST with `content-length` (0 there), no FIN; read the 200; then write `body` as DATA.
asio::awaitable<std::pair<int, std::error_code>> go_style_takeover(h3co::connection& conn, const std::string& url,
                                                                   const std::string& content_length,
                                                                   const std::string& body) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = url, .headers = {{"content-length", content_length}}};
    co_await stream.send_header(req);
    auto [resp_ec, head] = co_await stream.read_response(tuple);
    if (resp_ec) co_return std::pair{0, resp_ec};
    auto [wec, n] = co_await stream.write(asio::buffer(body), tuple);
    (void)n;
    if (wec) co_return std::pair{head.status, wec};
    auto [fec] = co_await stream.finish(tuple);
    co_return std::pair{head.status, fec};
}


TEST_CASE("http: a Go client's takeover (content-length 0, then DATA) reaches the handler byte-exact",
          "[http][takeover]") {
    fixture f;
    f.server.handle("/stream", [seen = f.seen](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        auto stream = res.take_over();
        auto [ec, data] = co_await read_all_asio(stream);  // asio::async_read until the end
        seen->body = std::move(data);
        seen->end = ec;
    });
    f.listen();
    std::string body;
    for (int i = 0; i < 2000; ++i) body += "data chunk #" + std::to_string(i) + "\n";
    SECTION("content-length: 0, as Go sends it") {
        const auto [status, ec] = test::run(f.io, [&]() -> asio::awaitable<std::pair<int, std::error_code>> {
            auto conn = co_await f.connect();
            co_return co_await go_style_takeover(conn, f.url("/stream"), "0", body);
        }());
        CHECK(status == 200);
        CHECK_FALSE(ec);
    }
    SECTION("a wrong non-zero content-length") {
        const auto [status, ec] = test::run(f.io, [&]() -> asio::awaitable<std::pair<int, std::error_code>> {
            auto conn = co_await f.connect();
            co_return co_await go_style_takeover(conn, f.url("/stream"), "5", body);
        }());
        CHECK(status == 200);
        CHECK_FALSE(ec);
    }
    test::settle(f.io);
    CHECK(f.seen->end == asio::error::eof);  // Asio's own end of stream...
    CHECK(f.seen->end == h3co::error::eof);  // ...which h3co::error::eof compares equal to
    CHECK(f.seen->body == body);
}

TEST_CASE("http: without take_over the same request is malformed and reset with H3_MESSAGE_ERROR", "[http][takeover]") {
    fixture f;
    f.server.handle("/stream", [seen = f.seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        std::array<char, 4096> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            seen->body.append(buf.data(), n);
            if (ec) {
                seen->end = ec;
                break;
            }
        }
    });
    f.listen();
    const std::string body(4000, 'x');
    const auto [status, ec] = test::run(f.io, [&]() -> asio::awaitable<std::pair<int, std::error_code>> {
        auto conn = co_await f.connect();
        auto result = co_await go_style_takeover(conn, f.url("/stream"), "0", body);
        // The client learns it at the latest when it reads: the server reset the stream.
        co_return result;
    }());
    test::settle(f.io);
    CHECK(status == 200);
    INFO("client: " << ec.message() << ", handler's read ended with " << f.seen->end.message());
    CHECK(f.seen->end == h3co::error::content_length_mismatch);
    CHECK(f.seen->body.empty());
}

TEST_CASE("http: a response body read with asio::async_read ends with asio::error::eof", "[http][eof]") {
    fixture f;
    const std::string payload(300000, 'r');
    f.server.handle("/data", [&payload](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        co_await res.write(asio::buffer(payload));
    });
    f.listen();
    h3co::client client(test::executor(f.io), test::trusting_test_ca());
    const auto [ec, data] = test::run(f.io, [&]() -> asio::awaitable<std::pair<std::error_code, std::string>> {
        const h3co::request get_data{.method = "GET", .url = f.url("/data")};
        auto response = co_await client.request(get_data);
        co_return co_await read_all_asio(response.body);
    }());
    CHECK(ec == asio::error::eof);
    CHECK(data == payload);
    client.close();
}

TEST_CASE("http: trailers both ways", "[http][trailers]") {
    fixture f;
    f.server.handle("/t", [seen = f.seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        std::array<char, 4096> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            seen->body.append(buf.data(), n);
            if (ec) {
                seen->end = ec;
                break;
            }
        }
        seen->trailers = req.trailers();
        co_await res.send_header(200);
        const std::string body = "response body";
        co_await res.write(asio::buffer(body));
        h3co::fields trailers{{"x-checksum", "abc123"}, {"server-timing", "db;dur=53"}};
        co_await res.finish_with_trailers(std::move(trailers));
    });
    f.listen();
    const auto [body, trailers] = test::run(f.io, [&]() -> asio::awaitable<std::pair<std::string, h3co::fields>> {
        auto conn = co_await f.connect();
        auto stream = co_await conn.open_request_stream();
        const h3co::request post_t{.method = "POST", .url = "/t"};
        co_await stream.send_header(post_t);
        const std::string body = "request body";
        co_await stream.write(asio::buffer(body));
        h3co::fields trailers{{"x-request-digest", "sha-256=xyz"}};
        co_await stream.finish_with_trailers(std::move(trailers));
        co_await stream.read_response();
        auto [ec, data] = co_await read_all_asio(stream);
        CHECK(ec == asio::error::eof);
        co_return std::pair{data, stream.trailers()};
    }());
    CHECK(f.seen->body == "request body");
    CHECK(f.seen->end == h3co::error::eof);
    REQUIRE(f.seen->trailers.size() == 1);
    CHECK(f.seen->trailers.find("x-request-digest") == "sha-256=xyz");
    CHECK(body == "response body");
    CHECK(trailers.find("x-checksum") == "abc123");
    CHECK(trailers.find("server-timing") == "db;dur=53");
}

TEST_CASE("http: expect 100-continue - 100 before the body, or a final refusal instead", "[http][interim]") {
    fixture f;
    f.server.handle("/upload", [seen = f.seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        ++seen->calls;
        if (req.headers().find("x-too-big")) {  // refuses without reading: no 100 is sent
            co_await res.send_header(413);
            co_return;
        }
        std::array<char, 4096> buf;
        for (;;) {  // the first read sends 100 Continue
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            seen->body.append(buf.data(), n);
            if (ec) break;
        }
        co_await res.send_header(200);
    });
    f.listen();
    auto attempt = [&](bool too_big) {
        return test::run(f.io, [&]() -> asio::awaitable<std::pair<int, int>> {
            auto conn = co_await f.connect();
            auto stream = co_await conn.open_request_stream();
            h3co::request req{.method = "PUT", .url = "/upload", .headers = {{"expect", "100-continue"}}};
            if (too_big) req.headers.push_back({"x-too-big", "1"});
            co_await stream.send_header(req);
            auto [iec, interim] = co_await stream.read_interim(tuple);
            int interim_status = iec ? 0 : interim.status;
            if (!iec) {  // only once the server said so does the body go
                const std::string body = "the body";
                co_await stream.write(asio::buffer(body));
                co_await stream.finish();
            } else {
                CHECK(iec == h3co::error::no_interim_response);
            }
            const auto head = co_await stream.read_response();
            co_return std::pair{interim_status, head.status};
        }());
    };
    const auto accepted = attempt(false);
    CHECK(accepted.first == 100);
    CHECK(accepted.second == 200);
    CHECK(f.seen->body == "the body");
    const auto refused = attempt(true);
    CHECK(refused.first == 0);
    CHECK(refused.second == 413);
    CHECK(f.seen->calls == 2);
}

TEST_CASE("http: 103 Early Hints before the final response", "[http][interim]") {
    fixture f;
    f.server.handle("/page", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        const h3co::fields hints{{"link", "</style.css>; rel=preload; as=style"}};
        co_await res.send_interim(103, hints);
        auto [ec] = co_await res.send_interim(101, {}, tuple);  // no such thing in HTTP/3
        CHECK(ec == h3co::error::invalid_request);
        co_await res.send_header(200);
        const std::string page = "<html>";
        co_await res.write(asio::buffer(page));
        auto [late] = co_await res.send_interim(103, {}, tuple);  // too late: the final one went
        CHECK(late == h3co::error::already_open);
    });
    f.listen();
    test::run(f.io, [&]() -> asio::awaitable<void> {
        auto conn = co_await f.connect();
        auto stream = co_await conn.open_request_stream();
        const h3co::request get_page{.method = "GET", .url = "/page"};
        co_await stream.send_header(get_page);
        co_await stream.finish();
        const auto hints = co_await stream.read_interim();
        CHECK(hints.status == 103);
        CHECK(hints.headers.find("link") == "</style.css>; rel=preload; as=style");
        const auto head = co_await stream.read_response();  // skips any interim response
        CHECK(head.status == 200);
        auto [ec, after] = co_await stream.read_interim(tuple);
        CHECK(ec == h3co::error::no_interim_response);
        auto [rec, body] = co_await read_all_asio(stream);
        CHECK(body == "<html>");
    }());
}

TEST_CASE("http: total cancellation of a read_interim ends it and leaves the stream for read_response", "[http][interim][cancel]") {
    fixture f;
    auto release = std::make_shared<asio::steady_timer>(f.io, asio::steady_timer::time_point::max());
    f.server.handle("/later", [release](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await release->async_wait(tuple);  // answers nothing until released
        co_await res.send_header(200);
    });
    f.listen();
    test::run(f.io, [&]() -> asio::awaitable<void> {
        auto conn = co_await f.connect();
        auto stream = co_await conn.open_request_stream();
        const h3co::request get_later{.method = "GET", .url = "/later"};
        co_await stream.send_header(get_later);
        co_await stream.finish();
        asio::cancellation_signal signal;
        std::optional<std::error_code> interim_ec;
        stream.read_interim(asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, h3co::response_head) {
            interim_ec = ec;
        }));
        signal.emit(asio::cancellation_type::total);
        co_await until([&] { return interim_ec.has_value(); });
        CHECK(interim_ec == asio::error::operation_aborted);
        release->cancel();
        const auto head = co_await stream.read_response();
        CHECK(head.status == 200);
    }(), 30s);
}

TEST_CASE("http: HEAD, 204 and 304 carry no body, and the client does not wait for one", "[http][bodiless]") {
    fixture f;
    auto writes = std::make_shared<std::vector<std::error_code>>();
    f.server.handle("/", [writes](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        const int status = req.path() == "/no-content" ? 204 : req.path() == "/not-modified" ? 304 : 200;
        if (status == 204) {  // a 204 has no content, so no content-length either (RFC 9110 §8.6)
            const h3co::fields wrong{{"content-length", "12"}};
            auto [ec] = co_await res.send_header(204, wrong, tuple);
            CHECK(ec == h3co::error::invalid_request);
        }
        // HEAD and 304 may tell the size of what a GET would have sent.
        h3co::fields fields{{"etag", "\"v1\""}};
        if (status != 204) fields.push_back({"content-length", "12345"});
        co_await res.send_header(status, fields);
        const std::string body = "must not go";
        auto [ec, n] = co_await res.write(asio::buffer(body), tuple);
        writes->push_back(ec);
    });
    f.listen();
    h3co::client client(test::executor(f.io), test::trusting_test_ca());
    for (const auto& [method, path, status] : {std::tuple{"HEAD", "/file", 200}, std::tuple{"GET", "/no-content", 204},
                                               std::tuple{"GET", "/not-modified", 304}}) {
        CAPTURE(method, path);
        const auto [got, ec, body] = test::run(f.io, [&]() -> asio::awaitable<std::tuple<int, std::error_code, std::string>> {
            const h3co::request request{.method = method, .url = f.url(path)};
            auto response = co_await client.request(request);
            auto [rec, data] = co_await read_all_asio(response.body);
            co_return std::tuple{response.status, rec, data};
        }(), 10s);
        CHECK(got == status);
        CHECK(ec == asio::error::eof);
        CHECK(body.empty());
    }
    test::settle(f.io);
    REQUIRE(writes->size() == 3);
    for (const auto& ec : *writes) CHECK(ec == h3co::error::not_writable);
    client.close();
}

TEST_CASE("http: a request the server refused with H3_REQUEST_REJECTED is tried again", "[http][retry]") {
    fixture f;
    f.server.handle("/once", [seen = f.seen](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        if (++seen->calls == 1) {  // refuses the first: nothing of it was processed
            res.take_over().reset(h3co::h3_error::request_rejected);
            co_return;
        }
        co_await res.send_header(200);
    });
    f.listen();
    h3co::client client(test::executor(f.io), test::trusting_test_ca());
    const int status = test::run(f.io, [&]() -> asio::awaitable<int> {
        const h3co::request get_once{.method = "GET", .url = f.url("/once")};
        const auto response = co_await client.request(get_once);
        co_return response.status;
    }());
    CHECK(status == 200);
    CHECK(f.seen->calls == 2);
    client.close();
}

TEST_CASE("http: after a server's GOAWAY the pooled client connects anew", "[http][goaway]") {
    asio::io_context io;
    auto hello = [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> { co_await res.send_header(200); };
    auto first = std::make_unique<h3co::server>(test::executor(io), test::server_identity());
    first->handle("/", hello);
    const auto port = first->listen("127.0.0.1", 0).port();
    h3co::client client(test::executor(io), test::trusting_test_ca());
    const std::string url = test::url(port, "/", "127.0.0.1");
    test::run(io, [&]() -> asio::awaitable<void> {
        const h3co::request get_root{.method = "GET", .url = url};
        const auto response = co_await client.request(get_root);
        CHECK(response.status == 200);
    }());
    first->shutdown(100ms);  // GOAWAY; the listener closes once its connections are gone
    test::settle(io, 500ms);
    h3co::server second(test::executor(io), test::server_identity());  // a new server, the same port
    second.handle("/", hello);
    second.listen("127.0.0.1", port);
    test::run(io, [&]() -> asio::awaitable<void> {
        const h3co::request get_root{.method = "GET", .url = url};
        const auto response = co_await client.request(get_root);
        CHECK(response.status == 200);
    }());
    CHECK(second.connection_count() == 1);  // the request went on a new connection, to the new server
    client.close();
}

TEST_CASE("http: localhost is loopback without asking the resolver", "[http][localhost]") {
    CHECK(h3co::detail::is_localhost("localhost"));
    CHECK(h3co::detail::is_localhost("LocalHost."));
    CHECK(h3co::detail::is_localhost("api.localhost"));
    CHECK_FALSE(h3co::detail::is_localhost("notlocalhost"));
    CHECK_FALSE(h3co::detail::is_localhost("localhost.example"));
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> { co_await res.send_header(200); });
    const auto port = server.listen("::", 0).port();  // dual stack: ::1 answers, as 127.0.0.1 would
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("localhost"), port, test::trusting_test_ca());
        CHECK(conn.is_open());
    }());
}

TEST_CASE("http: connect() || timeout gives up cleanly on a server that never answers", "[http][cancel]") {
    asio::io_context io;
    asio::ip::udp::socket silent(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto port = silent.local_endpoint().port();
    h3co::connection_options options;
    options.handshake_timeout = 20s;  // the timeout below must be what ends it
    const auto started = std::chrono::steady_clock::now();
    const auto outcome = test::run(io, [&]() -> asio::awaitable<int> {
        asio::steady_timer timer(co_await asio::this_coro::executor, 300ms);
        auto result = co_await (h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca(),
                                              options, tuple) ||
                                timer.async_wait(tuple));
        co_return static_cast<int>(result.index());
    }(), 10s);
    CHECK(outcome == 1);  // the timer won
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    test::settle(io, 100ms);  // nothing is left running: the io_context runs out of work
    io.restart();
    CHECK(io.run_for(50ms) == 0);
}

TEST_CASE("http: a cancelled wait for stream credit leaves the connection usable", "[http][cancel]") {
    asio::io_context io;
    h3co::connection_options options;
    options.max_concurrent_streams = 1;
    h3co::server server(test::executor(io), test::server_identity(), options);
    server.handle("/", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        std::array<char, 64> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            if (ec) break;
        }
        co_await res.send_header(200);
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto busy = co_await conn.open_request_stream();  // takes the only stream
        const h3co::request post_root{.method = "POST", .url = "/"};
        co_await busy.send_header(post_root);
        asio::steady_timer timer(co_await asio::this_coro::executor, 200ms);
        auto raced = co_await (conn.open_request_stream(tuple) || timer.async_wait(tuple));
        CHECK(raced.index() == 1);  // still no credit: the wait was cancelled
        co_await busy.finish();
        const auto busy_head = co_await busy.read_response();
        CHECK(busy_head.status == 200);
        auto next = co_await conn.open_request_stream();  // the credit the server gave back is ours
        co_await next.send_header(post_root);
        co_await next.finish();
        const auto next_head = co_await next.read_response();
        CHECK(next_head.status == 200);
    }());
}

TEST_CASE("http: total cancellation of a read or write that did nothing yet leaves the stream open", "[http][cancel]") {
    fixture f;
    auto release = std::make_shared<asio::steady_timer>(f.io, asio::steady_timer::time_point::max());
    f.server.handle("/slow", [seen = f.seen, release](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        co_await release->async_wait(tuple);  // reads nothing until released
        std::array<char, 65536> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            seen->body.append(buf.data(), n);
            if (ec) {
                seen->end = ec;
                break;
            }
        }
        const std::string done = "done";
        co_await res.write(asio::buffer(done));
    });
    f.listen();
    h3co::connection_options options;
    options.max_stream_send_buffer = options.stream_send_buffer = 64 * 1024;  // a send buffer that does not grow
    std::uint64_t sent = 0;
    test::run(f.io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(f.io), std::string("127.0.0.1"), f.port, test::trusting_test_ca(), options);
        auto stream = co_await conn.open_request_stream();
        const h3co::request post_slow{.method = "POST", .url = "/slow"};
        co_await stream.send_header(post_slow);
        co_await stream.read_response();
        // A read with nothing to read yet, cancelled with "total": it ends, the stream does not.
        // (Initiated on the connection's executor, it is pending as soon as the call returns.)
        asio::cancellation_signal signal;
        std::array<char, 16> small;
        std::optional<std::error_code> read_ec;
        stream.read_some(asio::buffer(small), asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::size_t) {
                             read_ec = ec;
                         }));
        signal.emit(asio::cancellation_type::total);
        co_await until([&] { return read_ec.has_value(); });
        CHECK(read_ec == asio::error::operation_aborted);
        // The server does not read: its 256 KiB window and our 64 KiB send buffer take a little less
        // than 320 KiB (DATA framing counts against the window). Fill them exactly: 304 KiB, then a
        // write_some that takes only what still fits. The write after that waits with nothing taken.
        const std::string chunk(16 * 1024, 'w');
        for (int i = 0; i < 19; ++i) sent += co_await stream.write(asio::buffer(chunk));
        const std::string big(64 * 1024, 'w');
        const std::size_t filled = co_await stream.async_write_some(asio::buffer(big));
        REQUIRE(filled < big.size());  // the buffers are full now
        sent += filled;
        std::optional<std::error_code> write_ec;
        std::size_t taken = 0;
        stream.write(asio::buffer(chunk), asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::size_t n) {
                         write_ec = ec;
                         taken = n;
                     }));
        signal.emit(asio::cancellation_type::total);
        co_await until([&] { return write_ec.has_value(); });
        CHECK(write_ec == asio::error::operation_aborted);
        CHECK(taken == 0);
        // Nothing was reset: release the reader, finish, and everything written arrives.
        release->cancel();
        co_await stream.finish();
        auto [ec, rest] = co_await read_all_asio(stream);
        CHECK(ec == asio::error::eof);
        CHECK(rest == "done");
    }(), 30s);
    test::settle(f.io);
    CHECK(f.seen->end == h3co::error::eof);
    CHECK(f.seen->body.size() == sent);
}

TEST_CASE("http: finish() after the server stopped reading ends, whatever the unread response holds", "[http][stop]") {
    fixture f;
    // The handler answers with a body larger than the client's stream window and returns without
    // reading the request: h3co sends STOP_SENDING (H3_NO_ERROR) for the request body.
    f.server.handle("/big", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        const std::string body(300 * 1000, 'b');
        co_await res.write(asio::buffer(body));
    });
    f.listen();
    const auto ec = test::run(f.io, [&]() -> asio::awaitable<std::error_code> {
        auto conn = co_await f.connect();
        auto stream = co_await conn.open_request_stream();
        const h3co::request post_big{.method = "POST", .url = "/big"};
        co_await stream.send_header(post_big);
        const auto head = co_await stream.read_response();
        CHECK(head.status == 200);
        auto [fin_ec] = co_await stream.finish(tuple);  // the response body is still unread
        co_return fin_ec;
    }(), 10s);
    INFO(ec.message());
    CHECK((!ec || ec == h3co::error::stream_stopped));
}

}  // namespace http_semantics_test
