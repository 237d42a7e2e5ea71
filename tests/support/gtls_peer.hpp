// ngtcp2's example peers (gtlsserver, gtlsclient: GnuTLS-based, independent of h3co's TLS and
// glue code) as test fixtures, and an h3co server behind the lossy relay for gtlsclient to reach.
// A missing peer fails the test that needs it (require_peer): CI must not pass without interop.
#pragma once

#include "support/child_process.hpp"
#include "support/lossy_relay.hpp"
#include "support/peer_inputs.hpp"
#include "support/test_support.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace test {

/// Fails the running test when `program` (a path from CMake, "" when not found) is missing.
inline void require_peer(const char* program, const char* package) {
    INFO(package << " is not installed: scripts/bootstrap.sh installs it");
    REQUIRE(!std::string(program).empty());
}

/// gtlsserver serving `docroot` on 127.0.0.1 with the test certificate (or the chain and key
/// named, from the test certificate directory), `extra` options before the positional arguments.
struct gtls_server {
    std::unique_ptr<child_process> process;
    std::uint16_t port = 0;
    std::filesystem::path log;

    gtls_server(const std::filesystem::path& docroot, const std::filesystem::path& log_file,
                const std::vector<std::string>& extra = {}, const std::string& chain = "server.pem",
                const std::string& key = "server.key")
        : log(log_file) {
        using namespace std::chrono_literals;
        require_peer(H3CO_GTLSSERVER, "ngtcp2-server (gtlsserver)");
        for (int attempt = 0; attempt < 5 && !process; ++attempt) {
            port = free_udp_port();
            std::vector<std::string> argv{H3CO_GTLSSERVER, "--no-quic-dump", "--no-http-dump", "-q",
                                          "-d",            docroot.string()};
            argv.insert(argv.end(), extra.begin(), extra.end());
            for (auto a : {std::string("127.0.0.1"), std::to_string(port), cert(key), cert(chain)})
                argv.push_back(a);
            auto p = std::make_unique<child_process>(argv, log);
            REQUIRE(p->started());
            if (p->wait_for(150ms)) continue;  // the port was taken meanwhile (it exits at once): another one
            process = std::move(p);
        }
        INFO("gtlsserver log:\n" << read_file(log));
        REQUIRE(process);
    }

    asio::ip::udp::endpoint endpoint() const { return {asio::ip::make_address("127.0.0.1"), port}; }
};

/// Waits (bounded) until a QUIC server answers a handshake on 127.0.0.1:`port`.
inline asio::awaitable<void> wait_until_answering(asio::any_io_executor ex, std::uint16_t port) {
    using namespace std::chrono_literals;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    const auto tls = trusting_test_ca();
    const std::string host = "127.0.0.1";
    h3co::connection_options options;
    options.handshake_timeout = 1000ms;
    for (;;) {
        auto [ec, conn] =
            co_await h3co::connect(ex, host, port, tls, options, asio::experimental::as_tuple(asio::use_awaitable));
        if (!ec) {
            conn.close();
            co_return;
        }
        if (std::chrono::steady_clock::now() >= deadline) throw std::system_error(ec, "the server never answered");
        co_await h3co::sleep_for(100ms);
    }
}

/// Runs gtlsclient against 127.0.0.1:`port` for `paths` (each https://127.0.0.1:port/path), with
/// `extra` options; kills it after `limit`. True when it exited by itself with status 0.
inline bool run_gtlsclient(std::uint16_t port, const std::vector<std::string>& paths,
                           const std::vector<std::string>& extra, const std::filesystem::path& log,
                           std::chrono::milliseconds limit) {
    require_peer(H3CO_GTLSCLIENT, "ngtcp2-client (gtlsclient)");
    std::vector<std::string> argv{H3CO_GTLSCLIENT, "-q", "--no-quic-dump", "--no-http-dump",
                                  "--exit-on-all-streams-close", "--handshake-timeout=20s", "--timeout=20s"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("127.0.0.1");
    argv.push_back(std::to_string(port));
    for (const auto& p : paths) argv.push_back("https://127.0.0.1:" + std::to_string(port) + p);
    child_process client(argv, log);
    REQUIRE(client.started());
    if (!client.wait_for(limit)) {
        client.kill();
        UNSCOPED_INFO("gtlsclient did not exit within the limit and was killed");
        return false;
    }
    UNSCOPED_INFO("gtlsclient wait status " << client.status());
    return client.exited_with_zero();
}

/// An h3co server with the lossy relay in front of it, on an io_context a background thread runs.
struct relayed_server {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::optional<h3co::server> server;
    std::optional<lossy_relay> relay;
    std::thread thread;

    explicit relayed_server(const h3co::server_options& limits = {}, const h3co::server_tls& tls = server_identity()) {
        server.emplace(executor(io), tls, h3co::connection_options{}, limits);
    }

    /// Listens, puts the relay in front with `policy`, starts the thread; returns the relay's port.
    std::uint16_t start(const fault_policy& policy = {}) {
        relay.emplace(io, server->listen("127.0.0.1", 0));
        relay->set(policy);
        thread = std::thread([this] { io.run(); });
        return relay->port();
    }

    /// Runs `f` on the server's thread and returns its result.
    template <class F>
    auto on_thread(F f) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto result = task.get_future();
        asio::post(io, [&task] { task(); });
        return result.get();
    }

    /// Stops the relay and the server on their thread and joins it; returns the server's stats.
    h3co::server_stats stop() {
        using namespace std::chrono_literals;
        const auto stats = on_thread([this] {
            relay->close();
            auto s = server->stats();
            server->close();
            return s;
        });
        std::this_thread::sleep_for(100ms);  // close frames go out
        work.reset();
        io.stop();
        thread.join();
        relay.reset();
        server.reset();
        return stats;
    }

    ~relayed_server() {
        if (thread.joinable()) stop();
    }
};

}  // namespace test
