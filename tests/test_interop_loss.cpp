// The quic-interop-runner's loss cases against ngtcp2's example peers, through the lossy relay
// (tests/support/lossy_relay.hpp), in both roles:
// - handshakeloss: several connections one after another, each downloading a 1 KiB file, with
//   30% of the datagrams dropped each way (the runner's rate; it makes 50 connections, here 8 so
//   that a case stays well inside ctest's bound);
// - transferloss: one connection downloading 2 MiB with 2% dropped each way.
// Bodies are compared byte for byte; the relay's counters show the losses happened.
#include "support/gtls_peer.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace interop_loss_test {

using test::read_file;
using test::pseudo_random_bytes;
using test::write_file;
using test::temp_dir;

constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr int handshake_connections = 8;
constexpr double handshake_drop = 0.30;
constexpr std::size_t transfer_size = 2 * 1024 * 1024;
constexpr double transfer_drop = 0.02;

test::fault_policy dropping(double p) {
    test::fault_policy f;
    f.drop = p;
    return f;
}

// ---------------------------------------------------------------------------------------------
// h3co client -> relay -> gtlsserver

/// One connection through the relay, one GET of `path`; returns the body ("" and a failed CHECK
/// when anything goes wrong).
asio::awaitable<std::string> get_through(asio::any_io_executor ex, std::uint16_t relay_port, std::string path,
                                         std::shared_ptr<std::string> errors) {
    const auto tls = test::trusting_test_ca();
    const std::string host = "127.0.0.1";
    h3co::connection_options options;
    options.handshake_timeout = 20s;  // 30% loss each way: the handshake may need several PTOs
    auto [ec, conn] = co_await h3co::connect(ex, host, relay_port, tls, options, as_tuple);
    if (ec) {
        *errors += "connect for " + path + ": " + ec.message() + "\n";
        co_return std::string();
    }
    std::string body;
    const char* step = "open";
    try {
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = test::url(relay_port, path, "127.0.0.1")};
        step = "send_header";
        co_await stream.send_header(req);
        step = "finish";
        // Under loss gtlsserver may answer before our FIN arrives, then stop our sending with
        // H3_NO_ERROR (RFC 9114 §4.1.1): finish() reports that, and the response stays readable.
        auto [fin_ec] = co_await stream.finish(as_tuple);
        if (fin_ec) *errors += "finish() for " + path + " (the response is still read): " + fin_ec.message() + "\n";
        step = "read_response";
        const auto head = co_await stream.read_response();
        step = "read body";
        body = co_await test::read_all(stream);
        if (head.status != 200) body.clear();
    } catch (const std::system_error& e) {
        *errors += "GET " + path + " at " + step + ": " + e.code().category().name() + ": " + e.what() + "\n";
        body.clear();
    }
    conn.close();
    co_return body;
}

TEST_CASE("interop loss: handshakeloss: an h3co client makes 8 connections to gtlsserver at 30% loss",
          "[interop-loss][interop-matrix][im-handshakeloss][im-as-client]") {
    temp_dir dir;
    fs::create_directory(dir.path / "htdocs");
    std::vector<std::string> files;
    for (int i = 0; i < handshake_connections; ++i) {
        files.push_back(pseudo_random_bytes(1024, 500 + static_cast<std::uint32_t>(i)));
        write_file(dir.path / "htdocs" / ("f" + std::to_string(i)), files.back());
    }
    test::gtls_server peer(dir.path / "htdocs", dir.path / "gtlsserver.log");
    asio::io_context io;
    test::run(io, test::wait_until_answering(io.get_executor(), peer.port), 10s);

    test::lossy_relay relay(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), peer.port));
    relay.set(dropping(handshake_drop));
    int exact = 0;
    auto errors = std::make_shared<std::string>();
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto ex = test::executor(io);
        for (int i = 0; i < handshake_connections; ++i) {
            const std::string path = "/f" + std::to_string(i);  // named: no temporaries inside co_await (g++ 12)
            const std::string body = co_await get_through(ex, relay.port(), path, errors);
            exact += body == files[static_cast<std::size_t>(i)];
        }
    }(), 100s);
    relay.close();
    test::settle(io, 50ms);
    const auto t = relay.total();
    INFO("relay: received " << t.received << ", dropped " << t.dropped << "; errors:\n" << *errors);
    CHECK(exact == handshake_connections);
    CHECK(t.dropped >= t.received / 10);  // the 30% really went missing
}

TEST_CASE("interop loss: transferloss: an h3co client downloads 2 MiB from gtlsserver at 2% loss",
          "[interop-loss][interop-matrix][im-transferloss][im-as-client]") {
    temp_dir dir;
    fs::create_directory(dir.path / "htdocs");
    const std::string content = pseudo_random_bytes(transfer_size, 4242);
    write_file(dir.path / "htdocs" / "big.bin", content);
    test::gtls_server peer(dir.path / "htdocs", dir.path / "gtlsserver.log");
    asio::io_context io;
    test::run(io, test::wait_until_answering(io.get_executor(), peer.port), 10s);

    test::lossy_relay relay(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), peer.port));
    relay.set(dropping(transfer_drop));
    std::string got;
    auto errors = std::make_shared<std::string>();
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto ex = test::executor(io);
        const std::string path = "/big.bin";
        got = co_await get_through(ex, relay.port(), path, errors);
    }(), 100s);
    relay.close();
    test::settle(io, 50ms);
    const auto t = relay.total();
    INFO("relay: received " << t.received << ", dropped " << t.dropped << "; errors:\n" << *errors);
    CHECK(got.size() == content.size());
    CHECK((got == content));
    CHECK(t.dropped >= 5);
}

// ---------------------------------------------------------------------------------------------
// gtlsclient -> relay -> h3co server

/// gtlsclient GETs `path` through the relay into `download`; killed after `limit`. True when it
/// exited by itself with status 0.
bool gtlsclient_get(std::uint16_t port, const std::string& path, const fs::path& download, const fs::path& log,
                    std::chrono::milliseconds limit) {
    return test::run_gtlsclient(port, {path}, {"--download=" + download.string()}, log, limit);
}

/// A handler that answers with `body`.
auto serve(std::shared_ptr<const std::string> body) {
    return [body](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        constexpr std::size_t chunk = 64 * 1024;
        for (std::size_t off = 0; off < body->size(); off += chunk)
            co_await res.write(asio::buffer(body->data() + off, std::min(chunk, body->size() - off)));
        co_await res.finish(as_tuple);  // gtlsclient may close before it acknowledged the last packet
    };
}

TEST_CASE("interop loss: handshakeloss: gtlsclient makes 8 connections to an h3co server at 30% loss",
          "[interop-loss][interop-matrix][im-handshakeloss][im-as-server]") {
    temp_dir dir;
    std::vector<std::shared_ptr<const std::string>> files;
    test::relayed_server rs;
    for (int i = 0; i < handshake_connections; ++i) {
        files.push_back(std::make_shared<const std::string>(pseudo_random_bytes(1024, 900 + static_cast<std::uint32_t>(i))));
        rs.server->handle("/f" + std::to_string(i), serve(files.back()));
    }
    const auto port = rs.start(dropping(handshake_drop));
    int exited_ok = 0, exact = 0;
    for (int i = 0; i < handshake_connections; ++i) {
        const auto out = dir.path / ("run" + std::to_string(i));
        fs::create_directory(out);
        const auto log = dir.path / ("gtlsclient" + std::to_string(i) + ".log");
        const bool ok = gtlsclient_get(port, "/f" + std::to_string(i), out, log, 30000ms);
        if (!ok) UNSCOPED_INFO("run " << i << " failed; gtlsclient log:\n" << read_file(log));
        exited_ok += ok;
        exact += read_file(out / ("f" + std::to_string(i))) == *files[static_cast<std::size_t>(i)];
    }
    const auto t = rs.on_thread([&] { return rs.relay->total(); });
    rs.stop();
    INFO("relay: received " << t.received << ", dropped " << t.dropped);
    CHECK(exited_ok == handshake_connections);
    CHECK(exact == handshake_connections);
    CHECK(t.dropped >= t.received / 10);
}

TEST_CASE("interop loss: transferloss: gtlsclient downloads 2 MiB from an h3co server at 2% loss",
          "[interop-loss][interop-matrix][im-transferloss][im-as-server]") {
    temp_dir dir;
    fs::create_directory(dir.path / "download");
    auto content = std::make_shared<const std::string>(pseudo_random_bytes(transfer_size, 4343));
    test::relayed_server rs;
    rs.server->handle("/big.bin", serve(content));
    const auto port = rs.start(dropping(transfer_drop));
    const auto log = dir.path / "gtlsclient.log";
    const bool ok = gtlsclient_get(port, "/big.bin", dir.path / "download", log, 60000ms);
    const auto t = rs.on_thread([&] { return rs.relay->total(); });
    rs.stop();
    INFO("relay: received " << t.received << ", dropped " << t.dropped << "; gtlsclient log:\n" << read_file(log));
    CHECK(ok);
    const auto saved = read_file(dir.path / "download" / "big.bin");
    CHECK(saved.size() == content->size());
    CHECK((saved == *content));
    CHECK(t.dropped >= 5);
}

}  // namespace interop_loss_test
