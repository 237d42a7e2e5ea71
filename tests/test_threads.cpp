// h3co on an io_context run by two threads: the server and the client each on a strand (as
// docs/design.md "Threading" asks), uploads in both, and cancellations, resets and closes sent from
// other threads while they run. Meant for ThreadSanitizer (scripts/test.sh's TSan pass), where any
// data race fails the run; without it, it still checks that every operation completes and that
// every stream state is freed.
#include "support/peer_inputs.hpp"
#include "support/test_support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;

namespace threads_test {

/// An io_context run by `n` threads until stop().
struct io_threads {
    asio::io_context io{2};
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::vector<std::thread> threads;

    void start(int n) {
        for (int i = 0; i < n; ++i) threads.emplace_back([this] { io.run(); });
    }
    void stop() {
        work.reset();
        io.stop();
        for (auto& t : threads) t.join();
        threads.clear();
    }
    ~io_threads() { stop(); }
};

/// Declared after the objects that run on the threads: stops the threads before those go, even
/// when a REQUIRE throws.
struct stop_threads_first {
    io_threads& t;
    ~stop_threads_first() { t.stop(); }
};

/// Waits (bounded) for `f` and returns its value; a timeout fails the test.
template <class T>
T wait(std::future<T>& f, std::chrono::seconds limit = 60s) {
    REQUIRE(f.wait_for(limit) == std::future_status::ready);
    return f.get();
}

/// Polls `done` until it holds or `limit` passes (the threads do the work meanwhile).
bool eventually(const std::function<bool()>& done, std::chrono::seconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::yield();
    }
    return true;
}

std::uint64_t fnv1a(std::uint64_t h, const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
constexpr std::uint64_t fnv_basis = 0xcbf29ce484222325ull;

/// What the server's handlers saw, read from other threads: guarded.
struct server_log {
    std::mutex m;
    std::vector<std::error_code> ends;  ///< how each body read ended
    std::atomic<int> handlers_started{0};
    std::atomic<int> handlers_done{0};
    void end(std::error_code ec) {
        std::lock_guard lock(m);
        ends.push_back(ec);
    }
    std::size_t count(std::error_code ec) {
        std::lock_guard lock(m);
        return static_cast<std::size_t>(std::count(ends.begin(), ends.end(), ec));
    }
    std::string describe() {
        std::lock_guard lock(m);
        std::string out;
        for (const auto& ec : ends) out += ec.category().name() + std::string(":") + std::to_string(ec.value()) + " ";
        return out;
    }
};

/// /sum: reads the body, answers 200 with its length and hash. /hang: reads the body to its end
/// and never answers.
void add_handlers(h3co::server& server, std::shared_ptr<server_log> log) {
    server.handle("/sum", [log](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        ++log->handlers_started;
        std::array<char, 16 * 1024> buf;
        std::uint64_t bytes = 0, hash = fnv_basis;
        std::error_code end;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            bytes += n;
            hash = fnv1a(hash, buf.data(), n);
            if (ec) {
                end = ec;
                break;
            }
        }
        log->end(end);
        // Named, not a braced list in the co_await: g++ 12 cannot keep an initializer_list there.
        const h3co::fields answer{{"x-bytes", std::to_string(bytes)}, {"x-hash", std::to_string(hash)}};
        if (end == h3co::error::eof) co_await res.send_header(200, answer, tuple);
        ++log->handlers_done;
    });
    server.handle("/hang", [log](h3co::server_request& req, h3co::response&) -> asio::awaitable<void> {
        ++log->handlers_started;
        std::array<char, 4096> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            if (ec) {
                log->end(ec);
                break;
            }
        }
        ++log->handlers_done;
    });
}

struct upload_result {
    std::error_code ec;  ///< the first failure, if any
    int status = 0;
    bool intact = false;  ///< the server's x-bytes and x-hash match what was sent
};

/// POST /sum with `body` in writes of `chunk` bytes; reports how it went (never throws).
asio::awaitable<upload_result> upload(h3co::connection& conn, std::string body, std::size_t chunk) {
    upload_result r;
    auto [open_ec, stream] = co_await conn.open_request_stream(tuple);
    if ((r.ec = open_ec)) co_return r;
    const h3co::request req{.method = "POST", .url = "/sum"};
    auto [hec] = co_await stream.send_header(req, tuple);
    if ((r.ec = hec)) co_return r;
    for (std::size_t off = 0; off < body.size(); off += chunk) {
        auto [wec, n] = co_await stream.write(asio::buffer(body.data() + off, std::min(chunk, body.size() - off)), tuple);
        if ((r.ec = wec)) co_return r;
    }
    auto [fec] = co_await stream.finish(tuple);
    if ((r.ec = fec)) co_return r;
    auto [rec, head] = co_await stream.read_response(tuple);
    if ((r.ec = rec)) co_return r;
    r.status = head.status;
    r.intact = head.headers.find("x-bytes") == std::to_string(body.size()) &&
               head.headers.find("x-hash") == std::to_string(fnv1a(fnv_basis, body.data(), body.size()));
    co_return r;
}


TEST_CASE("threads: uploads with client and server on their own strands of a 2-thread io_context", "[threads]") {
    io_threads t;
    const auto server_strand = asio::make_strand(t.io);
    const auto client_strand = asio::make_strand(t.io);
    const auto pipe_strand = asio::make_strand(t.io);
    auto log = std::make_shared<server_log>();
    h3co::server server(server_strand, test::server_identity());
    add_handlers(server, log);
    const auto port = server.listen("127.0.0.1", 0).port();
    h3co::client client(client_strand, test::trusting_test_ca());
    const long live_before = h3co::testing::live_stream_states();
    stop_threads_first guard{t};
    t.start(2);

    // Six uploads on one connection, at once, each in its own coroutine on the client's strand.
    auto uploads = asio::co_spawn(client_strand, [&]() -> asio::awaitable<std::vector<upload_result>> {
        auto conn = co_await client.connection_for(test::url(port, "/", "127.0.0.1"));
        std::vector<std::future<upload_result>> each;
        for (int i = 0; i < 6; ++i)
            each.push_back(asio::co_spawn(client_strand, upload(conn, test::pseudo_random_bytes(192 * 1024 + 7 * i, i), 1000 + 4093 * i),
                                          asio::use_future));
        std::vector<upload_result> out;
        for (auto& f : each) {
            while (f.wait_for(0s) != std::future_status::ready) co_await h3co::sleep_for(1ms);
            out.push_back(f.get());
        }
        co_return out;
    }, asio::use_future);

    // Two pipe-fed requests whose producers run on a third strand.
    std::vector<std::future<int>> piped;
    for (int i = 0; i < 2; ++i) {
        auto [reader, writer] = h3co::make_pipe(asio::any_io_executor(pipe_strand), 16 * 1024);
        const std::string body = test::pseudo_random_bytes(300 * 1024, 100 + i);
        asio::co_spawn(pipe_strand, [w = std::move(writer), body]() mutable -> asio::awaitable<void> {
            for (std::size_t off = 0; off < body.size(); off += 5000)
                co_await w.write(asio::buffer(body.data() + off, std::min<std::size_t>(5000, body.size() - off)));
            w.close();
        }, asio::detached);
        const h3co::request req{.method = "POST", .url = test::url(port, "/sum", "127.0.0.1")};
        piped.push_back(asio::co_spawn(client_strand, [&client, req, r = std::move(reader), body]() mutable -> asio::awaitable<int> {
            auto response = co_await client.request(req, std::move(r));
            const bool intact = response.headers.find("x-bytes") == std::to_string(body.size()) &&
                                response.headers.find("x-hash") == std::to_string(fnv1a(fnv_basis, body.data(), body.size()));
            co_return intact ? response.status : -response.status;
        }, asio::use_future));
    }

    for (const auto& r : wait(uploads)) {
        CHECK(r.ec == std::error_code());
        CHECK(r.status == 200);
        CHECK(r.intact);
    }
    for (auto& f : piped) CHECK(wait(f) == 200);
    CHECK(log->count(h3co::end_of_stream()) == 8);

    // Getters are for the connection's executor: ask there.
    struct connection_state {
        bool open = false;
        std::error_code close_error;
        std::uint64_t bytes_sent = 0;
    };
    auto state = asio::co_spawn(client_strand, [&]() -> asio::awaitable<connection_state> {
        auto conn = co_await client.connection_for(test::url(port, "/", "127.0.0.1"));
        co_return connection_state{conn.is_open(), conn.close_error(), conn.stats().bytes_sent};
    }, asio::use_future);
    const auto seen = wait(state);
    CHECK(seen.open);
    CHECK(seen.close_error == std::error_code());
    // The uploads and the piped requests started at once, so the pool may have connected twice;
    // whichever connection it kept carried at least one 300 KiB body.
    CHECK(seen.bytes_sent > 300 * 1024);
    client.close();  // from this thread: it dispatches
    CHECK(eventually([&] { return h3co::testing::live_stream_states() == live_before; }));
    auto count = asio::co_spawn(server_strand, [&]() -> asio::awaitable<std::size_t> { co_return server.connection_count(); },
                                asio::use_future);
    (void)wait(count);
}

TEST_CASE("threads: cancellations, resets and closes from other threads race uploads", "[threads]") {
    io_threads t;
    const auto server_strand = asio::make_strand(t.io);
    const auto client_strand = asio::make_strand(t.io);
    auto log = std::make_shared<server_log>();
    h3co::server server(server_strand, test::server_identity());
    add_handlers(server, log);
    const auto port = server.listen("127.0.0.1", 0).port();
    h3co::client client(client_strand, test::trusting_test_ca());
    const long live_before = h3co::testing::live_stream_states();
    stop_threads_first guard{t};
    t.start(2);
    const auto url = test::url(port, "/", "127.0.0.1");

    SECTION("a cancellation signal, emitted from another thread onto the connection's strand") {
        asio::cancellation_signal signal;
        std::atomic<bool> waiting{false};
        auto hang = asio::co_spawn(client_strand, [&]() -> asio::awaitable<std::error_code> {
            auto conn = co_await client.connection_for(url);
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "POST", .url = "/hang"};  // named: g++ 12 and co_await temporaries
            co_await stream.send_header(req);
            const std::string body = test::pseudo_random_bytes(50'000, 1);
            co_await stream.write(asio::buffer(body));  // no finish: /hang keeps reading
            waiting = true;
            auto [ec, head] = co_await stream.read_response(asio::bind_cancellation_slot(signal.slot(), tuple));
            co_return ec;
        }, asio::use_future);
        // Once the request is at the server (a stream reset before its HEADERS leave never reaches a
        // handler at all).
        REQUIRE(eventually([&] { return waiting.load() && log->handlers_started == 1; }));
        std::thread canceller([&] {
            asio::post(client_strand, [&] { signal.emit(asio::cancellation_type::terminal); });
        });
        canceller.join();
        CHECK(wait(hang) == asio::error::operation_aborted);
        INFO(log->describe());
        CHECK(eventually([&] { return log->count(h3co::h3_error::request_cancelled) == 1; }));
    }

    SECTION("a stream reset from another thread while its body is written") {
        std::promise<h3co::http_stream> shared;
        auto writer = asio::co_spawn(client_strand, [&]() -> asio::awaitable<std::error_code> {
            auto conn = co_await client.connection_for(url);
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "POST", .url = "/sum"};
            co_await stream.send_header(req);
            shared.set_value(stream.share());
            const std::string chunk = test::pseudo_random_bytes(8192, 2);
            for (int i = 0; i < 100'000; ++i) {  // ~800 MB at most: the reset comes long before
                auto [ec, n] = co_await stream.write(asio::buffer(chunk), tuple);
                if (ec) co_return ec;
            }
            co_return std::error_code();
        }, asio::use_future);
        auto handle = shared.get_future().get();
        REQUIRE(eventually([&] { return log->handlers_started == 1; }));
        std::thread resetter([h = std::move(handle)]() mutable { h.reset(h3co::h3_error::request_cancelled); });
        resetter.join();
        CHECK(wait(writer) == asio::error::operation_aborted);
        INFO(log->describe());
        CHECK(eventually([&] { return log->count(h3co::h3_error::request_cancelled) == 1; }));
    }

    SECTION("the connection closed from another thread under six uploads") {
        std::promise<h3co::connection> second_handle;
        auto uploads = asio::co_spawn(client_strand, [&]() -> asio::awaitable<std::vector<upload_result>> {
            auto conn = co_await client.connection_for(url);
            second_handle.set_value(co_await client.connection_for(url));  // the same pooled connection
            std::vector<std::future<upload_result>> each;
            for (int i = 0; i < 6; ++i)
                each.push_back(asio::co_spawn(client_strand, upload(conn, test::pseudo_random_bytes(4 << 20, i), 16 * 1024),
                                              asio::use_future));
            std::vector<upload_result> out;
            for (auto& f : each) {
                while (f.wait_for(0s) != std::future_status::ready) co_await h3co::sleep_for(1ms);
                out.push_back(f.get());
            }
            co_return out;
        }, asio::use_future);
        auto handle = second_handle.get_future().get();
        std::thread closer([h = std::move(handle)]() mutable { h.close(); });
        closer.join();
        int closed = 0;
        for (const auto& r : wait(uploads)) {
            // Each either made it before the close or failed with it; none hangs.
            if (r.ec) {
                INFO(r.ec.message());
                CHECK(r.ec == h3co::error::connection_closed);
                ++closed;
            } else {
                CHECK(r.intact);
            }
        }
        CHECK(closed >= 1);  // 24 MiB cannot all have gone before the close
    }

    SECTION("the server closed from another thread under six uploads") {
        std::atomic<int> started{0};
        auto uploads = asio::co_spawn(client_strand, [&]() -> asio::awaitable<std::vector<upload_result>> {
            auto conn = co_await client.connection_for(url);
            std::vector<std::future<upload_result>> each;
            for (int i = 0; i < 6; ++i)
                each.push_back(asio::co_spawn(client_strand, upload(conn, test::pseudo_random_bytes(4 << 20, i), 16 * 1024),
                                              asio::use_future));
            started = 6;
            std::vector<upload_result> out;
            for (auto& f : each) {
                while (f.wait_for(0s) != std::future_status::ready) co_await h3co::sleep_for(1ms);
                out.push_back(f.get());
            }
            co_return out;
        }, asio::use_future);
        REQUIRE(eventually([&] { return started.load() == 6; }));
        std::thread closer([&] { server.close(); });  // close() dispatches onto the server's strand
        closer.join();
        int closed = 0;
        for (const auto& r : wait(uploads)) {
            if (r.ec) ++closed;
            else CHECK(r.intact);
        }
        CHECK(closed >= 1);
        auto count = asio::co_spawn(server_strand, [&]() -> asio::awaitable<std::size_t> { co_return server.connection_count(); },
                                    asio::use_future);
        CHECK(wait(count) == 0);
    }

    client.close();
    CHECK(eventually([&] { return h3co::testing::live_stream_states() == live_before; }));
}

}  // namespace threads_test
