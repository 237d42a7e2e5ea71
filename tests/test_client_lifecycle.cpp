// A client's connections over their whole life: the pool connects once per authority however many
// requests race for it, and closes all it made; peer error codes keep their full 62 bits; a stray
// ICMP error does not end an established connection; connect() races a blackholed address against
// the next one (RFC 8305); and a closed connection still says why it ended and what it did.
#include "support/test_support.hpp"

#include <asio/ip/udp.hpp>

#include <memory>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace client_lifecycle_test {

auto hello() {
    return [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        co_await res.write(asio::buffer(std::string("hello")));
    };
}

/// Runs `io` until `done()` holds or `limit` passes (a bounded wait on a condition, not a sleep).
template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = clock_type::now() + limit;
    while (!done() && clock_type::now() < deadline) {
        io.restart();
        io.run_for(10ms);
    }
    return done();
}

// ---- the pool ----------------------------------------------------------------------------------------

TEST_CASE("client lifecycle: ten concurrent requests to one authority share one connection", "[client-lifecycle][pool]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/", hello());
    const auto port = server.listen("127.0.0.1", 0).port();
    auto client = std::make_unique<h3co::client>(test::executor(io), test::trusting_test_ca());
    const std::string url = test::url(port, "/", "127.0.0.1");

    int finished = 0;
    std::vector<int> statuses;
    std::vector<std::error_code> errors;
    for (int i = 0; i < 10; ++i) {
        asio::co_spawn(io, [&]() -> asio::awaitable<void> {
            const h3co::request get{.method = "GET", .url = url};
            auto [ec, response] = co_await client->request(get, tuple);
            if (ec) errors.push_back(ec);
            else {
                statuses.push_back(response.status);
                co_await test::read_all(response.body);
            }
            ++finished;
        }, asio::detached);
    }
    REQUIRE(run_until(io, [&] { return finished == 10; }, 20000ms));
    CHECK(errors.empty());
    CHECK(statuses == std::vector<int>(10, 200));
    CHECK(server.stats().connections_accepted == 1);
    CHECK(server.stats().connections == 1);

    client->close();
    // The client's CONNECTION_CLOSE reaches the server: nothing of ours stays open there.
    CHECK(run_until(io, [&] { return server.stats().connections == 0; }));
    CHECK(server.stats().connections_accepted == 1);
}

TEST_CASE("client lifecycle: destroying the client closes the connections it made", "[client-lifecycle][pool]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/", hello());
    const auto port = server.listen("127.0.0.1", 0).port();
    auto client = std::make_unique<h3co::client>(test::executor(io), test::trusting_test_ca());
    const std::string url = test::url(port, "/", "127.0.0.1");
    test::run(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 3; ++i) {
            const h3co::request get{.method = "GET", .url = url};
            auto response = co_await client->request(get);
            co_await test::read_all(response.body);
        }
    }());
    REQUIRE(server.stats().connections == 1);
    asio::post(io, [&] { client.reset(); });  // on the client's executor, as a coroutine would
    CHECK(run_until(io, [&] { return server.stats().connections == 0; }));
}

TEST_CASE("client lifecycle: a waiter cancelled while the pool connects leaves the connect to the others",
          "[client-lifecycle][pool]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/", hello());
    const auto port = server.listen("127.0.0.1", 0).port();
    h3co::client client(test::executor(io), test::trusting_test_ca());
    const std::string url = test::url(port, "/", "127.0.0.1");

    std::error_code cancelled_ec;
    bool cancelled_done = false;
    asio::cancellation_signal signal;
    client.connection_for(url, asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, h3co::connection) {
                              cancelled_ec = ec;
                              cancelled_done = true;
                          }));
    std::error_code other_ec;
    bool other_done = false;
    bool other_open = false;
    client.connection_for(url, [&](std::error_code ec, h3co::connection c) {
        other_ec = ec;
        other_open = c.is_open();
        other_done = true;
    });
    signal.emit(asio::cancellation_type::terminal);
    REQUIRE(run_until(io, [&] { return cancelled_done && other_done; }));
    CHECK(cancelled_ec == asio::error::operation_aborted);
    CHECK_FALSE(other_ec);
    CHECK(other_open);
    CHECK(server.stats().connections_accepted == 1);
    client.close();
    CHECK(run_until(io, [&] { return server.stats().connections == 0; }));
}

// ---- 62-bit error codes ------------------------------------------------------------------------------

TEST_CASE("client lifecycle: error codes above int range keep their value and match no named code",
          "[client-lifecycle][error-codes]") {
    constexpr std::uint64_t wide = 0x1'0000'010Bull;  // H3_REQUEST_REJECTED plus 2^32
    const auto ec = h3co::make_h3_error_code(wide);
    CHECK(ec);
    CHECK(ec != h3co::h3_error::request_rejected);
    CHECK(ec != h3co::make_h3_error_code(0x10b));
    CHECK(h3co::wire_error_code(ec) == wide);
    CHECK(h3co::wire_error_code(h3co::make_h3_error_code(0x10b)) == 0x10bu);
    CHECK(h3co::make_h3_error_code(wide) == h3co::make_h3_error_code(wide));
    CHECK(h3co::make_h3_error_code(wide) != h3co::make_h3_error_code(wide + 1));
    CHECK(ec.message().find("0x10000010b") != std::string::npos);
    // Between INT_MAX and 2^32: no negative int in the h3 category either.
    const auto mid = h3co::make_h3_error_code(0x8000'0000ull);
    CHECK(mid.category() != h3co::h3_category());
    CHECK(h3co::wire_error_code(mid) == 0x8000'0000ull);
    // The largest varint (2^62 - 1) and transport codes alike.
    CHECK(h3co::wire_error_code(h3co::make_h3_error_code((1ull << 62) - 1)) == (1ull << 62) - 1);
    const auto quic = h3co::make_quic_error_code(0x1'0000'0002ull);
    CHECK(quic != h3co::quic_error::connection_refused);
    CHECK(h3co::wire_error_code(quic) == 0x1'0000'0002ull);
    CHECK_FALSE(h3co::wire_error_code(h3co::make_error_code(h3co::error::eof)));
}

TEST_CASE("client lifecycle: a reset with request_rejected plus 2^32 is not retried", "[client-lifecycle][error-codes]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    auto calls = std::make_shared<int>(0);
    constexpr std::uint64_t wide = 0x1'0000'010Bull;
    server.handle("/", [calls](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        ++*calls;
        res.take_over().reset(static_cast<h3co::h3_error>(wide));
        co_return;
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    h3co::client client(test::executor(io), test::trusting_test_ca());
    const auto ec = test::run(io, [&]() -> asio::awaitable<std::error_code> {
        const h3co::request get{.method = "GET", .url = test::url(port, "/", "127.0.0.1")};
        auto [ec, response] = co_await client.request(get, tuple);
        co_return ec;
    }());
    CHECK(ec);
    CHECK(ec != h3co::h3_error::request_rejected);
    CHECK(h3co::wire_error_code(ec) == wide);
    CHECK(*calls == 1);
    client.close();
}

// ---- ICMP errors -------------------------------------------------------------------------------------

/// A UDP relay on 127.0.0.1 whose client-facing socket can be closed and bound again on the same
/// port, as a server restarting on its port looks to the client: meanwhile the kernel answers the
/// client's packets with ICMP port unreachable.
class restartable_relay {
public:
    restartable_relay(asio::io_context& io, asio::ip::udp::endpoint server)
        : io_(io), front_(io), back_(io, asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), 0)) {
        back_.connect(server);
        open_front(0);
        port_ = front_.local_endpoint().port();
        receive_back();
    }

    std::uint16_t port() const { return port_; }

    void stop() {
        std::error_code ignored;
        front_.close(ignored);
    }
    void restart() { open_front(port_); }

private:
    void open_front(std::uint16_t port) {
        front_ = asio::ip::udp::socket(io_, asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), port));
        receive_front();
    }

    void receive_front() {
        front_.async_receive_from(asio::buffer(front_buf_), client_, [this](std::error_code ec, std::size_t n) {
            if (ec) return;  // closed by stop()
            std::error_code ignored;
            back_.send(asio::buffer(front_buf_.data(), n), 0, ignored);
            receive_front();
        });
    }

    void receive_back() {
        back_.async_receive(asio::buffer(back_buf_), [this](std::error_code ec, std::size_t n) {
            if (ec == asio::error::operation_aborted) return;
            if (!ec && front_.is_open()) {
                std::error_code ignored;
                front_.send_to(asio::buffer(back_buf_.data(), n), client_, 0, ignored);
            }
            receive_back();
        });
    }

    asio::io_context& io_;
    asio::ip::udp::socket front_;
    asio::ip::udp::socket back_;
    asio::ip::udp::endpoint client_;
    std::uint16_t port_ = 0;
    std::array<char, 65536> front_buf_{};
    std::array<char, 65536> back_buf_{};
};

TEST_CASE("client lifecycle: an established connection survives an ICMP port unreachable", "[client-lifecycle][icmp]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/", hello());
    const auto server_endpoint = server.listen("127.0.0.1", 0);
    restartable_relay relay(io, server_endpoint);

    auto conn = test::run(io, [&]() -> asio::awaitable<h3co::connection> {
        co_return co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), relay.port(),
                                         test::trusting_test_ca());
    }());
    REQUIRE(conn.is_open());

    // The "server" goes away: the client's next packet is answered by ICMP port unreachable.
    relay.stop();
    const auto sent_before = conn.stats().packets_sent;
    int status = 0;
    std::string body;
    std::error_code request_ec;
    bool done = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        const h3co::request get{.method = "GET", .url = test::url(relay.port(), "/", "127.0.0.1")};
        auto [ec, stream] = co_await conn.open_request_stream(tuple);
        if (!ec) std::tie(ec) = co_await stream.send_header(get, tuple);
        if (!ec) std::tie(ec) = co_await stream.finish(tuple);
        if (!ec) {
            auto [rec, head] = co_await stream.read_response(tuple);
            ec = rec;
            status = head.status;
            if (!ec) body = co_await test::read_all(stream);
        }
        request_ec = ec;
        done = true;
    }, asio::detached);
    REQUIRE(run_until(io, [&] { return conn.stats().packets_sent > sent_before; }));
    // Let the client's socket report the refusal before the "server" comes back.
    run_until(io, [&] { return conn.stats().unreachable_errors > 0 || !conn.is_open(); }, 2000ms);
    relay.restart();

    REQUIRE(run_until(io, [&] { return done; }, 20000ms));
    CHECK_FALSE(request_ec);
    CHECK(status == 200);
    CHECK(body == "hello");
    CHECK(conn.is_open());
    CHECK(conn.stats().unreachable_errors >= 1);
}

// ---- happy eyeballs ----------------------------------------------------------------------------------

TEST_CASE("client lifecycle: connect races past a blackholed first address", "[client-lifecycle][happy-eyeballs]") {
    asio::io_context io;
    // "localhost" is ::1 first, then 127.0.0.1: the server gets 127.0.0.1, and a socket that
    // never answers (no ICMP either) sits on [::1] at the same port.
    std::unique_ptr<h3co::server> server;
    std::optional<asio::ip::udp::socket> blackhole;
    std::uint16_t port = 0;
    for (int tries = 0; tries < 20 && !server; ++tries) {
        asio::ip::udp::socket s(io);
        s.open(asio::ip::udp::v6());
        s.set_option(asio::ip::v6_only(true));
        s.bind({asio::ip::address_v6::loopback(), 0});
        port = s.local_endpoint().port();
        auto candidate = std::make_unique<h3co::server>(test::executor(io), test::server_identity());
        candidate->handle("/", hello());
        try {
            candidate->listen("127.0.0.1", port);
        } catch (const std::system_error&) {
            continue;  // that port is taken on 127.0.0.1: another pair
        }
        server = std::move(candidate);
        blackhole.emplace(std::move(s));
    }
    REQUIRE(server);

    h3co::connection_options options;
    options.handshake_timeout = 3s;
    const auto started = clock_type::now();
    auto [ec, open, remote_v4] = test::run(io, [&]() -> asio::awaitable<std::tuple<std::error_code, bool, bool>> {
        auto [ec, conn] = co_await h3co::connect(test::executor(io), std::string("localhost"), port,
                                                 test::trusting_test_ca(), options, tuple);
        co_return std::tuple{ec, conn.is_open(), conn.is_open() && conn.stats().packets_received > 0};
    }());
    const auto took = clock_type::now() - started;
    CHECK_FALSE(ec);
    CHECK(open);
    CHECK(remote_v4);
    // Raced, not tried one after the other: well inside the first attempt's handshake timeout.
    CHECK(took < 2s);
    CHECK(server->stats().connections_accepted == 1);
    // The [::1] attempt was given up: its packets stop.
    test::settle(io, 100ms);
    std::size_t queued = 0;
    blackhole->non_blocking(true);
    std::array<char, 2048> buf;
    for (std::error_code rec; !rec; ++queued) blackhole->receive(asio::buffer(buf), 0, rec);
    test::settle(io, 1500ms);
    std::size_t later = 0;
    for (std::error_code rec;; ++later) {
        blackhole->receive(asio::buffer(buf), 0, rec);
        if (rec) break;
    }
    CHECK(queued > 1);  // the [::1] attempt did start
    CHECK(later == 0);
}

TEST_CASE("client lifecycle: connect tries the next address after a timeout", "[client-lifecycle][happy-eyeballs]") {
    // Both addresses blackholed: the connect fails with the handshake timeout, after both were tried,
    // not after the first alone plus nothing.
    asio::io_context io;
    std::optional<asio::ip::udp::socket> v6, v4;
    std::uint16_t port = 0;
    for (int tries = 0; tries < 20 && !v6; ++tries) {
        v4.emplace(io, asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), 0));
        port = v4->local_endpoint().port();
        std::error_code ec;
        asio::ip::udp::socket s(io);
        s.open(asio::ip::udp::v6(), ec);
        if (!ec) s.set_option(asio::ip::v6_only(true), ec);
        if (!ec) s.bind({asio::ip::address_v6::loopback(), port}, ec);
        if (!ec) v6.emplace(std::move(s));
    }
    REQUIRE(v6);
    h3co::connection_options options;
    options.handshake_timeout = 1s;
    const auto started = clock_type::now();
    const auto ec = test::run(io, [&]() -> asio::awaitable<std::error_code> {
        auto [ec, conn] = co_await h3co::connect(test::executor(io), std::string("localhost"), port,
                                                 test::trusting_test_ca(), options, tuple);
        co_return ec;
    }());
    const auto took = clock_type::now() - started;
    CHECK(ec == h3co::error::handshake_timeout);
    CHECK(took < 5s);
    v4->non_blocking(true);
    std::array<char, 2048> buf;
    std::error_code rec;
    v4->receive(asio::buffer(buf), 0, rec);
    CHECK_FALSE(rec);  // the 127.0.0.1 attempt sent its Initial
}

// ---- state after close() -----------------------------------------------------------------------------

TEST_CASE("client lifecycle: close_error and stats stay readable after close", "[client-lifecycle][close]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/", hello());
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        const h3co::request get{.method = "GET", .url = test::url(port, "/", "127.0.0.1")};
        auto stream = co_await conn.open_request_stream();
        co_await stream.send_header(get);
        co_await stream.finish();
        co_await stream.read_response();
        co_await test::read_all(stream);
        const auto before = conn.stats();
        CHECK(before.packets_sent > 0);
        conn.close();
        CHECK_FALSE(conn.is_open());
        CHECK(conn.close_error() == h3co::error::connection_closed);
        const auto after = conn.stats();
        CHECK(after.packets_sent >= before.packets_sent);
        CHECK(after.bytes_received >= before.bytes_received);
        // Operations after close() fail with why it ended, never crash.
        auto [ec, again] = co_await conn.open_request_stream(tuple);
        CHECK(ec == h3co::error::connection_closed);
    }());
}

}  // namespace client_lifecycle_test
