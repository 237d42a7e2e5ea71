// Bad input from a peer: each case ends in a clear error for that request only, while the
// connection and the server go on serving.
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <random>

using namespace std::chrono_literals;

namespace bad_input_test {

/// A server with /echo (reads the body, answers 200 with its size) that records how reads ended.
struct guarded_server {
    h3co::server server;
    std::shared_ptr<std::vector<std::error_code>> read_ends = std::make_shared<std::vector<std::error_code>>();
    std::uint16_t port = 0;

    guarded_server(asio::io_context& io, const h3co::connection_options& options)
        : server(test::executor(io), test::server_identity(), options) {
        server.handle("/echo", [ends = read_ends](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            std::array<char, 4096> buf;
            std::size_t total = 0;
            for (;;) {
                auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
                total += n;
                if (ec) {
                    ends->push_back(ec);
                    if (ec != h3co::error::eof) co_return;
                    break;
                }
            }
            const std::string size = std::to_string(total);
            co_await res.send_header(200);
            co_await res.write(asio::buffer(size));
        });
        port = server.listen("127.0.0.1", 0).port();
    }
};

struct outcome {
    std::error_code error;  ///< how the exchange failed, if it did
    int status = 0;
    std::string body;
};

/// One exchange on `conn`: header block (raw or regular), optional body, read the response.
asio::awaitable<outcome> exchange(h3co::connection& conn, const h3co::fields* raw, const h3co::request* req,
                                  const std::string& body) {
    outcome out;
    auto [open_ec, stream] = co_await conn.open_request_stream(tuple);
    if (open_ec) co_return outcome{open_ec};
    auto [hdr_ec] = raw ? co_await h3co::testing::send_raw_header(stream, *raw, tuple) : co_await stream.send_header(*req, tuple);
    if (hdr_ec) co_return outcome{hdr_ec};
    if (!body.empty()) co_await stream.write(asio::buffer(body), tuple);
    co_await stream.finish(tuple);
    auto [resp_ec, head] = co_await stream.read_response(tuple);
    if (resp_ec) co_return outcome{resp_ec};
    out.status = head.status;
    std::array<char, 256> buf;
    for (;;) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        out.body.append(buf.data(), n);
        if (ec == h3co::error::eof) break;
        if (ec) {
            out.error = ec;
            break;
        }
    }
    co_return out;
}

h3co::fields valid_pseudo(std::uint16_t port) {
    return {{":method", "POST"}, {":scheme", "https"}, {":authority", "127.0.0.1:" + std::to_string(port)}, {":path", "/echo"}};
}

/// Runs `bad` then a valid request on the same connection; returns the bad one's outcome and
/// checks the connection still serves.
outcome bad_then_good(asio::io_context& io, guarded_server& srv, const h3co::fields* raw, const h3co::request* req,
                      const std::string& body) {
    return test::run(io, [&]() -> asio::awaitable<outcome> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        const outcome bad = co_await exchange(conn, raw, req, body);
        const h3co::request good{.method = "POST", .url = "/echo"};
        const std::string good_body = "hello";
        const outcome after = co_await exchange(conn, nullptr, &good, good_body);
        CHECK_FALSE(after.error);
        CHECK(after.status == 200);
        CHECK(after.body == "5");  // the connection still serves
        CHECK(conn.is_open());
        co_return bad;
    }());
}


TEST_CASE("bad input: garbage datagrams are dropped and the server keeps serving", "[bad-input]") {
    asio::io_context io;
    guarded_server srv(io, {});
    asio::ip::udp::socket junk(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::mt19937 rng(42);
    const asio::ip::udp::endpoint target(asio::ip::make_address("127.0.0.1"), srv.port);
    for (int i = 0; i < 500; ++i) {
        std::vector<unsigned char> d(1 + rng() % 1400);
        for (auto& b : d) b = static_cast<unsigned char>(rng());
        if (i % 3 == 0) d[0] = 0xc0;                      // looks like a long header...
        if (i % 5 == 0) d.resize(std::min<std::size_t>(d.size(), 5));  // ...or is truncated
        junk.send_to(asio::buffer(d), target);
    }
    test::settle(io, 100ms);
    CHECK(srv.server.dropped_datagrams() > 0);
    const h3co::request good{.method = "POST", .url = "/echo"};
    const outcome ok = bad_then_good(io, srv, nullptr, &good, "x");
    CHECK(ok.status == 200);
}

TEST_CASE("bad input: malformed request headers are refused, the connection goes on", "[bad-input]") {
    asio::io_context io;
    guarded_server srv(io, {});
    auto fields = valid_pseudo(srv.port);
    SECTION("missing :path") { fields.pop_back(); }
    SECTION("missing :method") { fields.erase(fields.begin()); }
    SECTION("missing :scheme") { fields.erase(fields.begin() + 1); }
    SECTION("connection-specific field") { fields.push_back({"connection", "keep-alive"}); }
    const outcome bad = bad_then_good(io, srv, &fields, nullptr, "body");
    INFO("error: " << bad.error.message() << " status: " << bad.status);
    CHECK((bad.error || bad.status >= 400));
    CHECK(bad.status != 200);
    for (const auto& ec : *srv.read_ends) CHECK(ec == h3co::error::eof);  // no handler saw the bad one's body
}

// nghttp3 0.8 removes a field with CR/LF/NUL in its value (NGHTTP3_ERR_REMOVE_HTTP_HEADER, "for
// compatibility") instead of treating the request as malformed as RFC 9114 §4.2 asks, so h3co never
// sees it; what holds is that it never reaches the application. Uppercase names cannot be crafted
// through nghttp3 at all: its encoder lowercases them (this test sends one and the handler sees it
// lowercased). docs/design.md, "Limits of nghttp3 0.8", has both.
TEST_CASE("bad input: a field with CR/LF never reaches the handler - names arrive lowercase", "[bad-input]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    auto seen = std::make_shared<h3co::fields>();
    server.handle("/echo", [seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        *seen = req.headers();
        co_await res.send_header(200);
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    auto fields = valid_pseudo(port);
    fields.push_back({"X-Upper", "1"});
    fields.push_back({"x-bad", "a\r\nb"});
    fields.push_back({"x-good", "ok"});
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        co_await h3co::testing::send_raw_header(stream, fields);
        co_await stream.finish();
        co_await stream.read_response();
    }());
    std::vector<std::string> names;
    for (const auto& f : *seen) names.push_back(f.name);
    CHECK(names == std::vector<std::string>{"x-upper", "x-good"});
}

TEST_CASE("bad input: a header block over the limit gets 431", "[bad-input]") {
    asio::io_context io;
    h3co::connection_options options;
    options.max_header_bytes = 4096;
    guarded_server srv(io, options);
    h3co::request big{.method = "POST", .url = "/echo"};
    big.headers.push_back({"x-big", std::string(8000, 'a')});
    const outcome bad = bad_then_good(io, srv, nullptr, &big, "body");
    CHECK(bad.status == 431);
    CHECK(srv.read_ends->size() == 1);  // only the good request reached the handler
}

TEST_CASE("bad input: a request body over the limit gets 413", "[bad-input]") {
    asio::io_context io;
    h3co::connection_options options;
    options.max_request_body = 10000;
    guarded_server srv(io, options);
    const h3co::request req{.method = "POST", .url = "/echo"};
    const outcome bad = bad_then_good(io, srv, nullptr, &req, std::string(50000, 'b'));
    CHECK(bad.status == 413);
    REQUIRE_FALSE(srv.read_ends->empty());
    CHECK(srv.read_ends->front() == h3co::error::body_too_large);
}

TEST_CASE("bad input: content-length that does not match the body", "[bad-input]") {
    asio::io_context io;
    guarded_server srv(io, {});
    h3co::request req{.method = "POST", .url = "/echo"};
    req.headers.push_back({"content-length", "3"});
    const outcome bad = bad_then_good(io, srv, nullptr, &req, "more than three bytes");
    INFO("error: " << bad.error.message() << " status: " << bad.status);
    CHECK((bad.error || bad.status >= 400));
    CHECK(bad.status != 200);
}

}  // namespace bad_input_test
