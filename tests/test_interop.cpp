// Interop with ngtcp2's own example peers (GnuTLS-based, independent of h3co's TLS and glue code):
// h3co's client against gtlsserver, and gtlsclient against h3co's server, over real loopback UDP.
#include "support/gtls_peer.hpp"
#include "support/lossy_relay.hpp"

#include <h3co/session_cache.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace interop_test {

using test::child_process;
using test::read_file;
using test::pseudo_random_bytes;
using test::write_file;
using test::free_udp_port;
using test::temp_dir;

constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// gtlsserver (tests/support/gtls_peer.hpp) and how h3co connects to it.
struct gtls_server : test::gtls_server {
    using test::gtls_server::gtls_server;
    /// What connect() uses (a member, not a default argument: g++ 12 mishandles temporaries that
    /// a default argument makes inside co_await).
    h3co::connection_options client_options;

    /// Connects with h3co, retrying until gtlsserver answers (it needs a moment to start).
    asio::awaitable<h3co::connection> connect(asio::any_io_executor ex, std::chrono::milliseconds bound = 5000ms) {
        const auto deadline = std::chrono::steady_clock::now() + bound;
        const auto tls = test::trusting_test_ca();  // real verification: ca.pem, IP SAN 127.0.0.1
        const std::string host = "127.0.0.1";
        auto options = client_options;
        options.handshake_timeout = 1000ms;
        for (;;) {
            // Named arguments only: g++ 12 mishandles std::string temporaries inside co_await.
            auto [ec, conn] = co_await h3co::connect(ex, host, port, tls, options, as_tuple);
            if (!ec) co_return std::move(conn);
            if (std::chrono::steady_clock::now() >= deadline) {
                UNSCOPED_INFO("gtlsserver log:\n" << read_file(log));
                throw std::system_error(ec, "connecting to gtlsserver");
            }
            co_await h3co::sleep_for(100ms);
        }
    }
};

/// An h3co server on 127.0.0.1:0 run by a background thread with its own io_context.
struct background_server {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::optional<h3co::server> server;
    std::thread thread;
    std::uint16_t port = 0;

    background_server() { server.emplace(test::executor(io), test::server_identity()); }
    explicit background_server(const h3co::server_options& limits) {
        server.emplace(test::executor(io), test::server_identity(), h3co::connection_options{}, limits);
    }

    void start() {
        port = server->listen("127.0.0.1", 0).port();
        thread = std::thread([this] { io.run(); });
    }

    ~background_server() {
        if (thread.joinable()) {
            asio::post(io, [this] {
                server->close();
                server.reset();
            });
            std::this_thread::sleep_for(200ms);  // close frames go out
            work.reset();
            io.stop();
            thread.join();
        }
        server.reset();
    }
};

/// Runs gtlsclient with `extra` options against 127.0.0.1:`port`, `path`; kills it after `limit`.
/// Returns whether it exited by itself with status 0.
bool run_gtlsclient(std::uint16_t port, const std::string& path, std::vector<std::string> extra, const fs::path& log,
                    std::chrono::milliseconds limit = 20000ms) {
    return test::run_gtlsclient(port, {path}, extra, log, limit);
}


// ---------------------------------------------------------------------------------------------
// h3co client -> gtlsserver

TEST_CASE("interop: h3co client GETs a 300000-byte file from gtlsserver, verifying its certificate", "[interop]") {
    test::require_peer(H3CO_GTLSSERVER, "ngtcp2-server (gtlsserver)");
    temp_dir dir;
    fs::create_directory(dir.path / "htdocs");
    const std::string content = pseudo_random_bytes(300000, 42);
    write_file(dir.path / "htdocs" / "file.bin", content);
    gtls_server peer(dir.path / "htdocs", dir.path / "gtlsserver.log");

    asio::io_context io;
    int status = 0;
    std::string got;
    std::error_code end;
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto ex = test::executor(io);
        auto conn = co_await peer.connect(ex);
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = test::url(peer.port, "/file.bin", "127.0.0.1")};
        co_await stream.send_header(req);
        // A GET has no body: finish() right away, before reading. finish() must not wait for the
        // response to be consumed (300000 bytes exceed the 256 KiB stream receive window).
        co_await stream.finish();
        auto head = co_await stream.read_response();
        status = head.status;
        std::vector<char> buf(32 * 1024);
        for (;;) {
            auto [ec, n] = co_await stream.read_some(asio::buffer(buf), as_tuple);
            got.append(buf.data(), n);
            if (ec) {
                end = ec;
                break;
            }
        }
        conn.close();
    }(), 20s);
    test::settle(io);
    INFO("gtlsserver log:\n" << read_file(peer.log));
    CHECK(status == 200);
    CHECK(end == h3co::error::eof);
    CHECK(got.size() == content.size());
    CHECK((got == content));
}

TEST_CASE("interop: h3co client POSTs a pipe-fed body of 64 x 4 KiB to gtlsserver", "[interop]") {
    test::require_peer(H3CO_GTLSSERVER, "ngtcp2-server (gtlsserver)");
    temp_dir dir;
    fs::create_directory(dir.path / "htdocs");
    const std::string target = "posted to\n";
    write_file(dir.path / "htdocs" / "target.txt", target);
    gtls_server peer(dir.path / "htdocs", dir.path / "gtlsserver.log");

    constexpr int chunks = 64;
    constexpr std::size_t chunk_size = 4096;
    const std::string body = pseudo_random_bytes(chunks * chunk_size, 7);

    asio::io_context io;
    // Wait for gtlsserver with a throwaway connection, so that the client's own connect succeeds first time.
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto ex = test::executor(io);
        auto conn = co_await peer.connect(ex);
        conn.close();
    }(), 10s);

    h3co::client client(test::executor(io), test::trusting_test_ca());
    int status = 0;
    std::string reply;
    std::error_code end;
    bool pump_done = false;
    std::size_t pumped = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [reader, writer] = h3co::make_pipe(test::executor(io));
        asio::co_spawn(io, [&, w = std::move(writer)]() mutable -> asio::awaitable<void> {
            for (int i = 0; i < chunks; ++i) {
                co_await w.write(asio::buffer(body.data() + i * chunk_size, chunk_size));
                pumped += chunk_size;
                co_await h3co::sleep_for(2ms);
            }
            w.close();
            pump_done = true;
        }, asio::detached);
        const h3co::request req{.method = "POST", .url = test::url(peer.port, "/target.txt", "127.0.0.1")};
        auto response = co_await client.request(req, std::move(reader));
        status = response.status;
        std::array<char, 4096> buf;
        for (;;) {
            auto [ec, n] = co_await response.read_some(asio::buffer(buf), as_tuple);
            reply.append(buf.data(), n);
            if (ec) {
                end = ec;
                break;
            }
        }
    }(), 30s);
    client.close();
    test::settle(io);  // let the close fail what still waits (the pump's FIN acknowledgement)
    test::settle(io);
    INFO("gtlsserver log:\n" << read_file(peer.log));
    // gtlsserver (without --early-response) answers only after the request's FIN: a response means
    // it received the whole body. For an existing file it answers 200 with that file.
    CHECK(pump_done);
    CHECK(pumped == body.size());
    CHECK(status == 200);
    CHECK(end == h3co::error::eof);
    CHECK(reply == target);
}

// ---------------------------------------------------------------------------------------------
// gtlsclient -> h3co server

TEST_CASE("interop: gtlsclient POSTs a 1 MiB file to an h3co server", "[interop]") {
    test::require_peer(H3CO_GTLSCLIENT, "ngtcp2-client (gtlsclient)");
    temp_dir dir;
    const std::string upload = pseudo_random_bytes(1024 * 1024, 99);
    write_file(dir.path / "upload.bin", upload);

    auto counted = std::make_shared<std::atomic<std::size_t>>(0);
    auto requests = std::make_shared<std::atomic<int>>(0);
    auto ended_with_eof = std::make_shared<std::atomic<bool>>(false);
    auto digest_ok = std::make_shared<std::atomic<bool>>(false);
    auto expected = std::make_shared<const std::string>(upload);
    background_server bg;
    bg.server->handle("/upload", [counted, requests, ended_with_eof, digest_ok, expected](
                                     h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        ++*requests;
        std::string received;
        std::array<char, 16 * 1024> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), as_tuple);
            received.append(buf.data(), n);
            *counted += n;
            if (ec) {
                *ended_with_eof = (ec == h3co::error::eof);
                break;
            }
        }
        *digest_ok = (received == *expected);
        co_await res.send_header(200);
    });
    bg.start();

    const bool ok = run_gtlsclient(bg.port, "/upload", {"-m", "POST", "-d", (dir.path / "upload.bin").string()},
                                   dir.path / "gtlsclient.log");
    INFO("gtlsclient log:\n" << read_file(dir.path / "gtlsclient.log"));
    CHECK(ok);
    CHECK(requests->load() == 1);
    CHECK(counted->load() == upload.size());
    CHECK(ended_with_eof->load());
    CHECK(digest_ok->load());
}

TEST_CASE("interop: gtlsclient downloads a 700000-byte chunked response body from an h3co server", "[interop]") {
    test::require_peer(H3CO_GTLSCLIENT, "ngtcp2-client (gtlsclient)");
    temp_dir dir;
    fs::create_directory(dir.path / "download");
    auto payload = std::make_shared<const std::string>(pseudo_random_bytes(700000, 1234));
    auto handler_done = std::make_shared<std::atomic<bool>>(false);
    auto finish_result = std::make_shared<std::error_code>();  // written on the server thread before handler_done
    background_server bg;
    bg.server->handle("/bytes", [payload, handler_done, finish_result](h3co::server_request&,
                                                                       h3co::response& res) -> asio::awaitable<void> {
        const h3co::fields fields{{"content-type", "application/octet-stream"}};
        co_await res.send_header(200, fields);
        constexpr std::size_t chunk = 10000;
        for (std::size_t off = 0; off < payload->size(); off += chunk)
            co_await res.write(asio::buffer(payload->data() + off, std::min(chunk, payload->size() - off)));
        auto [ec] = co_await res.finish(as_tuple);
        *finish_result = ec;
        *handler_done = true;
    });
    bg.start();

    const bool ok = run_gtlsclient(bg.port, "/bytes", {"--download=" + (dir.path / "download").string()},
                                   dir.path / "gtlsclient.log");
    INFO("gtlsclient log:\n" << read_file(dir.path / "gtlsclient.log"));
    CHECK(ok);
    const auto saved = read_file(dir.path / "download" / "bytes");
    CHECK(saved.size() == payload->size());
    CHECK((saved == *payload));
    // finish() completes once the client acknowledged everything; give it a moment after the exit.
    for (int i = 0; i < 250 && !handler_done->load(); ++i) std::this_thread::sleep_for(20ms);
    CHECK(handler_done->load());
    if (handler_done->load()) {
        // gtlsclient (--exit-on-all-streams-close) sends CONNECTION_CLOSE as soon as it has the FIN,
        // without acknowledging the last packets first (seen in ngtcp2's frame log): finish() can then
        // only report the close. Anything else (a reset, a protocol error) is a failure.
        INFO("finish(): " << finish_result->category().name() << ": " << finish_result->message());
        CHECK((!*finish_result || *finish_result == h3co::error::connection_closed));
    }
}

// ---------------------------------------------------------------------------------------------
// Key updates (RFC 9001 §6) with an independent peer: gtlsclient starts one (--key-update) during
// a long transfer to or from an h3co server; an h3co client with connection_options::
// key_update_interval starts them against gtlsserver (which has no option to start its own).

constexpr std::size_t key_update_body = 32 * 1024 * 1024;

TEST_CASE("interop: gtlsclient starts a key update during a 32 MiB upload to an h3co server",
          "[interop][key-update][interop-matrix][im-keyupdate][im-as-server]") {
    test::require_peer(H3CO_GTLSCLIENT, "ngtcp2-client (gtlsclient)");
    temp_dir dir;
    auto expected = std::make_shared<const std::string>(pseudo_random_bytes(key_update_body, 2024));
    write_file(dir.path / "upload.bin", *expected);
    struct seen_t {
        std::atomic<bool> exact{false}, eof{false};
        std::atomic<std::size_t> bytes{0};
        std::atomic<std::uint64_t> derived{0}, initiated{0};
    };
    auto seen = std::make_shared<seen_t>();
    background_server bg;
    bg.server->handle("/upload", [seen, expected](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        std::string received;
        received.reserve(expected->size());
        std::vector<char> buf(64 * 1024);
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), as_tuple);
            received.append(buf.data(), n);
            if (ec) {
                seen->eof = ec == h3co::error::eof;
                break;
            }
        }
        const auto stats = req.connection_stats();
        seen->derived = stats.key_generations_derived;
        seen->initiated = stats.key_updates_initiated;
        seen->bytes = received.size();
        seen->exact = received == *expected;
        co_await res.send_header(200);
    });
    bg.start();

    // 5 ms after the handshake is confirmed: well inside the transfer, which takes 100 ms or more.
    const bool ok = run_gtlsclient(bg.port, "/upload",
                                   {"--key-update=5ms", "-m", "POST", "-d", (dir.path / "upload.bin").string()},
                                   dir.path / "gtlsclient.log", 60000ms);
    INFO("gtlsclient log:\n" << read_file(dir.path / "gtlsclient.log"));
    CHECK(ok);
    CHECK(seen->eof.load());
    CHECK(seen->bytes.load() == expected->size());
    CHECK(seen->exact.load());
    // The generation derived at the handshake, then the next one, derived after the peer's update
    // was confirmed: the h3co server followed it (and started none itself).
    CHECK(seen->derived.load() >= 2);
    CHECK(seen->initiated.load() == 0);
}

TEST_CASE("interop: gtlsclient starts a key update during a 32 MiB download from an h3co server", "[interop][key-update]") {
    test::require_peer(H3CO_GTLSCLIENT, "ngtcp2-client (gtlsclient)");
    temp_dir dir;
    fs::create_directory(dir.path / "download");
    auto payload = std::make_shared<const std::string>(pseudo_random_bytes(key_update_body, 2025));
    auto derived = std::make_shared<std::atomic<std::uint64_t>>(0);
    auto written = std::make_shared<std::atomic<bool>>(false);
    background_server bg;
    bg.server->handle("/bytes", [payload, derived, written](h3co::server_request& req,
                                                            h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        constexpr std::size_t chunk = 64 * 1024;
        for (std::size_t off = 0; off < payload->size(); off += chunk)
            co_await res.write(asio::buffer(payload->data() + off, std::min(chunk, payload->size() - off)));
        // All written: the key update (5 ms in) and the next generation (a PTO after it was
        // confirmed) are long past, while the connection is still up.
        *derived = req.connection_stats().key_generations_derived;
        *written = true;
        co_await res.finish(as_tuple);
    });
    bg.start();

    const bool ok = run_gtlsclient(bg.port, "/bytes",
                                   {"--key-update=5ms", "--download=" + (dir.path / "download").string()},
                                   dir.path / "gtlsclient.log", 60000ms);
    INFO("gtlsclient log:\n" << read_file(dir.path / "gtlsclient.log"));
    CHECK(ok);
    const auto saved = read_file(dir.path / "download" / "bytes");
    CHECK(saved.size() == payload->size());
    CHECK((saved == *payload));
    CHECK(written->load());
    CHECK(derived->load() >= 2);
}

TEST_CASE("interop: an h3co client starts key updates while it downloads and uploads 32 MiB with gtlsserver",
          "[interop][key-update][interop-matrix][im-keyupdate][im-as-client]") {
    test::require_peer(H3CO_GTLSSERVER, "ngtcp2-server (gtlsserver)");
    temp_dir dir;
    fs::create_directory(dir.path / "htdocs");
    const std::string content = pseudo_random_bytes(key_update_body, 77);
    write_file(dir.path / "htdocs" / "file.bin", content);
    const std::string target = "posted to\n";
    write_file(dir.path / "htdocs" / "target.txt", target);
    gtls_server peer(dir.path / "htdocs", dir.path / "gtlsserver.log");
    peer.client_options.key_update_interval = 200;  // packets: ngtcp2's 3 PTO rule paces the updates

    asio::io_context io;
    int get_status = 0, post_status = 0;
    std::string got, reply;
    std::error_code end;
    h3co::connection_stats after_get, after_post;
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto ex = test::executor(io);
        auto conn = co_await peer.connect(ex);
        {
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "GET", .url = test::url(peer.port, "/file.bin", "127.0.0.1")};
            co_await stream.send_header(req);
            co_await stream.finish();
            auto head = co_await stream.read_response();
            get_status = head.status;
            std::vector<char> buf(64 * 1024);
            for (;;) {
                auto [ec, n] = co_await stream.read_some(asio::buffer(buf), as_tuple);
                got.append(buf.data(), n);
                if (ec) {
                    end = ec;
                    break;
                }
            }
            after_get = conn.stats();
        }
        {
            // gtlsserver discards a request body and answers (with the file) only after its FIN:
            // a 200 means it decrypted every packet, across our updates.
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "POST", .url = test::url(peer.port, "/target.txt", "127.0.0.1")};
            co_await stream.send_header(req);
            constexpr std::size_t chunk = 64 * 1024;
            for (std::size_t off = 0; off < content.size(); off += chunk)
                co_await stream.write(asio::buffer(content.data() + off, std::min(chunk, content.size() - off)));
            co_await stream.finish();
            auto head = co_await stream.read_response();
            post_status = head.status;
            reply = co_await test::read_all(stream);
            after_post = conn.stats();
        }
        conn.close();
    }(), 60s);
    test::settle(io);
    INFO("gtlsserver log:\n" << read_file(peer.log));
    INFO("after the GET: initiated " << after_get.key_updates_initiated << ", derived "
                                     << after_get.key_generations_derived << "; after the POST: initiated "
                                     << after_post.key_updates_initiated << ", derived "
                                     << after_post.key_generations_derived);
    CHECK(get_status == 200);
    CHECK(end == h3co::error::eof);
    CHECK(got.size() == content.size());
    CHECK((got == content));
    CHECK(post_status == 200);
    CHECK(reply == target);
    // ngtcp2 lets an update start only 3 PTO after the last one was confirmed: the GET (about
    // 100 ms on loopback) has room for one, the longer POST for more.
    CHECK(after_get.key_updates_initiated >= 1);
    CHECK(after_post.key_updates_initiated >= after_get.key_updates_initiated + 1);
    CHECK(after_post.key_updates_initiated >= 2);
}

// ---------------------------------------------------------------------------------------------
// 0-RTT with an independent peer: gtlsclient resumes from its --session-file / --tp-file and sends
// its GET early to an h3co server that allows early data; an h3co client does the same to
// gtlsserver (which accepts early data unless told not to).

TEST_CASE("interop: gtlsclient sends its GET in 0-RTT to an h3co server the second time",
          "[interop][early-data][interop-matrix][im-zerortt][im-as-server]") {
    test::require_peer(H3CO_GTLSCLIENT, "ngtcp2-client (gtlsclient)");
    temp_dir dir;
    h3co::server_options limits;
    limits.early_data = true;
    background_server bg(limits);
    auto early = std::make_shared<std::vector<int>>();  // per request: 1 if it came in 0-RTT
    auto guard = std::make_shared<std::mutex>();
    bg.server->handle("/hello", [early, guard](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        {
            std::lock_guard lock(*guard);
            early->push_back(req.early_data() ? 1 : 0);
        }
        co_await res.send_header(200);
        co_await res.write(asio::buffer(std::string("hi")));
    });
    bg.start();
    const std::vector<std::string> files{"--session-file=" + (dir.path / "session").string(),
                                         "--tp-file=" + (dir.path / "tp").string()};
    const bool first = run_gtlsclient(bg.port, "/hello", files, dir.path / "first.log");
    INFO("first gtlsclient log:\n" << read_file(dir.path / "first.log"));
    REQUIRE(first);
    const bool second = run_gtlsclient(bg.port, "/hello", files, dir.path / "second.log");
    INFO("second gtlsclient log:\n" << read_file(dir.path / "second.log"));
    REQUIRE(second);
    std::lock_guard lock(*guard);
    REQUIRE(early->size() == 2);
    CHECK((*early)[0] == 0);
    CHECK((*early)[1] == 1);  // its HEADERS came before the handshake completed
}

TEST_CASE("interop: an h3co client sends its GET in 0-RTT to gtlsserver the second time",
          "[interop][early-data][interop-matrix][im-zerortt][im-as-client]") {
    test::require_peer(H3CO_GTLSSERVER, "ngtcp2-server (gtlsserver)");
    temp_dir dir;
    fs::create_directory(dir.path / "htdocs");
    write_file(dir.path / "htdocs" / "hello.txt", "hi");
    gtls_server peer(dir.path / "htdocs", dir.path / "gtlsserver.log");
    peer.client_options.session_cache = std::make_shared<h3co::session_cache>();
    peer.client_options.early_data = true;
    asio::io_context io;
    std::vector<h3co::connection_stats> stats;
    std::vector<std::string> bodies;
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto ex = test::executor(io);
        for (int i = 0; i < 2; ++i) {
            auto conn = co_await peer.connect(ex);
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "GET", .url = test::url(peer.port, "/hello.txt", "127.0.0.1")};
            co_await stream.send_header(req);
            co_await stream.finish();
            auto head = co_await stream.read_response();
            std::string body = co_await test::read_all(stream);
            bodies.push_back(std::to_string(head.status) + " " + body);
            stats.push_back(conn.stats());
            conn.close();
        }
    }(), 20s);
    test::settle(io);
    INFO("gtlsserver log:\n" << read_file(peer.log));
    REQUIRE(stats.size() == 2);
    CHECK(bodies[0] == "200 hi");
    CHECK(bodies[1] == "200 hi");
    CHECK_FALSE(stats[0].early_data_offered);
    CHECK(stats[1].resumed);
    CHECK(stats[1].early_data_offered);
    CHECK(stats[1].early_data_accepted);
}

using namespace asio::experimental::awaitable_operators;

// A gtlsserver process cannot read another one's tickets (GnuTLS makes its ticket key at start):
// it makes a full handshake and ignores the early data, which the client sees as a rejected 0-RTT.
TEST_CASE("interop: gtlsserver rejects the h3co client's 0-RTT and the early GET and upload go again after the handshake",
          "[interop][early-data][0rtt-resend]") {
    test::require_peer(H3CO_GTLSSERVER, "ngtcp2-server (gtlsserver)");
    temp_dir dir;
    fs::create_directory(dir.path / "htdocs");
    write_file(dir.path / "htdocs" / "hello.txt", "hi");
    gtls_server issuer(dir.path / "htdocs", dir.path / "issuer.log");
    gtls_server refuser(dir.path / "htdocs", dir.path / "refuser.log");
    auto cache = std::make_shared<h3co::session_cache>();
    issuer.client_options.session_cache = cache;
    issuer.client_options.early_data = true;
    const std::string body(50000, 'b');
    asio::io_context io;
    std::vector<std::string> answers;
    h3co::connection_stats stats;
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto ex = test::executor(io);
        auto first = co_await issuer.connect(ex);
        auto stream = co_await first.open_request_stream();
        const h3co::request get{.method = "GET", .url = test::url(issuer.port, "/hello.txt", "127.0.0.1")};
        co_await stream.send_header(get);
        co_await stream.finish();
        co_await stream.read_response();
        co_await test::read_all(stream);
        first.close();
        // A 0-RTT connect completes at once, before gtlsserver may be listening: wait until it
        // answers a connection that keeps no ticket.
        auto probe = co_await refuser.connect(ex);
        probe.close();
        refuser.client_options = issuer.client_options;
        // From here through a relay that delays gtlsserver's packets by 40 ms, as a real path
        // would: both requests surely leave before the rejection comes back.
        test::lossy_relay relay(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), refuser.port));
        test::fault_policy slow;
        slow.delay = 40ms;
        relay.set(test::lossy_relay::direction::to_client, slow);
        refuser.port = relay.port();
        std::vector<h3co::session_cache::ticket> tickets;
        while (auto t = cache->take("127.0.0.1:" + std::to_string(issuer.port))) tickets.push_back(std::move(*t));
        REQUIRE_FALSE(tickets.empty());
        for (auto it = tickets.rbegin(); it != tickets.rend(); ++it)
            cache->store("127.0.0.1:" + std::to_string(refuser.port), std::move(*it));

        auto conn = co_await refuser.connect(ex);
        auto early_get = co_await conn.open_request_stream();
        const h3co::request get2{.method = "GET", .url = test::url(refuser.port, "/hello.txt", "127.0.0.1")};
        co_await early_get.send_header(get2);
        auto upload = co_await conn.open_request_stream();
        const h3co::request post{.method = "POST", .url = test::url(refuser.port, "/hello.txt", "127.0.0.1"),
                                 .early_data = true};
        co_await upload.send_header(post);
        const auto bytes = asio::buffer(body);
        co_await upload.write(bytes);
        CHECK(conn.stats().packets_received == 0);  // so both went before the server refused anything
        // Both FINs wait for their ACK, which only comes once the requests went again.
        auto get_done = early_get.finish();
        auto upload_done = upload.finish();
        co_await (std::move(get_done) && std::move(upload_done));
        const std::array<h3co::request_stream*, 2> streams{&early_get, &upload};
        for (auto* s : streams) {
            auto [ec, head] = co_await s->read_response(as_tuple);
            if (ec) {
                answers.push_back(ec.message());
                continue;
            }
            std::string text = co_await test::read_all(*s);
            answers.push_back(std::to_string(head.status) + " " + text);
        }
        stats = conn.stats();
        conn.close();
    }(), 20s);
    test::settle(io);
    INFO("gtlsserver log:\n" << read_file(refuser.log));
    REQUIRE(answers.size() == 2);
    CHECK(answers[0] == "200 hi");
    CHECK(answers[1] == "200 hi");
    CHECK(stats.early_data_offered);
    CHECK_FALSE(stats.early_data_accepted);
    CHECK(stats.early_requests_resent == 2);
}

}  // namespace interop_test
