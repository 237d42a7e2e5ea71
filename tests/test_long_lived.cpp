// Connections used the way applications use them, for a long time: thousands of requests in each
// direction on one connection, each doing at random (from a fixed seed) what real code does: read
// the whole body, read part of it and drop the stream, drop it unread, reset it, cancel a read,
// answer without reading, throw from a handler. What must hold after every one of them:
//   - every request completes (with a response or a named error): the connection never stalls;
//   - bodies read whole arrive byte-exact;
//   - the receive-credit ledger balances on both sides once the streams are gone;
//   - memory stays flat, and nothing is left alive after the connections close.
#include "support/fixed_windows.hpp"
#include "support/lossy_relay.hpp"
#include "support/memory.hpp"
#include "support/test_support.hpp"

#include <h3co/testing.hpp>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace long_lived_test {

constexpr std::size_t max_body = 48 * 1024;

char pattern_at(std::uint64_t i) { return static_cast<char>((i * 131 + 7) & 0xff); }

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = pattern_at(i);
    return s;
}

bool is_pattern(const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] != pattern_at(i)) return false;
    return true;
}

/// What the client asks the server to do with a request, and what the client itself does.
enum class server_act { read_all, read_part, answer_unread, throw_error, take_over_reset, count };
enum class client_act { read_all, read_part_drop, drop_unread, reset, cancel_read, count };

/// Query parameters of the test's URLs: /down?size=N, /up?act=K&size=N.
std::size_t query_value(std::string_view path, std::string_view key) {
    const auto at = path.find(std::string(key) + "=");
    if (at == std::string_view::npos) return 0;
    return static_cast<std::size_t>(std::strtoull(std::string(path.substr(at + key.size() + 1)).c_str(), nullptr, 10));
}

struct server_seen {
    std::uint64_t handlers = 0;
    std::uint64_t whole_bodies = 0;     ///< bodies read to the end, byte-exact
    std::uint64_t corrupt_bodies = 0;   ///< bodies read to the end that were not what was sent
};

/// /down sends `size` pattern bytes; /up does what `act` says with the body; /stats answers 200
/// and reports its connection's numbers in `last_stats`.
struct long_lived_server {
    h3co::server server;
    std::shared_ptr<server_seen> seen = std::make_shared<server_seen>();
    std::shared_ptr<h3co::connection_stats> last_stats = std::make_shared<h3co::connection_stats>();

    long_lived_server(asio::io_context& io, const h3co::connection_options& options)
        : server(test::executor(io), test::server_identity(), options) {
        server.handle("/down", [seen = seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            ++seen->handlers;
            const std::string body = pattern(query_value(req.path(), "size"));
            co_await res.send_header(200);
            auto [ec, n] = co_await res.write(asio::buffer(body), tuple);  // fails once the client resets
            if (!ec) co_await res.finish(tuple);
        });
        server.handle("/up", [seen = seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            ++seen->handlers;
            const auto act = static_cast<server_act>(query_value(req.path(), "act"));
            const std::size_t size = query_value(req.path(), "size");
            std::string got;
            std::array<char, 4096> buf;
            switch (act) {
            case server_act::read_all:
                for (;;) {
                    auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
                    got.append(buf.data(), n);
                    if (ec == h3co::error::eof) {
                        if (got.size() == size && is_pattern(got))
                            ++seen->whole_bodies;
                        else
                            ++seen->corrupt_bodies;
                    }
                    if (ec) break;
                }
                co_await res.send_header(200);
                break;
            case server_act::read_part:
                co_await req.read_some(asio::buffer(buf), tuple);
                co_await res.send_header(200);
                break;
            case server_act::answer_unread: co_await res.send_header(401); break;
            case server_act::throw_error: throw std::runtime_error("handler fails on purpose");
            case server_act::take_over_reset: {
                co_await res.send_header(200);
                auto stream = res.take_over();
                stream.reset();
                break;
            }
            case server_act::count: break;
            }
        });
        server.handle("/stats", [st = last_stats](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            *st = req.connection_stats();
            co_await res.send_header(200);
        });
    }
};

struct client_tally {
    std::uint64_t completed = 0;     ///< requests whose every step completed (value or named error)
    std::uint64_t whole_bodies = 0;  ///< downloads read to the end, byte-exact
    std::uint64_t corrupt_bodies = 0;
    std::uint64_t unnamed_errors = 0;  ///< errors outside h3co's and Asio's categories
};

void note_error(client_tally& t, std::error_code ec) {
    if (ec && ec.category() != h3co::h3co_category() && ec.category() != h3co::h3_category() &&
        ec.category() != h3co::quic_category() &&
        ec != asio::error::operation_aborted)
        ++t.unnamed_errors;
}

asio::awaitable<void> download(h3co::connection& conn, std::uint16_t port, std::mt19937_64& rng, client_tally& t) {
    const std::size_t size = rng() % (max_body + 1);
    const auto act = static_cast<client_act>(rng() % static_cast<unsigned>(client_act::count));
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "GET", .url = test::url(port, "/down?size=" + std::to_string(size), "127.0.0.1")};
    co_await stream.send_header(req);
    auto [ec, resp] = co_await stream.read_response(tuple);
    note_error(t, ec);
    std::array<char, 4096> buf;
    if (!ec) {
        switch (act) {
        case client_act::read_all: {
            std::string got;
            for (;;) {
                auto [rec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
                got.append(buf.data(), n);
                if (rec == h3co::error::eof) {
                    if (got.size() == size && is_pattern(got))
                        ++t.whole_bodies;
                    else
                        ++t.corrupt_bodies;
                }
                if (rec) {
                    if (rec != h3co::error::eof) note_error(t, rec);
                    break;
                }
            }
            break;
        }
        case client_act::read_part_drop: co_await stream.read_some(asio::buffer(buf), tuple); break;
        case client_act::drop_unread: break;
        case client_act::reset: stream.reset(); break;
        case client_act::cancel_read: {
            // The read races a timer that is already due; the loser is cancelled (terminal).
            auto r = co_await (stream.read_some(asio::buffer(buf), tuple) || h3co::sleep_for(0ms));
            (void)r;
            break;
        }
        case client_act::count: break;
        }
    }
    ++t.completed;
}

asio::awaitable<void> upload(h3co::connection& conn, std::uint16_t port, std::mt19937_64& rng, client_tally& t) {
    const std::size_t size = rng() % (max_body + 1);
    const auto act = rng() % static_cast<unsigned>(server_act::count);
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = test::url(port, "/up?act=" + std::to_string(act) + "&size=" +
                                                                         std::to_string(size), "127.0.0.1")};
    co_await stream.send_header(req);
    const std::string body = pattern(size);
    // The server may stop reading (or reset) before the body is all sent: a named error, then.
    auto [wec, written] = co_await stream.write(asio::buffer(body), tuple);
    note_error(t, wec);
    if (!wec) {
        auto [fec] = co_await stream.finish(tuple);
        note_error(t, fec);
    }
    auto [ec, resp] = co_await stream.read_response(tuple);
    note_error(t, ec);
    ++t.completed;
}

struct run_result {
    client_tally tally;
    h3co::connection_stats client_stats;
    long rss_mid_kib = 0;
    long rss_end_kib = 0;
};

/// `requests` downloads and as many uploads on one connection to `port`, `workers` at a time.
run_result run_requests(asio::io_context& io, std::uint16_t port, const h3co::connection_options& options,
                        int requests, int workers, std::uint64_t seed, std::chrono::seconds limit,
                        std::shared_ptr<h3co::connection_stats> server_stats) {
    return test::run(io, [&]() -> asio::awaitable<run_result> {
        run_result out;
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca(),
                                           options);
        int started = 0, finished = 0;
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer all_done(ex, std::chrono::steady_clock::time_point::max());
        for (int w = 0; w < workers; ++w) {
            asio::co_spawn(ex, [&, w]() -> asio::awaitable<void> {
                std::mt19937_64 rng(seed * 1000 + static_cast<std::uint64_t>(w));
                while (started < requests) {
                    const int i = started++;
                    if (i % 2 == 0)
                        co_await download(conn, port, rng, out.tally);
                    else
                        co_await upload(conn, port, rng, out.tally);
                    if (++finished == requests / 10) out.rss_mid_kib = test::rss_kib();
                }
                if (--workers == 0) all_done.cancel();
            }, asio::detached);
        }
        co_await all_done.async_wait(tuple);
        out.rss_end_kib = test::rss_kib();
        // More requests after all the others: their handler reports the server's ledger. Handlers of
        // streams the client reset may still be finishing; a bounded number of rounds lets them.
        for (int round = 0; round < 200; ++round) {
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "GET", .url = test::url(port, "/stats", "127.0.0.1")};
            co_await stream.send_header(req);
            co_await stream.read_response();
            if (server_stats->credit_held == 0 && server_stats->credit_delivered > 0) break;
            co_await h3co::sleep_for(5ms);
        }
        out.client_stats = conn.stats();
        co_return out;
    }(), limit);
}

/// Every stream is gone: each byte delivered was extended.
void check_ledger(const char* side, const h3co::connection_stats& s) {
    INFO(side << ": delivered " << s.credit_delivered << ", extended " << s.credit_extended << ", held "
              << s.credit_held);
    CHECK(s.credit_delivered > 0);
    CHECK(s.credit_held == 0);
    CHECK(s.credit_delivered == s.credit_extended);
}

using test::fixed_windows;

void check_run(const run_result& r, int requests, const long_lived_server& srv) {
    INFO("completed " << r.tally.completed << " of " << requests);
    CHECK(r.tally.completed == static_cast<std::uint64_t>(requests));
    CHECK(r.tally.corrupt_bodies == 0);
    CHECK(r.tally.unnamed_errors == 0);
    CHECK(r.tally.whole_bodies > 0);
    CHECK(srv.seen->corrupt_bodies == 0);
    CHECK(srv.seen->whole_bodies > 0);
    check_ledger("client", r.client_stats);
    check_ledger("server", *srv.last_stats);
}

TEST_CASE("long-lived: 10,000 requests each way on one connection, each doing something else at random",
          "[long-lived]") {
    const long live_before = h3co::testing::live_stream_states();
    {
        asio::io_context io;
        long_lived_server srv(io, fixed_windows());
        const auto port = srv.server.listen("127.0.0.1", 0).port();
        const int requests = 20'000;
        const auto r = run_requests(io, port, fixed_windows(), requests, 8, 18, 110s, srv.last_stats);
        check_run(r, requests, srv);
        // Memory flat: what the last 90 % of the requests added is noise, not per-request state.
        if (!test::under_asan) CHECK(r.rss_end_kib - r.rss_mid_kib < 16 * 1024);
        srv.server.close();
        test::settle(io);
    }
    CHECK(h3co::testing::live_stream_states() == live_before);
}

TEST_CASE("long-lived: 2,000 requests through a lossy, reordering relay", "[long-lived][faults]") {
    asio::io_context io;
    long_lived_server srv(io, fixed_windows());
    test::lossy_relay relay(io, srv.server.listen("127.0.0.1", 0), 19);
    test::fault_policy faults;
    faults.drop = 0.01;
    faults.reorder = 0.02;
    faults.duplicate = 0.01;
    relay.set(faults);
    const int requests = 2'000;
    const auto r = run_requests(io, relay.port(), fixed_windows(), requests, 8, 19, 110s, srv.last_stats);
    check_run(r, requests, srv);
}

TEST_CASE("long-lived: a server runs 1,000 connections one after another and frees them all", "[long-lived]") {
    const long live_before = h3co::testing::live_stream_states();
    asio::io_context io;
    long_lived_server srv(io, fixed_windows());
    const auto port = srv.server.listen("127.0.0.1", 0).port();
    const int connections = 1'000;
    const int done = test::run(io, [&]() -> asio::awaitable<int> {
        int n = 0;
        std::mt19937_64 rng(20);
        client_tally t;
        for (int i = 0; i < connections; ++i) {
            auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port,
                                               test::trusting_test_ca(), fixed_windows());
            if (i % 2 == 0)
                co_await download(conn, port, rng, t);
            else
                co_await upload(conn, port, rng, t);
            conn.close();
            ++n;
        }
        co_return n;
    }(), 110s);
    CHECK(done == connections);
    // Every connection the server accepted is gone once its clients closed (the last ones after their
    // closing period: a bounded wait for that condition).
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (srv.server.stats().connections > 0 && std::chrono::steady_clock::now() < deadline) {
        io.restart();
        io.run_for(10ms);
    }
    CHECK(srv.server.stats().connections == 0);
    CHECK(srv.server.stats().connections_accepted == static_cast<std::uint64_t>(connections));
    CHECK(h3co::testing::live_stream_states() == live_before);
}

}  // namespace long_lived_test
