// Interim (1xx) responses are bounded on the client: past connection_options::max_interim_responses
// held unread, the stream fails with error::excessive_load and is reset with H3_EXCESSIVE_LOAD;
// within it, they stay for read_interim as before.
#include "support/memory.hpp"
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <memory>
#include <string>

namespace interim_bound_test {

struct sent_t {
    int interim = 0;          ///< interim responses the handler sent before one failed
    std::error_code stopped;  ///< why it stopped sending them
    bool done = false;
};

/// A server whose handler on /many sends up to `count` 103 responses (about a KiB of fields each),
/// then a 200; it paces them (a short pause every 50) so that a reset from the client stops it
/// before it has queued them all. /ok answers 200.
struct fixture {
    asio::io_context io;
    h3co::server server{test::executor(io), test::server_identity()};
    std::shared_ptr<sent_t> sent = std::make_shared<sent_t>();
    std::uint16_t port = 0;

    explicit fixture(int count) {
        server.handle("/many", [sent = sent, count](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
            const h3co::fields hints{{"link", "</style-" + std::string(1000, 's') + ".css>; rel=preload; as=style"}};
            for (; sent->interim < count; ++sent->interim) {
                if (sent->interim % 50 == 49) co_await h3co::sleep_for(std::chrono::milliseconds(1));
                auto [ec] = co_await res.send_interim(103, hints, tuple);
                if (ec) {
                    sent->stopped = ec;
                    break;
                }
            }
            if (!sent->stopped) co_await res.send_header(200, {}, tuple);
            sent->done = true;
        });
        server.handle("/ok", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
            co_await res.send_header(200);
        });
        port = server.listen("127.0.0.1", 0).port();
    }

    asio::awaitable<h3co::connection> connect(h3co::connection_options options) {
        co_return co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca(),
                                         options);
    }
};

/// A GET of /many that reads only the final response: its result.
asio::awaitable<std::pair<std::error_code, int>> get_many(h3co::connection& conn) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request get{.method = "GET", .url = "/many"};
    co_await stream.send_header(get);
    co_await stream.finish();
    auto [ec, head] = co_await stream.read_response(tuple);
    co_return std::pair{ec, head.status};
}

/// A GET of /ok: its status.
asio::awaitable<int> get_ok(h3co::connection& conn) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request get{.method = "GET", .url = "/ok"};
    co_await stream.send_header(get);
    co_await stream.finish();
    const auto head = co_await stream.read_response();
    co_return head.status;
}

TEST_CASE("interim-bound: 20000 unread 1xx responses fail the stream with excessive_load, in bounded memory",
          "[interim-bound]") {
    fixture f(20000);
    test::reset_peak_rss();
    const long before = test::peak_rss_kib();
    test::run(f.io, [&]() -> asio::awaitable<void> {
        const h3co::connection_options defaults;
        auto conn = co_await f.connect(defaults);
        const auto [ec, status] = co_await get_many(conn);
        CHECK(ec == h3co::error::excessive_load);
        CHECK(status == 0);
        for (int i = 0; i < 400 && !f.sent->done; ++i) co_await h3co::sleep_for(std::chrono::milliseconds(5));
        REQUIRE(f.sent->done);
        CHECK(f.sent->stopped);  // the client's reset reached the handler...
        CHECK(f.sent->interim < 20000);  // ...before it sent them all
        const int ok = co_await get_ok(conn);
        CHECK(ok == 200);  // the connection is unaffected
    }());
    const long grown = test::peak_rss_kib() - before;
    INFO("peak RSS grew by " << grown << " KiB");
    if (!test::under_asan) CHECK(grown < 8 * 1024);  // unbounded, 20000 of them took 41 MiB
    test::settle(f.io);
}

TEST_CASE("interim-bound: the bound is max_interim_responses unread, and reading them makes room",
          "[interim-bound]") {
    h3co::connection_options options;
    options.max_interim_responses = 4;
    SECTION("four unread, then the final response") {
        fixture f(4);
        test::run(f.io, [&]() -> asio::awaitable<void> {
            auto conn = co_await f.connect(options);
            auto stream = co_await conn.open_request_stream();
            const h3co::request get{.method = "GET", .url = "/many"};
            co_await stream.send_header(get);
            co_await stream.finish();
            const auto head = co_await stream.read_response();
            CHECK(head.status == 200);
            for (int i = 0; i < 4; ++i) {  // all four kept for read_interim
                auto [iec, interim] = co_await stream.read_interim(tuple);
                CHECK_FALSE(iec);
                CHECK(interim.status == 103);
            }
            auto [iec, none] = co_await stream.read_interim(tuple);
            CHECK(iec == h3co::error::no_interim_response);
        }());
    }
    SECTION("a fifth unread fails the stream, and the server sees H3_EXCESSIVE_LOAD") {
        fixture f(1000);
        test::run(f.io, [&]() -> asio::awaitable<void> {
            auto conn = co_await f.connect(options);
            const auto [ec, status] = co_await get_many(conn);
            CHECK(ec == h3co::error::excessive_load);
            const int ok = co_await get_ok(conn);
            CHECK(ok == 200);
        }());
    }
}

}  // namespace interim_bound_test
