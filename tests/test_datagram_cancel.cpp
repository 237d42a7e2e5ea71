// Cancelling an HTTP/3 datagram operation (RFC 9297) ends that operation only: a pending send and a
// pending receive of the same stream are cancelled each by its own slot, and an operation still
// waiting for the peer's SETTINGS completes with operation_aborted at once and never runs later.
// HTTP/3 datagrams need nghttp3 1.x; on 0.8 every call fails with not_supported (test_datagrams.cpp).
#include "support/lossy_relay.hpp"
#include "support/test_support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace datagram_cancel_test {

bool on_1x() { return std::string(H3CO_TEST_STACK) == "1.x"; }

h3co::connection_options datagram_options(std::size_t send_queue = 64) {
    h3co::connection_options o;
    o.h3_datagrams = true;
    o.datagram_send_queue = send_queue;
    return o;
}

/// Handler: 200, then echoes each datagram until one says "bye" (then ends its side), counting.
struct echo_server {
    h3co::server server;
    std::shared_ptr<int> echoed = std::make_shared<int>(0);
    std::uint16_t port;
    explicit echo_server(asio::io_context& io) : server(test::executor(io), test::server_identity(), datagram_options()) {
        server.handle("/echo", [echoed = echoed](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
            co_await res.send_header(200);
            auto stream = res.take_over();
            std::array<std::uint8_t, 256> buf;
            for (;;) {
                auto [ec, n] = co_await stream.receive_datagram(asio::buffer(buf), tuple);
                if (ec || std::string(buf.begin(), buf.begin() + n) == "bye") break;
                auto [sec] = co_await stream.send_datagram(asio::buffer(buf.data(), n), tuple);
                if (sec) break;
                ++*echoed;
            }
            co_await stream.finish(tuple);
        });
        port = server.listen("127.0.0.1", 0).port();
    }
};

/// How an operation started with a callback completed (nothing yet: still pending).
struct outcome {
    std::optional<std::error_code> ec;
    std::size_t bytes = 0;
};

/// Waits (bounded) until every outcome in `all` has completed.
template <class... Outcomes>
asio::awaitable<void> wait_for(const Outcomes&... all) {
    for (int i = 0; i < 400 && !(all.ec.has_value() && ...); ++i) co_await h3co::sleep_for(5ms);
}

asio::awaitable<h3co::request_stream> open_echo(h3co::connection& conn) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = "/echo"};  // named: GCC 12 frees a temporary twice
    co_await stream.send_header(req);
    const auto head = co_await stream.read_response();
    REQUIRE(head.status == 200);
    co_return stream;
}

/// Ends the echo exchange: "bye", then both sides finish.
asio::awaitable<void> say_bye(h3co::request_stream& stream) {
    co_await stream.send_datagram(asio::buffer("bye", 3));
    co_await stream.finish();
    co_await test::read_all(stream);
}

TEST_CASE("datagram cancel: cancelling a send leaves the stream's pending receive waiting (1.x)", "[datagram-cancel]") {
    if (!on_1x()) {
        SUCCEED("HTTP/3 datagrams need nghttp3 1.x");
        return;
    }
    asio::io_context io;
    echo_server srv(io);
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port,
                                           test::trusting_test_ca(), datagram_options(1));
        auto stream = co_await open_echo(conn);
        std::array<char, 64> buf;
        outcome received, first, second;
        stream.receive_datagram(asio::buffer(buf), [&](std::error_code ec, std::size_t n) { received = {ec, n}; });
        // "a" takes the send queue's one place; "b" waits for room, until it is cancelled.
        stream.send_datagram(asio::buffer("a", 1), [&](std::error_code ec) { first.ec = ec; });
        asio::cancellation_signal cancel_second;
        stream.send_datagram(asio::buffer("b", 1), asio::bind_cancellation_slot(cancel_second.slot(), [&](std::error_code ec) {
                                 second.ec = ec;
                             }));
        cancel_second.emit(asio::cancellation_type::terminal);
        co_await wait_for(received, first, second);
        REQUIRE(second.ec);
        CHECK(*second.ec == asio::error::operation_aborted);
        REQUIRE(first.ec);
        CHECK_FALSE(*first.ec);
        REQUIRE(received.ec);
        CHECK_FALSE(*received.ec);  // not operation_aborted: it got the echo of "a"
        CHECK(std::string(buf.data(), received.bytes) == "a");
        co_await say_bye(stream);
    }());
    CHECK(*srv.echoed == 1);  // "b" never went
}

TEST_CASE("datagram cancel: cancelling a receive leaves the stream's pending send waiting (1.x)", "[datagram-cancel]") {
    if (!on_1x()) {
        SUCCEED("HTTP/3 datagrams need nghttp3 1.x");
        return;
    }
    asio::io_context io;
    echo_server srv(io);
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port,
                                           test::trusting_test_ca(), datagram_options(1));
        auto stream = co_await open_echo(conn);
        std::array<char, 64> buf;
        outcome received, first, second;
        stream.send_datagram(asio::buffer("a", 1), [&](std::error_code ec) { first.ec = ec; });
        stream.send_datagram(asio::buffer("b", 1), [&](std::error_code ec) { second.ec = ec; });  // waits for room
        asio::cancellation_signal cancel_receive;
        stream.receive_datagram(asio::buffer(buf), asio::bind_cancellation_slot(cancel_receive.slot(),
                                                                                [&](std::error_code ec, std::size_t n) {
                                                                                    received = {ec, n};
                                                                                }));
        cancel_receive.emit(asio::cancellation_type::terminal);
        co_await wait_for(received, first, second);
        REQUIRE(received.ec);
        CHECK(*received.ec == asio::error::operation_aborted);
        REQUIRE(first.ec);
        CHECK_FALSE(*first.ec);
        REQUIRE(second.ec);
        CHECK_FALSE(*second.ec);  // not operation_aborted: it went once "a" left
        // Both come back: the stream's receiving still works.
        std::string echoes;
        for (int i = 0; i < 2; ++i) {
            asio::steady_timer timer(co_await asio::this_coro::executor, 2s);
            auto r = co_await (stream.receive_datagram(asio::buffer(buf), tuple) || timer.async_wait(tuple));
            REQUIRE(r.index() == 0);
            auto [ec, n] = std::get<0>(r);
            REQUIRE_FALSE(ec);
            echoes.append(buf.data(), n);
        }
        std::sort(echoes.begin(), echoes.end());
        CHECK(echoes == "ab");
        co_await say_bye(stream);
    }());
    CHECK(*srv.echoed == 2);
}

// The relay delays what the server sends by 150 ms, so the server's SETTINGS (sent once its own
// handshake completes, after the client's) arrive well after connect() returns: operations started
// at once wait for them.
TEST_CASE("datagram cancel: an operation waiting for the peer's SETTINGS is cancelled at once and never runs (1.x)",
          "[datagram-cancel]") {
    if (!on_1x()) {
        SUCCEED("HTTP/3 datagrams need nghttp3 1.x");
        return;
    }
    asio::io_context io;
    echo_server srv(io);
    test::lossy_relay relay(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), srv.port));
    test::fault_policy slow;
    slow.delay = 150ms;
    relay.set(test::lossy_relay::direction::to_client, slow);
    outcome sent, received;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), relay.port(),
                                           test::trusting_test_ca(), datagram_options());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = "/echo"};
        co_await stream.send_header(req);
        asio::cancellation_signal cancel_send;
        stream.send_datagram(asio::buffer("x", 1), asio::bind_cancellation_slot(cancel_send.slot(), [&](std::error_code ec) {
                                 sent.ec = ec;
                             }));
        cancel_send.emit(asio::cancellation_type::terminal);
        // A timer cancels the receive (as op || timer does) before any SETTINGS arrive.
        std::array<char, 64> buf;
        asio::cancellation_signal cancel_receive;
        stream.receive_datagram(asio::buffer(buf), asio::bind_cancellation_slot(cancel_receive.slot(),
                                                                                [&](std::error_code ec, std::size_t n) {
                                                                                    received = {ec, n};
                                                                                }));
        asio::steady_timer timer(co_await asio::this_coro::executor, 30ms);
        co_await timer.async_wait(tuple);
        cancel_receive.emit(asio::cancellation_type::terminal);
        co_await wait_for(sent, received);
        const auto head = co_await stream.read_response();
        CHECK(head.status == 200);
        co_await say_bye(stream);
    }());
    REQUIRE(sent.ec);
    CHECK(*sent.ec == asio::error::operation_aborted);
    REQUIRE(received.ec);
    CHECK(*received.ec == asio::error::operation_aborted);
    CHECK(*srv.echoed == 0);  // the cancelled "x" never went
}

}  // namespace datagram_cancel_test
