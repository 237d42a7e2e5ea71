// A server on two workers (two io_contexts, each run by its own thread), over real loopback UDP:
// many connections with uploads and downloads, some of them through a relay that changes its
// source port in the middle of an upload (a NAT rebinding), with the kernel steering datagrams by
// connection ID and with that turned off (the workers then hand each other's datagrams on).
// Graceful shutdown reaches the connections of every worker. Meant for ThreadSanitizer too
// (scripts/test.sh's TSan pass).
#include "support/peer_inputs.hpp"
#include "support/test_support.hpp"
#include "support/worker_threads.hpp"

#include <h3co/detail/io/reuseport.hpp>

#include <asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

using namespace std::chrono_literals;

namespace workers_test {

using test::stop_first;
using test::worker_threads;

std::uint64_t fnv1a(std::uint64_t h, const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
constexpr std::uint64_t fnv_basis = 0xcbf29ce484222325ull;

/// Which thread ran each connection's handlers (keyed by the client's x-conn field).
struct handler_log {
    std::mutex m;
    std::map<int, std::set<std::thread::id>> threads;
    void saw(const h3co::server_request& req) {
        const auto tag = req.headers().find("x-conn");
        std::lock_guard lock(m);
        threads[tag ? std::stoi(std::string(*tag)) : -1].insert(std::this_thread::get_id());
    }
};

/// /sum: answers with the body's length and hash. /data: x-n pseudo-random bytes seeded by x-seed.
/// /hold: reads the body to its end, then answers 200.
void add_handlers(h3co::server& server, std::shared_ptr<handler_log> log) {
    server.handle("/sum", [log](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        log->saw(req);
        std::array<char, 16 * 1024> buf;
        std::uint64_t bytes = 0, hash = fnv_basis;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            bytes += n;
            hash = fnv1a(hash, buf.data(), n);
            if (ec) break;
        }
        const h3co::fields answer{{"x-bytes", std::to_string(bytes)}, {"x-hash", std::to_string(hash)}};
        co_await res.send_header(200, answer, tuple);
    });
    server.handle("/data", [log](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        log->saw(req);
        const auto n = std::stoul(std::string(req.headers().find("x-n").value_or("0")));
        const int seed = std::stoi(std::string(req.headers().find("x-seed").value_or("0")));
        const std::string body = test::pseudo_random_bytes(n, seed);
        co_await res.send_header(200, tuple);
        co_await res.write(asio::buffer(body), tuple);
    });
    server.handle("/hold", [log](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        log->saw(req);
        std::array<char, 4096> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            if (ec) break;
        }
        co_await res.send_header(200, tuple);
    });
}

/// A relay for one client that changes the source port it forwards from (a NAT rebinding) once
/// it has forwarded `rebind_after` datagrams to the server. Runs on the client's io_context.
class rebinding_relay : public std::enable_shared_from_this<rebinding_relay> {
public:
    using udp = asio::ip::udp;

    rebinding_relay(asio::io_context& io, udp::endpoint server, std::uint64_t rebind_after)
        : io_(io), client_side_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          server_(server), rebind_after_(rebind_after) {}

    void start() {
        open_server_side();
        receive_from_client();
    }
    void close() {
        closed_ = true;
        std::error_code ignored;
        client_side_.close(ignored);
        if (server_side_) server_side_->close(ignored);
    }
    std::uint16_t port() const { return client_side_.local_endpoint().port(); }
    int rebinds() const { return rebinds_; }
    std::uint64_t after_rebind() const { return after_rebind_; }  ///< datagrams forwarded either way since

private:
    void open_server_side() {
        server_side_ = std::make_shared<udp::socket>(io_, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        receive_from_server(server_side_);
    }

    void receive_from_client() {
        client_side_.async_receive_from(asio::buffer(up_), client_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (self->closed_ || ec == asio::error::operation_aborted) return;
            if (!ec) {
                if (++self->forwarded_up_ == self->rebind_after_) {
                    std::error_code ignored;
                    self->server_side_->close(ignored);  // the old port is gone: its late replies are lost
                    self->open_server_side();
                    ++self->rebinds_;
                }
                if (self->rebinds_ > 0) ++self->after_rebind_;
                std::error_code ignored;
                self->server_side_->send_to(asio::buffer(self->up_.data(), n), self->server_, 0, ignored);
            }
            self->receive_from_client();
        });
    }

    void receive_from_server(std::shared_ptr<udp::socket> socket) {
        socket->async_receive_from(asio::buffer(down_), from_server_,
                                   [self = shared_from_this(), socket](std::error_code ec, std::size_t n) {
                                       if (self->closed_ || socket != self->server_side_ ||
                                           ec == asio::error::operation_aborted)
                                           return;
                                       if (!ec) {
                                           if (self->rebinds_ > 0) ++self->after_rebind_;
                                           std::error_code ignored;
                                           self->client_side_.send_to(asio::buffer(self->down_.data(), n), self->client_, 0,
                                                                      ignored);
                                       }
                                       self->receive_from_server(socket);
                                   });
    }

    asio::io_context& io_;
    udp::socket client_side_;
    std::shared_ptr<udp::socket> server_side_;
    udp::endpoint server_, client_, from_server_;
    std::array<std::uint8_t, 65536> up_{}, down_{};
    std::uint64_t rebind_after_;
    std::uint64_t forwarded_up_ = 0;
    std::uint64_t after_rebind_ = 0;
    int rebinds_ = 0;
    bool closed_ = false;
};

struct exchange_result {
    std::string failure;  ///< empty: both bodies were byte-exact
};

/// On one connection: POST /sum with `up` bytes, then GET /data for `down` bytes; checks both.
asio::awaitable<exchange_result> exchange(h3co::connection& conn, int tag, std::size_t up, std::size_t down) {
    exchange_result r;
    const std::string body = test::pseudo_random_bytes(up, tag);
    const h3co::fields tag_field{{"x-conn", std::to_string(tag)}};
    {
        auto [oec, stream] = co_await conn.open_request_stream(tuple);
        if (oec) co_return exchange_result{"open: " + oec.message()};
        const h3co::request req{.method = "POST", .url = "/sum", .headers = tag_field};
        auto [hec] = co_await stream.send_header(req, tuple);
        if (hec) co_return exchange_result{"send_header: " + hec.message()};
        for (std::size_t off = 0; off < body.size(); off += 16 * 1024) {
            auto [wec, n] = co_await stream.write(asio::buffer(body.data() + off, std::min<std::size_t>(16 * 1024, body.size() - off)), tuple);
            if (wec) co_return exchange_result{"write: " + wec.message()};
        }
        auto [fec] = co_await stream.finish(tuple);
        if (fec) co_return exchange_result{"finish: " + fec.message()};
        auto [rec, head] = co_await stream.read_response(tuple);
        if (rec) co_return exchange_result{"read_response: " + rec.message()};
        if (head.headers.find("x-bytes") != std::to_string(up) ||
            head.headers.find("x-hash") != std::to_string(fnv1a(fnv_basis, body.data(), body.size())))
            co_return exchange_result{"upload not byte-exact"};
    }
    {
        auto [oec, stream] = co_await conn.open_request_stream(tuple);
        if (oec) co_return exchange_result{"open 2: " + oec.message()};
        h3co::fields fields = tag_field;
        fields.push_back({"x-n", std::to_string(down)});
        fields.push_back({"x-seed", std::to_string(tag + 1000)});
        const h3co::request req{.method = "GET", .url = "/data", .headers = fields};
        auto [hec] = co_await stream.send_header(req, tuple);
        if (hec) co_return exchange_result{"send_header 2: " + hec.message()};
        auto [fec] = co_await stream.finish(tuple);
        if (fec) co_return exchange_result{"finish 2: " + fec.message()};
        auto [rec, head] = co_await stream.read_response(tuple);
        if (rec || head.status != 200) co_return exchange_result{"read_response 2"};
        std::string got;
        std::array<char, 16 * 1024> buf;
        for (;;) {
            auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
            got.append(buf.data(), n);
            if (ec == h3co::error::eof) break;
            if (ec) co_return exchange_result{"download: " + ec.message()};
        }
        if (got != test::pseudo_random_bytes(down, tag + 1000)) co_return exchange_result{"download not byte-exact"};
    }
    co_return r;
}

struct run_outcome {
    std::vector<std::string> failures;
    std::vector<std::shared_ptr<rebinding_relay>> relays;
};

/// `direct` connections straight to `port` and `relayed` ones through a rebinding relay, all at
/// once, each with an upload and a download.
run_outcome run_clients(std::uint16_t port, int direct, int relayed) {
    asio::io_context io;
    run_outcome out;
    const asio::ip::udp::endpoint server(asio::ip::make_address("127.0.0.1"), port);
    int pending = direct + relayed;
    auto one = [&](int tag, std::uint16_t to, std::size_t up, std::size_t down) -> asio::awaitable<void> {
        auto [cec, conn] = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), to,
                                                  test::trusting_test_ca(), tuple);
        if (cec) {
            out.failures.push_back("connect " + std::to_string(tag) + ": " + cec.message());
        } else {
            auto r = co_await exchange(conn, tag, up, down);
            if (!r.failure.empty()) out.failures.push_back(std::to_string(tag) + ": " + r.failure);
            conn.close();
        }
        --pending;
    };
    for (int i = 0; i < relayed; ++i) {
        auto relay = std::make_shared<rebinding_relay>(io, server, 60);  // mid-upload of 1 MiB
        relay->start();
        out.relays.push_back(relay);
        asio::co_spawn(io, one(i, relay->port(), 1 << 20, 256 * 1024), asio::detached);
    }
    for (int i = 0; i < direct; ++i)
        asio::co_spawn(io, one(relayed + i, port, 24 * 1024 + 97 * i, 48 * 1024), asio::detached);
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (pending > 0 && std::chrono::steady_clock::now() < deadline) io.run_for(50ms);
    REQUIRE(pending == 0);  // a hang is a failure
    for (auto& r : out.relays) r->close();
    io.run_for(20ms);  // lets the relays' and connections' last handlers end
    return out;
}

/// Every connection's handlers ran on one worker thread; the connections used both workers.
void check_handler_threads(handler_log& log, const worker_threads& w, int connections) {
    std::lock_guard lock(log.m);
    CHECK(log.threads.size() == static_cast<std::size_t>(connections));
    std::set<std::thread::id> used;
    for (const auto& [tag, threads] : log.threads) {
        INFO("connection " << tag);
        CHECK(threads.size() == 1);
        for (const auto& id : threads) {
            CHECK(std::find(w.ids.begin(), w.ids.end(), id) != w.ids.end());
            used.insert(id);
        }
    }
    CHECK(used.size() == w.ids.size());
}

h3co::server_options roomy_limits(bool kernel_steering) {
    h3co::server_options limits;
    limits.kernel_steering = kernel_steering;
    limits.max_connections_per_address = 1000;  // every client is 127.0.0.1
    limits.max_running_handlers_per_address = 1000;
    // 200 handshakes at once pass address_validation::when_busy's threshold (100) on a slow run
    // (TSan): a client whose Initial was retransmitted before the Retry reached it then starts
    // a second server connection, abandoned at once, and connections_accepted counts both.
    // These tests are about steering, not address validation.
    limits.retry_threshold = 1000;
    return limits;
}

TEST_CASE("workers: 2 workers serve 200 connections byte-exact with 16 clients rebinding, kernel steering by connection ID", "[workers]") {
    worker_threads w(2);
    auto log = std::make_shared<handler_log>();
    h3co::server server(w.executors(), test::server_identity(), {}, roomy_limits(true));
    add_handlers(server, log);
    const auto port = server.listen("127.0.0.1", 0).port();
    REQUIRE(server.worker_count() == 2);
    stop_first guard{w};
    w.start();

    const auto outcome = run_clients(port, 184, 16);
    for (const auto& f : outcome.failures) FAIL_CHECK(f);
    for (const auto& r : outcome.relays) {
        CHECK(r->rebinds() == 1);
        CHECK(r->after_rebind() > 100);  // the transfer went on over the new port
    }
    w.stop();

    check_handler_threads(*log, w, 200);
    const auto stats = server.stats();
    REQUIRE(stats.workers.size() == 2);
    std::uint64_t accepted = 0;
    for (const auto& worker : stats.workers) {
        CHECK(worker.connections_accepted > 0);
        CHECK(worker.datagrams > 0);
        accepted += worker.connections_accepted;
    }
    INFO("Retry packets sent: " << server.stats().retries_sent);
    CHECK(accepted == 200);
    CHECK(stats.connections_accepted == 200);
    if (stats.kernel_steering) {
        // The kernel put every datagram on its owner's socket, rebound clients' included.
        for (const auto& worker : stats.workers) {
            CHECK(worker.handoffs_sent == 0);
            CHECK(worker.handoffs_received == 0);
        }
    } else {
        WARN("the kernel refused the reuseport BPF program: only the fallback was tested here");
    }
}

TEST_CASE("workers: with kernel steering off the workers hand each other's datagrams on, byte-exact", "[workers]") {
    worker_threads w(2);
    auto log = std::make_shared<handler_log>();
    h3co::server server(w.executors(), test::server_identity(), {}, roomy_limits(false));
    add_handlers(server, log);
    const auto port = server.listen("127.0.0.1", 0).port();
    stop_first guard{w};
    w.start();

    const auto outcome = run_clients(port, 128, 16);
    for (const auto& f : outcome.failures) FAIL_CHECK(f);
    for (const auto& r : outcome.relays) {
        CHECK(r->rebinds() == 1);
        CHECK(r->after_rebind() > 100);  // the transfer went on over the new port
    }
    test::settle_handoffs(server);  // queued hand-offs are counted before the workers stop
    w.stop();

    check_handler_threads(*log, w, 144);
    const auto stats = server.stats();
    CHECK_FALSE(stats.kernel_steering);
    REQUIRE(stats.workers.size() == 2);
    std::uint64_t sent = 0, received = 0;
    for (const auto& worker : stats.workers) {
        CHECK(worker.connections_accepted > 0);
        sent += worker.handoffs_sent;
        received += worker.handoffs_received;
    }
    // The kernel's hash of the addresses picks a worker regardless of connection IDs: about half
    // of the first Initials, and the packets of clients whose new port hashes elsewhere, reach
    // the wrong worker (2^-144 that none does).
    CHECK(sent > 0);
    CHECK(sent == received);
    CHECK(stats.connections_accepted == 144);
}

TEST_CASE("workers: graceful shutdown sends GOAWAY on every worker and lets requests finish", "[workers]") {
    worker_threads w(2);
    auto log = std::make_shared<handler_log>();
    h3co::server server(w.executors(), test::server_identity(), {}, roomy_limits(true));
    add_handlers(server, log);
    const auto port = server.listen("127.0.0.1", 0).port();
    stop_first guard{w};
    w.start();

    constexpr int n = 24;
    asio::io_context io;
    std::vector<h3co::connection> conns;
    std::vector<h3co::request_stream> streams;
    test::run(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < n; ++i) {
            auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "POST", .url = "/hold", .headers = {{"x-conn", std::to_string(i)}}};
            co_await stream.send_header(req);
            const std::string part = test::pseudo_random_bytes(1000, i);
            co_await stream.write(asio::buffer(part));
            conns.push_back(std::move(conn));
            streams.push_back(std::move(stream));
        }
        // Every handler runs: each request reached its worker.
        for (int tries = 0; tries < 5000; ++tries) {
            {
                std::lock_guard lock(log->m);
                if (log->threads.size() == static_cast<std::size_t>(n)) break;
            }
            co_await h3co::sleep_for(1ms);
        }
    }());
    const auto before = server.per_worker_stats();
    REQUIRE(before.size() == 2);
    CHECK(before[0].connections + before[1].connections == static_cast<std::size_t>(n));
    CHECK(before[0].connections > 0);  // 2^-23 that all landed on one worker
    CHECK(before[1].connections > 0);

    server.shutdown(10s);  // from this thread: it dispatches to every worker
    test::run(io, [&]() -> asio::awaitable<void> {
        for (auto& c : conns) {
            for (int tries = 0; tries < 5000 && !c.going_away(); ++tries) co_await h3co::sleep_for(1ms);
            CHECK(c.going_away());
        }
        for (auto& s : streams) {  // requests in flight still finish
            auto [fec] = co_await s.finish(tuple);
            CHECK_FALSE(fec);
            auto [rec, head] = co_await s.read_response(tuple);
            CHECK_FALSE(rec);
            CHECK(head.status == 200);
        }
        for (auto& c : conns) c.close();
        // Then every worker's connections end, and each stops listening.
        for (int tries = 0; tries < 5000; ++tries) {
            const auto now = server.per_worker_stats();
            if (now[0].connections == 0 && now[1].connections == 0) break;
            co_await h3co::sleep_for(1ms);
        }
    }());
    const auto after = server.per_worker_stats();
    CHECK(after[0].connections == 0);
    CHECK(after[1].connections == 0);
    w.stop();
    check_handler_threads(*log, w, n);
}

TEST_CASE("workers: a connection ID names its worker at byte 1, modulo the workers", "[workers]") {
    std::array<std::uint8_t, 18> cid{};
    cid[h3co::detail::worker_id_offset] = 1;
    CHECK(h3co::detail::owner_worker(cid.data(), cid.size(), 2) == 1);
    CHECK(h3co::detail::owner_worker(cid.data(), cid.size(), 4) == 1);
    cid[1] = 7;
    CHECK(h3co::detail::owner_worker(cid.data(), cid.size(), 4) == 3);  // a client-chosen ID: by its byte
    CHECK(h3co::detail::owner_worker(cid.data(), 1, 4) == 0);           // too short to name one
}

}  // namespace workers_test
