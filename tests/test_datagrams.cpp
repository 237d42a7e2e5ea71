// HTTP/3 datagrams (RFC 9297) between an h3co client and an h3co server over loopback: both ways on
// a request stream, negotiation, limits, the bounded receive queue, malformed datagrams. They need
// nghttp3 1.x (SETTINGS_H3_DATAGRAM); on ngtcp2 0.12 / nghttp3 0.8 every call must fail with
// error::not_supported instead of doing nothing.
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <memory>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace datagrams_test {

bool on_1x() { return std::string(H3CO_TEST_STACK) == "1.x"; }

h3co::connection_options datagram_options(bool on = true) {
    h3co::connection_options o;
    o.h3_datagrams = on;
    return o;
}

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

std::vector<std::uint8_t> payload(std::size_t n, int seed) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed * 31 + i * 7);
    return v;
}

/// How the server's datagram loop went.
struct server_log {
    std::vector<std::error_code> ends;  ///< how each handler's receive loop ended
    int echoed = 0;
};

/// Handler: 200, then echoes each datagram reversed until one says "bye" (then ends its side) or
/// receiving fails (recorded).
auto echo_handler(std::shared_ptr<server_log> log) {
    return [log](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        auto stream = res.take_over();
        std::array<std::uint8_t, 4096> buf;
        for (;;) {
            auto [ec, n] = co_await stream.receive_datagram(asio::buffer(buf), tuple);
            if (ec) {
                log->ends.push_back(ec);
                break;
            }
            if (std::string(buf.begin(), buf.begin() + n) == "bye") {
                log->ends.push_back({});
                break;
            }
            std::reverse(buf.begin(), buf.begin() + n);
            auto [sec] = co_await stream.send_datagram(asio::buffer(buf.data(), n), tuple);
            if (sec) {
                log->ends.push_back(sec);
                break;
            }
            ++log->echoed;
        }
        co_await stream.finish(tuple);
    };
}

struct datagram_server {
    h3co::server server;
    std::shared_ptr<server_log> log = std::make_shared<server_log>();
    std::uint16_t port;
    datagram_server(asio::io_context& io, const h3co::connection_options& options)
        : server(test::executor(io), test::server_identity(), options) {
        server.handle("/echo", echo_handler(log));
        port = server.listen("127.0.0.1", 0).port();
    }
};

/// Opens POST /echo on `conn` and waits for its 200.
asio::awaitable<h3co::request_stream> open_echo(h3co::connection& conn) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = "/echo"};
    co_await stream.send_header(req);
    const auto head = co_await stream.read_response();
    REQUIRE(head.status == 200);
    co_return stream;
}

/// receive_datagram with a deadline: the timer's cancellation completes it with operation_aborted.
asio::awaitable<std::pair<std::error_code, std::vector<std::uint8_t>>> receive_within(h3co::http_stream& stream,
                                                                                       std::chrono::milliseconds limit) {
    std::vector<std::uint8_t> buf(4096);
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    auto r = co_await (stream.receive_datagram(asio::buffer(buf), tuple) || timer.async_wait(tuple));
    if (r.index() == 1) co_return std::pair{std::error_code(asio::error::timed_out), std::vector<std::uint8_t>{}};
    auto [ec, n] = std::get<0>(r);
    buf.resize(n);
    co_return std::pair{ec, std::move(buf)};
}

using test::read_all;


TEST_CASE("datagrams: both ways on one request stream, h3co client to h3co server (1.x), not_supported on 0.12",
          "[datagrams]") {
    asio::io_context io;
    datagram_server srv(io, datagram_options());
    int round_trips = 0;
    std::error_code send_error, receive_error;
    h3co::connection_stats stats;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port,
                                           test::trusting_test_ca(), datagram_options());
        auto stream = co_await open_echo(conn);
        if (!on_1x()) {
            auto [sec] = co_await stream.send_datagram(asio::buffer("x", 1), tuple);
            send_error = sec;
            std::array<std::uint8_t, 16> buf;
            auto [rec, n] = co_await stream.receive_datagram(asio::buffer(buf), tuple);
            receive_error = rec;
        } else {
            // Sizes from empty to about the largest that fits a 1200-byte packet.
            const std::size_t sizes[] = {0, 1, 2, 63, 64, 100, 500, 1000, 1100, 1150};
            for (int i = 0; i < 30; ++i) {
                const auto sent = payload(sizes[i % std::size(sizes)], i);
                co_await stream.send_datagram(asio::buffer(sent));
                auto [ec, got] = co_await receive_within(stream, 3000ms);
                REQUIRE_FALSE(ec);
                auto expected = sent;
                std::reverse(expected.begin(), expected.end());
                REQUIRE(got == expected);
                ++round_trips;
            }
            co_await stream.send_datagram(asio::buffer("bye", 3));
        }
        co_await stream.finish();
        const auto body = co_await read_all(stream);
        CHECK(body.empty());
        stats = conn.stats();
    }());
    test::settle(io);
    if (on_1x()) {
        CHECK(round_trips == 30);
        CHECK(srv.log->echoed == 30);
        REQUIRE(srv.log->ends.size() == 1);
        CHECK_FALSE(srv.log->ends[0]);
        CHECK(stats.datagrams_sent == 31);
        CHECK(stats.datagrams_received == 30);
        CHECK(stats.datagrams_dropped == 0);
    } else {
        CHECK(send_error == h3co::error::not_supported);
        CHECK(receive_error == h3co::error::not_supported);
        CHECK(send_error.message().find("not supported") != std::string::npos);
        REQUIRE(srv.log->ends.size() == 1);
        CHECK(srv.log->ends[0] == h3co::error::not_supported);
        CHECK(stats.datagrams_sent == 0);
    }
}

TEST_CASE("datagrams: not_negotiated unless both peers offer them", "[datagrams]") {
    const bool client_on = GENERATE(true, false);
    const bool server_on = !client_on;
    INFO("client offers: " << client_on << ", server offers: " << server_on);
    asio::io_context io;
    datagram_server srv(io, datagram_options(server_on));
    std::error_code send_error, receive_error;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port,
                                           test::trusting_test_ca(), datagram_options(client_on));
        auto stream = co_await open_echo(conn);
        auto [sec] = co_await stream.send_datagram(asio::buffer("x", 1), tuple);
        send_error = sec;
        std::array<std::uint8_t, 16> buf;
        auto [rec, n] = co_await stream.receive_datagram(asio::buffer(buf), tuple);
        receive_error = rec;
        co_await stream.finish();
        co_await read_all(stream);
    }());
    test::settle(io);
    const auto expected = on_1x() ? h3co::error::not_negotiated : h3co::error::not_supported;
    CHECK(send_error == expected);
    CHECK(receive_error == expected);
    REQUIRE(srv.log->ends.size() == 1);
    CHECK(srv.log->ends[0] == expected);  // the server's side fails the same way
}

TEST_CASE("datagrams: too large for a packet is refused, a small buffer truncates (1.x)", "[datagrams]") {
    asio::io_context io;
    datagram_server srv(io, datagram_options());
    std::error_code too_large, truncated;
    std::size_t truncated_size = 0;
    std::vector<std::uint8_t> head;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port,
                                           test::trusting_test_ca(), datagram_options());
        auto stream = co_await open_echo(conn);
        const auto big = payload(1500, 1);  // more than a 1452-byte packet carries
        auto [ec1] = co_await stream.send_datagram(asio::buffer(big), tuple);
        too_large = ec1;
        if (on_1x()) {
            const auto sent = payload(600, 2);
            co_await stream.send_datagram(asio::buffer(sent));
            std::array<std::uint8_t, 100> small;
            auto [ec2, n] = co_await stream.receive_datagram(asio::buffer(small), tuple);
            truncated = ec2;
            truncated_size = n;
            head.assign(small.begin(), small.begin() + n);
            auto expected = sent;
            std::reverse(expected.begin(), expected.end());
            expected.resize(100);
            CHECK(head == expected);
            co_await stream.send_datagram(asio::buffer("bye", 3));
        }
        co_await stream.finish();
        co_await read_all(stream);
    }());
    if (on_1x()) {
        CHECK(too_large == h3co::error::datagram_too_large);
        CHECK(truncated == h3co::error::datagram_truncated);
        CHECK(truncated_size == 100);
    } else {
        CHECK(too_large == h3co::error::not_supported);
    }
}

// The client reads nothing while the server sends 40 datagrams: the client keeps the first 8
// (its datagram_receive_queue) and drops the rest, counted; a receive then gets exactly those 8,
// in order, and a ninth waits until its timer cancels it (operation_aborted) with the stream intact.
TEST_CASE("datagrams: the receive queue is bounded, the excess dropped and counted, cancel keeps the stream (1.x)",
          "[datagrams]") {
    if (!on_1x()) {
        SUCCEED("HTTP/3 datagrams need nghttp3 1.x: the other tests check not_supported on this stack");
        return;
    }
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity(), datagram_options());
    constexpr int burst = 40;
    server.handle("/burst", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        auto stream = res.take_over();
        for (int i = 0; i < burst; ++i) {
            const std::string text = "datagram " + std::to_string(i);
            co_await stream.send_datagram(asio::buffer(text));
        }
        std::array<std::uint8_t, 16> buf;
        co_await stream.receive_datagram(asio::buffer(buf), tuple);  // the client's "done"
        co_await stream.finish();
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    auto options = datagram_options();
    options.datagram_receive_queue = 8;
    std::vector<std::string> got;
    std::error_code ninth;
    h3co::connection_stats stats;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port,
                                           test::trusting_test_ca(), options);
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = "/burst"};
        co_await stream.send_header(req);
        co_await stream.read_response();
        // Poll (bounded) until all 40 are accounted for: received = kept + dropped.
        for (int i = 0; i < 200 && conn.stats().datagrams_received < burst; ++i) co_await h3co::sleep_for(10ms);
        stats = conn.stats();
        for (int i = 0; i < 8; ++i) {
            auto [ec, d] = co_await receive_within(stream, 1000ms);
            REQUIRE_FALSE(ec);
            got.emplace_back(d.begin(), d.end());
        }
        auto [ec, d] = co_await receive_within(stream, 200ms);
        ninth = ec;
        co_await stream.send_datagram(asio::buffer("done", 4));  // the stream still works
        co_await stream.finish();
        co_await read_all(stream);
    }());
    CHECK(stats.datagrams_received == burst);
    CHECK(stats.datagrams_dropped == burst - 8);
    REQUIRE(got.size() == 8);
    for (int i = 0; i < 8; ++i) CHECK(got[i] == "datagram " + std::to_string(i));
    CHECK(ninth == asio::error::timed_out);  // the timer won; the receive was cancelled, not completed
}

TEST_CASE("datagrams: a pending receive ends with the stream (eof) and with the connection", "[datagrams]") {
    if (!on_1x()) {
        SUCCEED("HTTP/3 datagrams need nghttp3 1.x: the other tests check not_supported on this stack");
        return;
    }
    asio::io_context io;
    datagram_server srv(io, datagram_options());
    std::error_code at_stream_end, at_connection_end;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port,
                                           test::trusting_test_ca(), datagram_options());
        {
            auto stream = co_await open_echo(conn);
            h3co::http_stream shared = stream.share();
            std::array<std::uint8_t, 16> buf;
            std::optional<std::error_code> ended;
            shared.receive_datagram(asio::buffer(buf), [&](std::error_code ec, std::size_t) { ended = ec; });
            co_await stream.send_datagram(asio::buffer("bye", 3));  // the server ends its side
            co_await stream.finish();
            co_await read_all(stream);
            for (int i = 0; i < 200 && !ended; ++i) co_await h3co::sleep_for(10ms);
            REQUIRE(ended);
            at_stream_end = *ended;
        }
        auto stream = co_await open_echo(conn);
        std::array<std::uint8_t, 16> buf;
        std::optional<std::error_code> ended;
        stream.receive_datagram(asio::buffer(buf), [&](std::error_code ec, std::size_t) { ended = ec; });
        co_await h3co::sleep_for(20ms);
        conn.close();
        for (int i = 0; i < 200 && !ended; ++i) co_await h3co::sleep_for(10ms);
        REQUIRE(ended);
        at_connection_end = *ended;
    }());
    CHECK(at_stream_end == h3co::error::eof);
    CHECK(at_connection_end == h3co::error::connection_closed);
}

// Hostile datagrams: one whose quarter stream ID is cut short is a connection error
// (H3_DATAGRAM_ERROR, RFC 9297 §2.1); one for a stream that is not open is dropped and counted.
TEST_CASE("datagrams: a malformed datagram closes with H3_DATAGRAM_ERROR, one for no open stream is dropped (1.x)",
          "[datagrams][bad_input]") {
    if (!on_1x()) {
        SUCCEED("HTTP/3 datagrams need nghttp3 1.x: the other tests check not_supported on this stack");
        return;
    }
    const std::vector<std::uint8_t> bad = GENERATE(std::vector<std::uint8_t>{}, std::vector<std::uint8_t>{0x40},
                                                   std::vector<std::uint8_t>{0xc0, 1, 2, 3});
    INFO("frame of " << bad.size() << " bytes");
    asio::io_context io;
    datagram_server srv(io, datagram_options());
    std::error_code close_error;
    bool echoed_after_stray = false;
    const std::vector<std::uint8_t> stray{0x40, 100, 'x'};  // quarter stream ID 100: stream 400
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port,
                                           test::trusting_test_ca(), datagram_options());
        auto stream = co_await open_echo(conn);
        h3co::http_stream body = stream.share();
        // Stream 400 was never opened (quarter ID 100): dropped, and the connection goes on.
        co_await h3co::testing::send_raw_datagram(body, stray);
        co_await stream.send_datagram(asio::buffer("ab", 2));
        auto [ec, got] = co_await receive_within(stream, 3000ms);
        echoed_after_stray = !ec && got == bytes_of("ba");
        co_await h3co::testing::send_raw_datagram(body, bad);
        for (int i = 0; i < 300 && conn.is_open(); ++i) co_await h3co::sleep_for(10ms);
        close_error = conn.close_error();
    }());
    CHECK(echoed_after_stray);
    CHECK(close_error == h3co::h3_error::datagram_error);
}

}  // namespace datagrams_test
