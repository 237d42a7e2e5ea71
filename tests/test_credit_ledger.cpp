// Receive credit over a connection's whole life: every byte the peer delivers is extended back
// exactly once, whatever the application does with it (reads it, drops it unread, resets, returns
// from a handler without reading). A leak shows as a connection that stalls once the unread bytes
// reach its window; a double credit as a peer allowed to send more than the window. Each case runs
// far past the window and then checks the ledger in connection_stats.
#include "support/fixed_windows.hpp"
#include "support/test_support.hpp"

#include <h3co/testing.hpp>

#include <asio/read.hpp>
#include <asio/steady_timer.hpp>

#include <cstdint>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace credit_ledger_test {

constexpr std::size_t body_size = 8 * 1024;
constexpr int rounds = 400;  // 400 x 8 KiB: three times the 1 MiB connection window below

using test::fixed_windows;

/// Nothing owed once every stream is gone: each delivered byte was extended.
void check_balanced(const h3co::connection_stats& s) {
    INFO("delivered " << s.credit_delivered << ", extended " << s.credit_extended << ", held " << s.credit_held);
    CHECK(s.credit_delivered > 0);
    CHECK(s.credit_held == 0);
    CHECK(s.credit_delivered == s.credit_extended + s.credit_released_at_end);
}

/// One side tells the other that something happened (count-based: a signal before the wait counts).
class event {
public:
    explicit event(asio::io_context& io) : timer_(io, std::chrono::steady_clock::time_point::max()) {}
    void fire() {
        ++fired_;
        timer_.cancel();
    }
    asio::awaitable<void> wait() {
        while (fired_ == taken_) co_await timer_.async_wait(tuple);
        ++taken_;
    }

private:
    asio::steady_timer timer_;
    std::uint64_t fired_ = 0, taken_ = 0;
};

/// A server whose /err answers 404 with an 8 KiB body, whose /unread answers 401 without reading
/// the request body, and whose /open sends 8 KiB and keeps the response open until the client is done.
struct credit_server {
    h3co::server server;
    std::uint16_t port;
    std::shared_ptr<h3co::connection_stats> last_stats = std::make_shared<h3co::connection_stats>();
    /// /err's body is all at the client (finish() completes once the client acknowledged it).
    std::shared_ptr<event> response_delivered;
    /// The client's upload to /unread is all at the server: the client fires it after its finish().
    std::shared_ptr<event> upload_delivered;

    explicit credit_server(asio::io_context& io)
        : server(test::executor(io), test::server_identity(), fixed_windows()), port(0),
          response_delivered(std::make_shared<event>(io)), upload_delivered(std::make_shared<event>(io)) {
        server.handle("/err", [done = response_delivered](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
            co_await res.send_header(404);
            const std::string body(body_size, 'e');
            co_await res.write(asio::buffer(body));
            co_await res.finish();
            done->fire();
        });
        server.handle("/unread", [st = last_stats, arrived = upload_delivered](h3co::server_request& req,
                                                                              h3co::response& res) -> asio::awaitable<void> {
            co_await arrived->wait();  // the body and its FIN are buffered here, unread
            *st = req.connection_stats();
            co_await res.send_header(401);
        });
        server.handle("/open", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            co_await res.send_header(200);
            const std::string body(body_size, 'o');
            co_await res.write(asio::buffer(body));
            std::array<char, 256> buf;
            for (;;) {  // until the client resets the stream
                auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
                if (ec) break;
            }
        });
        port = server.listen("127.0.0.1", 0).port();
    }
};

asio::awaitable<h3co::connection> connect_to(asio::io_context& io, std::uint16_t port) {
    co_return co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca(),
                                     fixed_windows());
}

TEST_CASE("credit: 400 complete responses dropped unread on one connection", "[credit-ledger]") {
    asio::io_context io;
    credit_server srv(io);
    const auto stats = test::run(io, [&]() -> asio::awaitable<h3co::connection_stats> {
        auto conn = co_await connect_to(io, srv.port);
        for (int i = 0; i < rounds; ++i) {
            INFO("request " << i);
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "GET", .url = test::url(srv.port, "/err", "127.0.0.1")};
            co_await stream.send_header(req);
            const auto resp = co_await stream.read_response();
            CHECK(resp.status == 404);
            co_await srv.response_delivered->wait();  // the whole body is buffered at the client
            // As a user who looks only at the status: the stream, body unread, is dropped.
        }
        // A drop on the connection's executor takes effect at once (dispatch).
        co_return conn.stats();
    }(), 30s);
    check_balanced(stats);
}

TEST_CASE("credit: a handler that answers without reading the request body, 400 times", "[credit-ledger]") {
    asio::io_context io;
    credit_server srv(io);
    const auto stats = test::run(io, [&]() -> asio::awaitable<h3co::connection_stats> {
        auto conn = co_await connect_to(io, srv.port);
        const std::string body(body_size, 'u');
        for (int i = 0; i < rounds; ++i) {
            INFO("request " << i);
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "POST", .url = test::url(srv.port, "/unread", "127.0.0.1")};
            co_await stream.send_header(req);
            co_await stream.write(asio::buffer(body));
            co_await stream.finish();  // the server acknowledged every byte: they are in its buffer
            srv.upload_delivered->fire();
            const auto resp = co_await stream.read_response();
            CHECK(resp.status == 401);
        }
        co_return conn.stats();
    }(), 30s);
    check_balanced(stats);
    // The server's view, from the last handler: nothing but that request's own body (and its DATA
    // frame's header) still held.
    INFO("server: delivered " << srv.last_stats->credit_delivered << ", held " << srv.last_stats->credit_held);
    CHECK(srv.last_stats->credit_held <= body_size + 16);
    CHECK(srv.last_stats->credit_held >= body_size);
}

TEST_CASE("credit: streams reset by the client with response bytes buffered, 400 times", "[credit-ledger]") {
    asio::io_context io;
    credit_server srv(io);
    const auto stats = test::run(io, [&]() -> asio::awaitable<h3co::connection_stats> {
        auto conn = co_await connect_to(io, srv.port);
        std::array<char, 1> one;
        for (int i = 0; i < rounds; ++i) {
            INFO("request " << i);
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "POST", .url = test::url(srv.port, "/open", "127.0.0.1")};
            co_await stream.send_header(req);
            const auto resp = co_await stream.read_response();
            REQUIRE(resp.status == 200);
            co_await stream.read_some(asio::buffer(one));  // the body is arriving: some of it is buffered
            stream.reset();
        }
        co_return conn.stats();
    }(), 30s);
    check_balanced(stats);
}

TEST_CASE("credit: the ledger balances after reads, drops and resets, on both sides", "[credit-ledger]") {
    asio::io_context io;
    credit_server srv(io);
    const auto stats = test::run(io, [&]() -> asio::awaitable<h3co::connection_stats> {
        auto conn = co_await connect_to(io, srv.port);
        for (int i = 0; i < 30; ++i) {
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "GET", .url = test::url(srv.port, "/err", "127.0.0.1")};
            co_await stream.send_header(req);
            co_await stream.read_response();
            co_await srv.response_delivered->wait();
            if (i % 3 == 0) {
                const auto body = co_await test::read_all(stream);
                CHECK(body.size() == body_size);
            }
            if (i % 3 == 1) stream.reset();
        }
        co_return conn.stats();
    }(), 30s);
    check_balanced(stats);
    CHECK(stats.credit_delivered >= 10 * body_size);  // the bodies read whole, at least
}

// h3co::testing::stream_memory_of, which h3co_sim checks after every action: what one stream holds
// unread (client and server side) and buffered to send, exact where the protocol makes it so.
TEST_CASE("credit: stream_memory_of counts what each stream holds unread and buffered to send",
          "[credit-ledger][stream-memory]") {
    asio::io_context io;
    constexpr std::size_t upload = 60'000;         // within the server's fixed 64 KiB stream window
    constexpr std::size_t response = 100 * 1024;   // within the client's default 256 KiB one
    auto uploaded = std::make_shared<event>(io);   // the client's upload and FIN are acknowledged
    auto delivered = std::make_shared<event>(io);  // the response and its FIN are acknowledged
    auto done = std::make_shared<event>(io);
    auto server_seen = std::make_shared<h3co::testing::stream_memory>();
    h3co::server server(test::executor(io), test::server_identity(), fixed_windows());
    server.handle("/hold", [=](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        co_await uploaded->wait();  // the whole upload waits here, unread
        *server_seen = h3co::testing::stream_memory_of(req);
        co_await res.send_header(200);
        const std::string body(response, 'r');
        co_await res.write(asio::buffer(body));
        co_await res.finish();
        delivered->fire();
    });
    server.handle("/stall", [=](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        co_await done->wait();  // reads nothing: the client's writes fill the stream window
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request hold{.method = "POST", .url = test::url(port, "/hold", "127.0.0.1")};
        co_await stream.send_header(hold);
        const std::string body(upload, 'u');
        co_await stream.write(asio::buffer(body));
        co_await stream.finish();
        uploaded->fire();
        co_await delivered->wait();
        const auto head = co_await stream.read_response();
        CHECK(head.status == 200);
        const auto all = h3co::testing::stream_memory_of(conn);
        // Both directions ended: QUIC closed the stream, whose handle holds the response unread.
        CHECK(all.streams + all.closed_holding == 1);
        CHECK(all.held_unread == response);
        CHECK(all.held_over_window == 0);
        std::vector<char> part(40 * 1024);
        auto pb = asio::buffer(part);
        const auto got = co_await asio::async_read(stream, pb, asio::use_awaitable);
        CHECK(got == part.size());
        CHECK(h3co::testing::stream_memory_of(conn).held_unread == response - part.size());
        const auto rest = co_await test::read_all(stream);
        CHECK(rest.size() == response - part.size());

        // At most the server's 64 KiB window can leave; the rest of what write_some took stays.
        auto stalled = co_await conn.open_request_stream();
        const h3co::request stall{.method = "POST", .url = test::url(port, "/stall", "127.0.0.1")};
        co_await stalled.send_header(stall);
        const std::string big(512 * 1024, 'b');
        auto bb = asio::buffer(big);
        const auto taken = co_await stalled.async_write_some(bb, asio::use_awaitable);
        const auto sending = h3co::testing::stream_memory_of(conn);
        INFO("write_some took " << taken << ", the stream buffers " << sending.buffered_to_send);
        CHECK(taken > 64 * 1024);
        CHECK(sending.buffered_to_send >= taken - 64 * 1024);
        CHECK(sending.buffered_to_send <= taken);
        done->fire();
        stalled.reset();
    }(), 30s);
    INFO("server: " << server_seen->streams << " streams, " << server_seen->held_unread << " unread");
    CHECK(server_seen->streams == 1);
    CHECK(server_seen->held_unread == upload);
    CHECK(server_seen->held_over_window == 0);
    CHECK(h3co::testing::stream_memory_of(h3co::connection{}).streams == 0);
}

}  // namespace credit_ledger_test
