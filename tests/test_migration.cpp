// Connection migration (RFC 9000 §9) over real loopback UDP: a server whose client comes from a new
// port, then a new address, mid-upload (NAT rebinding through a relay, and gtlsclient's own
// --nat-rebinding / --change-local-addr) validates the new path and the upload arrives byte-exact;
// and an h3co client that moves on purpose (connection.migrate()) to a new port or address.
#include "support/child_process.hpp"
#include "support/lossy_relay.hpp"
#include "support/peer_inputs.hpp"
#include "support/test_support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace migration_test {

/// The upload size of the mid-upload migration tests: `fallback`, or H3CO_MIGRATION_BYTES when
/// set: a byte count with an optional suffix, k/M/G (powers of 1000) or Ki/Mi/Gi (of 1024), so
/// `H3CO_MIGRATION_BYTES=100M` runs the 100 MB. CI keeps the small defaults; a value that
/// does not parse fails the test rather than run the default unnoticed.
std::size_t migration_bytes(std::size_t fallback) {
    const char* env = std::getenv("H3CO_MIGRATION_BYTES");
    if (!env || !*env) return fallback;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(env, &end, 10);
    const std::string suffix = end;
    const std::pair<const char*, unsigned long long> units[] = {
        {"", 1},          {"k", 1000},        {"M", 1000000},        {"G", 1000000000},
        {"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30}};
    for (const auto& [name, scale] : units)
        if (suffix == name && end != env && n > 0) return static_cast<std::size_t>(n * scale);
    FAIL("H3CO_MIGRATION_BYTES=" << env << ": want a byte count such as 100M, 100000000 or 100Mi");
    return fallback;
}

/// How long a run of `bytes` may take: the usual 30 s, plus a second per MB beyond the default
/// sizes (a loaded CI machine moves far more than that through the relay).
std::chrono::seconds limit_for(std::size_t bytes) { return 30s + std::chrono::seconds(bytes / 1000000); }

/// What an upload handler saw of its body and its connection.
struct upload_seen {
    std::size_t bytes = 0;
    bool exact = false;  ///< every byte equals the expected body
    std::error_code end;
    std::uint64_t paths_validated = 0;  ///< the connection's, once the body ended
    int count = 0;
};

/// Reads an upload to its end, checking every byte against `expected`, and notes in `seen` what
/// it saw. `after_chunk(total)` runs after each read: what a test does mid-body.
template <class AfterChunk>
asio::awaitable<void> receive_upload(h3co::server_request& req, const std::string& expected, upload_seen& seen,
                                     AfterChunk after_chunk) {
    std::vector<char> buf(64 * 1024);
    std::size_t total = 0;
    bool exact = true;
    std::error_code end;
    for (;;) {
        auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
        exact = exact && total + n <= expected.size() && std::memcmp(buf.data(), expected.data() + total, n) == 0;
        total += n;
        after_chunk(total);
        if (ec) {
            end = ec;
            break;
        }
    }
    seen.bytes = total;
    seen.exact = exact;
    seen.end = end;
    seen.paths_validated = req.connection_stats().paths_validated;
    ++seen.count;
}
constexpr auto nothing_per_chunk = [](std::size_t) {};

/// Connects to 127.0.0.1:`port`; named values only inside the co_await (g++ 12).
asio::awaitable<h3co::connection> connect_to(std::uint16_t port, const h3co::connection_options& options) {
    const std::string host = "127.0.0.1";
    const h3co::client_tls tls = test::trusting_test_ca();
    auto ex = co_await asio::this_coro::executor;
    auto op = h3co::connect(ex, host, port, tls, options);
    co_return co_await std::move(op);
}

/// POSTs `body` to `path` in 64 KiB writes and returns the response status (its body read to the end).
asio::awaitable<int> upload(h3co::connection& conn, const std::string& path, const std::string& body) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = path};
    co_await stream.send_header(req);
    for (std::size_t off = 0; off < body.size(); off += 64 * 1024)
        co_await stream.write(asio::buffer(body.data() + off, std::min<std::size_t>(64 * 1024, body.size() - off)));
    co_await stream.finish();
    auto head = co_await stream.read_response();
    co_await test::read_all(stream);
    co_return head.status;
}

TEST_CASE("migration: the server follows a client whose port, then address, changes mid-upload (NAT rebinding)",
          "[migration]") {
    // 32 MiB by default (H3CO_MIGRATION_BYTES=100M runs the 100 MB: docs/interop.md):
    // the rebindings happen at a third and two thirds of it either way.
    const std::size_t size = migration_bytes(32u << 20);
    const std::string body = test::pseudo_random_bytes(size, 2101);
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    test::lossy_relay relay(io, server.listen("127.0.0.1", 0));
    const auto first_upstream = relay.upstream_endpoint();
    asio::ip::udp::endpoint second_upstream;
    auto seen = std::make_shared<upload_seen>();
    server.handle("/upload", [&](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        // The NAT gives the client a new port at a third of the body; a new address (127.0.0.2)
        // once that path is validated and two thirds are in. Reading on keeps the client sending.
        auto move_client = [&](std::size_t total) {
            if (relay.rebindings() == 0 && total >= size / 3) {
                relay.rebind_after(1, asio::ip::make_address("127.0.0.1"));
            } else if (relay.rebindings() == 1 && total >= 2 * size / 3 &&
                       req.connection_stats().paths_validated >= 1) {
                second_upstream = relay.upstream_endpoint();
                relay.rebind_after(1, asio::ip::make_address("127.0.0.2"));
            }
        };
        co_await receive_upload(req, body, *seen, move_client);
        co_await res.send_header(200);
    });

    int status = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        h3co::connection_options options;
        auto conn = co_await connect_to(relay.port(), options);
        status = co_await upload(conn, "/upload", body);
        conn.close();
    }(), limit_for(size));
    test::settle(io, 100ms);

    CHECK(status == 200);
    CHECK(seen->count == 1);
    CHECK(seen->end == h3co::error::eof);
    CHECK(seen->bytes == size);
    CHECK(seen->exact);
    REQUIRE(relay.rebindings() == 2);
    // The server saw three addresses: the first upstream port, a second port, then 127.0.0.2.
    CHECK(second_upstream.address() == first_upstream.address());
    CHECK(second_upstream.port() != first_upstream.port());
    CHECK(relay.upstream_endpoint().address() == asio::ip::make_address("127.0.0.2"));
    // Each new path was validated (PATH_CHALLENGE / PATH_RESPONSE) before the body ended.
    CHECK(seen->paths_validated >= 2);
}

// ---------------------------------------------------------------------------------------------
// gtlsclient (ngtcp2's GnuTLS example client, an independent peer) migrating mid-upload

/// An h3co server on 127.0.0.1:0 run by a background thread, with an /upload handler that checks
/// every byte and notes how much of the body had arrived when the client's new path was validated.
struct background_upload_server {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::optional<h3co::server> server;
    std::thread thread;
    std::uint16_t port = 0;
    std::shared_ptr<const std::string> expected;
    // Written on the server thread; read after the client process ended and the thread was joined.
    upload_seen seen;
    std::size_t bytes_when_validated = 0;  ///< 0: no new path validated while the body came

    explicit background_upload_server(std::shared_ptr<const std::string> body, const h3co::server_options& limits = {})
        : expected(std::move(body)) {
        server.emplace(test::executor(io), test::server_identity(), h3co::connection_options{}, limits);
        server->handle("/upload", [this](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            auto note_validation = [this, &req](std::size_t total) {
                if (bytes_when_validated == 0 && req.connection_stats().paths_validated > 0) bytes_when_validated = total;
            };
            co_await receive_upload(req, *expected, seen, note_validation);
            co_await res.send_header(200);
        });
        port = server->listen("127.0.0.1", 0).port();
        thread = std::thread([this] { io.run(); });
    }

    /// Stops the server and joins its thread: `seen` may be read after.
    void stop() {
        if (!thread.joinable()) return;
        asio::post(io, [this] {
            server->close();
            server.reset();
        });
        work.reset();
        io.run_for(0ms);
        thread.join();
    }
    ~background_upload_server() { stop(); }
};

/// gtlsclient POSTs `file` to 127.0.0.1:`port`/upload with `extra` options; true when it exited 0.
bool gtlsclient_upload(std::uint16_t port, const fs::path& file, const std::vector<std::string>& extra,
                       const fs::path& log, std::chrono::seconds limit = 20s) {
    std::vector<std::string> argv{H3CO_GTLSCLIENT, "-q", "--no-quic-dump", "--no-http-dump",
                                  "--exit-on-all-streams-close", "--handshake-timeout=5s", "--timeout=10s",
                                  "-m", "POST", "-d", file.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("127.0.0.1");
    argv.push_back(std::to_string(port));
    argv.push_back("https://127.0.0.1:" + std::to_string(port) + "/upload");
    test::child_process client(argv, log);
    REQUIRE(client.started());
    if (!client.wait_for(limit)) {
        client.kill();
        UNSCOPED_INFO("gtlsclient did not exit within " << limit.count() << " s and was killed");
        return false;
    }
    UNSCOPED_INFO("gtlsclient wait status " << client.status());
    return client.exited_with_zero();
}

void gtlsclient_migrates_mid_upload(const std::string& how) {
    // The tool is part of the test environment (ngtcp2-client): without it this fails, loudly.
    REQUIRE_FALSE(std::string(H3CO_GTLSCLIENT).empty());
    test::temp_dir dir;
    // 16 MiB by default (H3CO_MIGRATION_BYTES=100M for the 100 MB): the client moves 5 ms
    // after the handshake, while it is still sending, and sends the rest from its new socket. It
    // must keep sending: after --nat-rebinding gtlsclient sends nothing of its own accord, so a
    // stalled upload would leave the server writing to the old port.
    const std::size_t size = migration_bytes(16u << 20);
    auto body = std::make_shared<const std::string>(test::pseudo_random_bytes(size, 2102));
    test::write_file(dir.path / "upload.bin", *body);
    background_upload_server bg(body);
    std::vector<std::string> extra{"--change-local-addr=5ms"};
    if (how == "nat-rebinding") extra.push_back("--nat-rebinding");
    const bool ok = gtlsclient_upload(bg.port, dir.path / "upload.bin", extra, dir.path / "gtlsclient.log",
                                      limit_for(size) - 10s);
    bg.stop();
    INFO("gtlsclient log:\n" << test::read_file(dir.path / "gtlsclient.log"));
    CHECK(ok);
    CHECK(bg.seen.count == 1);
    CHECK(bg.seen.end == h3co::error::eof);
    CHECK(bg.seen.bytes == body->size());
    CHECK(bg.seen.exact);
    // The new path was validated mid-upload: after the first bytes, before the last.
    CHECK(bg.bytes_when_validated > 0);
    CHECK(bg.bytes_when_validated < body->size());
    CHECK(bg.seen.paths_validated >= 1);
}

TEST_CASE("migration: gtlsclient --change-local-addr mid-upload to an h3co server arrives byte-exact",
          "[migration][interop]") {
    gtlsclient_migrates_mid_upload("change-local-addr");
}

TEST_CASE("migration: gtlsclient --nat-rebinding mid-upload to an h3co server arrives byte-exact",
          "[migration][interop]") {
    gtlsclient_migrates_mid_upload("nat-rebinding");
}

TEST_CASE("migration: gtlsclient follows an h3co server's preferred address and uploads there byte-exact",
          "[migration][preferred][interop][interop-matrix][im-connectionmigration][im-as-server]") {
    REQUIRE_FALSE(std::string(H3CO_GTLSCLIENT).empty());
    test::temp_dir dir;
    auto body = std::make_shared<const std::string>(test::pseudo_random_bytes(8u << 20, 2106));
    test::write_file(dir.path / "upload.bin", *body);
    h3co::server_options limits;
    limits.preferred_address = "127.0.0.2";
    background_upload_server bg(body, limits);
    const bool ok = gtlsclient_upload(bg.port, dir.path / "upload.bin", {}, dir.path / "gtlsclient.log");
    bg.stop();
    INFO("gtlsclient log:\n" << test::read_file(dir.path / "gtlsclient.log"));
    CHECK(ok);
    CHECK(bg.seen.count == 1);
    CHECK(bg.seen.end == h3co::error::eof);
    CHECK(bg.seen.bytes == body->size());
    CHECK(bg.seen.exact);
    // gtlsclient moved to 127.0.0.2 (the only way a path is validated here) during the upload.
    CHECK(bg.seen.paths_validated >= 1);
    CHECK(bg.bytes_when_validated < body->size());
}

// ---------------------------------------------------------------------------------------------
// The client moves on purpose: connection.migrate()

/// A server on 127.0.0.1:0 on the test's io_context whose /upload handler checks every byte of
/// `body` and notes its connection's validated paths once the body ended.
struct direct_rig {
    direct_rig(asio::io_context& io, const std::string& body)
        : server(test::executor(io), test::server_identity()), port(server.listen("127.0.0.1", 0).port()) {
        server.handle("/upload", [this, &body](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            co_await receive_upload(req, body, *seen, nothing_per_chunk);
            co_await res.send_header(200);
        });
    }
    h3co::server server;
    std::uint16_t port;
    std::shared_ptr<upload_seen> seen = std::make_shared<upload_seen>();
};

TEST_CASE("migration: connection.migrate() moves an upload to a new port, then to 127.0.0.2, byte-exact",
          "[migration][client]") {
    const std::size_t size = migration_bytes(32u << 20);  // H3CO_MIGRATION_BYTES=100M: the 100 MB
    const std::string body = test::pseudo_random_bytes(size, 2103);
    // A new port at 10/32 of the body, 127.0.0.2 at 20/32 (10 and 20 MiB of the default), on a
    // write boundary.
    const std::size_t first_at = size / 32 * 10 / (64 * 1024) * (64 * 1024);
    const std::size_t second_at = size / 32 * 20 / (64 * 1024) * (64 * 1024);
    asio::io_context io;
    direct_rig rig(io, body);
    std::error_code first, second;
    int status = 0;
    h3co::connection_stats client_stats;
    test::run(io, [&]() -> asio::awaitable<void> {
        h3co::connection_options options;
        auto conn = co_await connect_to(rig.port, options);
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = "/upload"};
        co_await stream.send_header(req);
        const auto second_address = asio::ip::make_address("127.0.0.2");
        for (std::size_t off = 0; off < body.size(); off += 64 * 1024) {
            // Mid-body, with packets in flight on the old path: a new port, then a new address.
            if (off == first_at) {
                auto [ec] = co_await conn.migrate(tuple);
                first = ec;
            }
            if (off == second_at) {
                auto [ec] = co_await conn.migrate(second_address, tuple);
                second = ec;
            }
            co_await stream.write(asio::buffer(body.data() + off, std::min<std::size_t>(64 * 1024, body.size() - off)));
        }
        co_await stream.finish();
        auto head = co_await stream.read_response();
        co_await test::read_all(stream);
        status = head.status;
        client_stats = conn.stats();
        conn.close();
    }(), limit_for(size));
    test::settle(io, 100ms);
    CHECK_FALSE(first);
    CHECK_FALSE(second);
    CHECK(status == 200);
    CHECK(rig.seen->count == 1);
    CHECK(rig.seen->end == h3co::error::eof);
    CHECK(rig.seen->bytes == size);
    CHECK(rig.seen->exact);
    CHECK(client_stats.paths_validated == 2);
    CHECK(rig.seen->paths_validated >= 2);  // the server validated both new paths too
}

TEST_CASE("migration: migrate() fails with a named error on a closed connection and on an empty handle",
          "[migration][client]") {
    asio::io_context io;
    const std::string body;
    direct_rig rig(io, body);
    std::error_code on_closed, on_empty;
    test::run(io, [&]() -> asio::awaitable<void> {
        h3co::connection_options options;
        auto conn = co_await connect_to(rig.port, options);
        conn.close();
        auto [closed_ec] = co_await conn.migrate(tuple);
        on_closed = closed_ec;
        h3co::connection empty;
        auto [empty_ec] = co_await empty.migrate(tuple);
        on_empty = empty_ec;
    }());
    CHECK(on_closed == h3co::error::connection_closed);
    CHECK(on_empty == h3co::error::not_open);
}

TEST_CASE("migration: a cancelled migrate() ends with operation_aborted, the upload goes on byte-exact, and a later "
          "migrate() succeeds",
          "[migration][client]") {
    constexpr std::size_t size = 4u << 20;
    const std::string body = test::pseudo_random_bytes(size, 2104);
    asio::io_context io;
    direct_rig rig(io, body);
    std::optional<std::error_code> cancelled;
    std::error_code later;
    int status = 0;
    h3co::connection_stats client_stats;
    test::run(io, [&]() -> asio::awaitable<void> {
        h3co::connection_options options;
        auto conn = co_await connect_to(rig.port, options);
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = "/upload"};
        co_await stream.send_header(req);
        for (std::size_t off = 0; off < body.size(); off += 64 * 1024) {
            if (off == 16 * 64 * 1024) {
                // Started and cancelled before the executor runs anything else: the server cannot
                // have answered the PATH_CHALLENGE yet, so the cancellation is what ends it.
                asio::cancellation_signal signal;
                conn.migrate(asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec) { cancelled = ec; }));
                signal.emit(asio::cancellation_type::terminal);
            }
            if (off == 32 * 64 * 1024) {
                auto [ec] = co_await conn.migrate(tuple);
                later = ec;
            }
            co_await stream.write(asio::buffer(body.data() + off, std::min<std::size_t>(64 * 1024, body.size() - off)));
        }
        co_await stream.finish();
        auto head = co_await stream.read_response();
        co_await test::read_all(stream);
        status = head.status;
        client_stats = conn.stats();
        conn.close();
    }());
    test::settle(io, 100ms);
    REQUIRE(cancelled.has_value());
    CHECK(*cancelled == asio::error::operation_aborted);
    CHECK_FALSE(later);
    CHECK(status == 200);
    CHECK(rig.seen->bytes == size);
    CHECK(rig.seen->exact);
    // The later migration's path; the given-up one's may have validated too (a PATH_RESPONSE counts
    // on any path), and the connection then carried on from the socket it still had.
    CHECK(client_stats.paths_validated >= 1);
}

TEST_CASE("migration: migrate() to a path the server never hears fails with path_validation_failed, and the upload "
          "goes on byte-exact on the old one",
          "[migration][client]") {
    constexpr std::size_t size = 4u << 20;
    const std::string body = test::pseudo_random_bytes(size, 2107);
    asio::io_context io;
    direct_rig rig(io, body);
    test::lossy_relay relay(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), rig.port));
    relay.only_first_client(true);  // the new socket's PATH_CHALLENGE never reaches the server
    std::error_code failed;
    clock_type::duration migrate_took{};
    int status = 0;
    h3co::connection_stats client_stats;
    test::run(io, [&]() -> asio::awaitable<void> {
        h3co::connection_options options;
        auto conn = co_await connect_to(relay.port(), options);
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = "/upload"};
        co_await stream.send_header(req);
        for (std::size_t off = 0; off < body.size(); off += 64 * 1024) {
            if (off == 16 * 64 * 1024) {
                const auto started = clock_type::now();
                auto [ec] = co_await conn.migrate(tuple);  // ngtcp2 gives up after 3 PTO: 7 s on 0.12, 3 s on 1.x
                failed = ec;
                migrate_took = clock_type::now() - started;
            }
            co_await stream.write(asio::buffer(body.data() + off, std::min<std::size_t>(64 * 1024, body.size() - off)));
        }
        co_await stream.finish();
        auto head = co_await stream.read_response();
        co_await test::read_all(stream);
        status = head.status;
        client_stats = conn.stats();
        conn.close();
    }());
    test::settle(io, 100ms);
    INFO("migrate() failed after " << std::chrono::duration_cast<std::chrono::milliseconds>(migrate_took).count() << " ms");
    CHECK(failed == h3co::error::path_validation_failed);
    CHECK(relay.counters(test::lossy_relay::direction::to_server).blackholed > 0);
    CHECK(status == 200);
    CHECK(rig.seen->bytes == size);
    CHECK(rig.seen->exact);
    CHECK(client_stats.paths_validated == 0);
    CHECK(client_stats.path_validations_failed >= 1);
}

// ---------------------------------------------------------------------------------------------
// Server preferred address (RFC 9000 §9.6)

TEST_CASE("migration: a client follows the server's preferred address after the handshake, and the upload goes there",
          "[migration][preferred]") {
    constexpr std::size_t size = 8u << 20;
    const std::string body = test::pseudo_random_bytes(size, 2105);
    asio::io_context io;
    h3co::server_options limits;
    limits.preferred_address = "127.0.0.2";  // port 0: picked at listen()
    h3co::server server(test::executor(io), test::server_identity(), h3co::connection_options{}, limits);
    // The handshake goes through a relay to 127.0.0.1; the preferred address is reached directly.
    test::lossy_relay relay(io, server.listen("127.0.0.1", 0));
    const auto endpoints = server.local_endpoints();
    REQUIRE(endpoints.size() == 2);
    CHECK(endpoints[1].address() == asio::ip::make_address("127.0.0.2"));
    CHECK(endpoints[1].port() != 0);
    auto seen = std::make_shared<upload_seen>();
    server.handle("/upload", [&](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        co_await receive_upload(req, body, *seen, nothing_per_chunk);
        co_await res.send_header(200);
    });
    int status = 0;
    h3co::connection_stats client_stats;
    test::run(io, [&]() -> asio::awaitable<void> {
        h3co::connection_options options;
        auto conn = co_await connect_to(relay.port(), options);
        status = co_await upload(conn, "/upload", body);
        client_stats = conn.stats();
        conn.close();
    }());
    test::settle(io, 100ms);
    CHECK(status == 200);
    CHECK(seen->count == 1);
    CHECK(seen->end == h3co::error::eof);
    CHECK(seen->bytes == size);
    CHECK(seen->exact);
    CHECK(client_stats.paths_validated >= 1);
    // The body (some 7000 datagrams) went to the preferred address, not through the relay.
    INFO("datagrams through the relay to the server: " << relay.counters(test::lossy_relay::direction::to_server).received);
    CHECK(relay.counters(test::lossy_relay::direction::to_server).received < 1000);
}

}  // namespace migration_test
