// The ngtcp2/nghttp3 stack under the tests, and what differs between ngtcp2 0.12 / nghttp3 0.8 and
// ngtcp2 1.x / nghttp3 1.x where users can see it: path-MTU discovery above 1452 bytes.
// (HTTP/3 datagrams: test_datagrams.cpp; extended CONNECT: test_extended_connect.cpp.)
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

using namespace std::chrono_literals;

namespace versions_test {

bool on_1x() { return std::string(H3CO_TEST_STACK) == "1.x"; }

/// Echo: the response body is the request body.
asio::awaitable<void> echo(h3co::server_request& req, h3co::response& res) {
    co_await res.send_header(200);
    std::array<char, 16384> buf;
    for (;;) {
        auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
        if (n) co_await res.write(asio::buffer(buf.data(), n));
        if (ec) break;
    }
}

using test::read_all;

/// Sends `body` to /echo and returns what comes back.
asio::awaitable<std::string> echo_round(h3co::connection& conn, const std::string& body) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = "/echo"};
    co_await stream.send_header(req);
    co_await stream.write(asio::buffer(body));
    co_await stream.finish();
    const auto head = co_await stream.read_response();
    REQUIRE(head.status == 200);
    co_return co_await read_all(stream);
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return s;
}


TEST_CASE("versions: the tests run on the stack the build was configured for", "[versions]") {
    const auto info = h3co::stack();
    INFO("configured stack " << H3CO_TEST_STACK << ", running ngtcp2 " << info.ngtcp2_version << ", nghttp3 "
                             << info.nghttp3_version);
    if (on_1x()) {
        CHECK(info.ngtcp2_version.rfind("1.", 0) == 0);
        CHECK(info.nghttp3_version.rfind("1.", 0) == 0);
        CHECK(info.h3_datagrams);
        CHECK(info.pmtud_above_1452);
    } else {
        CHECK(info.ngtcp2_version.rfind("0.12.", 0) == 0);
        CHECK(info.nghttp3_version.rfind("0.8.", 0) == 0);
        CHECK_FALSE(info.h3_datagrams);
        CHECK_FALSE(info.pmtud_above_1452);
    }
    CHECK(info.extended_connect);
}

// On loopback (MTU 65536) the path carries any size: with ngtcp2 1.x the client's packets grow to
// max_udp_payload by path-MTU probes; with 0.12 they stop at ngtcp2's largest probe, 1444. Bodies
// go both ways in the large packets (and in GSO runs of them) intact.
TEST_CASE("versions: path-MTU discovery above 1452 bytes where the path carries it (ngtcp2 1.x)", "[versions]") {
    const std::size_t raised = GENERATE(std::size_t{1452}, std::size_t{4096});
    INFO("max_udp_payload " << raised);
    asio::io_context io;
    h3co::connection_options options;
    options.max_udp_payload = raised;
    h3co::server server(test::executor(io), test::server_identity(), options);
    server.handle("/echo", echo);
    const auto port = server.listen("127.0.0.1", 0).port();
    const std::string body = pattern(300 * 1000);
    std::uint64_t largest = 0;
    int rounds = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn =
            co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca(), options);
        CHECK(conn.stats().max_udp_payload >= 1200);
        // Each probe needs the peer's ACK; traffic makes the flushes that send the next one. Bounded:
        // 1.x reaches the top in a few rounds, and 0.12 must stay where it is for all of them.
        const bool grows = on_1x() && raised > 1452;
        for (; rounds < (grows ? 12 : 4); ++rounds) {
            const auto echoed = co_await echo_round(conn, body);
            REQUIRE(echoed.size() == body.size());
            REQUIRE(echoed == body);
            largest = conn.stats().max_udp_payload;
            if (grows && largest >= raised) break;
        }
    }(), std::chrono::seconds(60));
    INFO("largest path payload " << largest << " after " << rounds + 1 << " rounds");
    if (on_1x() && raised > 1452) {
        CHECK(largest == raised);
    } else {
        CHECK(largest > 1200);  // ngtcp2's own probes did run
        CHECK(largest <= 1452);
    }
}

}  // namespace versions_test
