// Runs one scenario on a fresh io_context and simulated network, and checks the invariants:
// during the run, each action's body and the credit ledger (workload.hpp); at the end, that every
// operation started completed exactly once, that the scenario ended within its virtual-time limit
// (no hang), and that nothing h3co made is still alive once everything is closed.
#pragma once

#include "network.hpp"
#include "scenario.hpp"
#include "workload.hpp"

#include <h3co/h3co.hpp>
#include <h3co/testing.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <memory>
#include <string>

#ifndef H3CO_TEST_CERT_DIR
#error "H3CO_TEST_CERT_DIR: the test certificates (tests/CMakeLists.txt)"
#endif

namespace h3co_sim {

struct outcome {
    bool passed = true;
    std::string failure;
    std::uint64_t hash = 0;
    std::uint64_t virtual_ns = 0;  ///< virtual time the scenario took
    std::vector<std::string> events;
    network_stats net;
};

inline std::string cert(const std::string& name) { return std::string(H3CO_TEST_CERT_DIR) + "/" + name; }

/// Runs `s`; with `keep_trace` the outcome holds every event.
inline outcome run_scenario(const scenario& s, bool keep_trace) {
    outcome out;
    const long streams_before = h3co::testing::live_stream_states();
    const long conns_before = h3co::testing::live_connections();
    const long ops_before = h3co::testing::live_pending_ops();
    context ctx(keep_trace);
    ctx.inject_failure = s.inject_failure;
    {
        auto io = std::make_unique<asio::io_context>();
        network net(*io, s.seed);
        net.set_link_factory([&s](std::uint32_t, std::uint32_t to) {
            return to == 0x7f000001u ? s.up : s.down;  // the server is 127.0.0.1
        });
        const std::uint64_t start = net.now_ns();
        ctx.now = [&net, start] { return (net.now_ns() - start) / ms; };
        auto ex = io->get_executor();
        prng rng(s.seed ^ 0x5eed5eed5eed5eedull);

        h3co::connection_options options;
        options.idle_timeout = std::chrono::seconds(10);
        options.h3_datagrams = true;  // the datagrams action (on stacks without them: not_supported)
        // An RSA certificate: an ECDSA signature's length varies from run to run (BoringSSL draws
        // its nonce from the system), and one byte more or less in the server's handshake moves
        // what fits in later packets, and so the trace (cmake/make-certs.sh).
        auto server = std::make_unique<h3co::server>(
            asio::any_io_executor(ex), h3co::server_tls::from_pem_files(cert("sim-server.pem"), cert("sim-server.key")),
            options);
        install_handlers(*server, ctx);
        server->listen("127.0.0.1", 443);
        h3co::client_tls tls;
        tls.ca_file = cert("ca.pem");
        auto client = std::make_unique<h3co::client>(asio::any_io_executor(ex), tls, options);
        // The idle move's connection and pool: a short idle timeout and no keep-alive.
        h3co::connection_options idle_options = options;
        idle_options.idle_timeout = std::chrono::milliseconds(s.idle_timeout_ms ? s.idle_timeout_ms : 1000);
        idle_options.keep_alive = std::chrono::hours(1);
        auto idle_pool = std::make_unique<h3co::client>(asio::any_io_executor(ex), tls, idle_options);
        std::vector<std::shared_ptr<h3co::connection>> conns;

        // The clients: connections, each with its workers; the pool's workers.
        for (int c = 0; c < s.connections; ++c) {
            auto conn = std::make_shared<h3co::connection>();
            conns.push_back(conn);
            std::vector<prng> workers;
            for (int w = 0; w < s.workers; ++w) workers.push_back(rng.fork());
            const auto id = ctx.begin("connection " + std::to_string(c));
            asio::co_spawn(
                ex,
                [&ctx, &s, &tls, &options, conn, c, id, workers, actions = s.actions, ex]() mutable -> asio::awaitable<void> {
                    auto [ec, made] = co_await h3co::connect(asio::any_io_executor(ex), "127.0.0.1", 443, tls, options, tuple);
                    ctx.record("c" + std::to_string(c), "connect " + describe(ec));
                    if (!ec) *conn = std::move(made);
                    // No connection: the workers still run, on the empty handle, where every
                    // operation must fail with not_open (seed 45 crashed here before).
                    for (std::size_t w = 0; w < workers.size(); ++w) {
                        const auto wid = ctx.begin("c" + std::to_string(c) + "w" + std::to_string(w));
                        asio::co_spawn(
                            ex,
                            [&ctx, &s, conn, c, w, wid, rng = workers[w], actions]() mutable -> asio::awaitable<void> {
                                for (int a = 0; a < actions; ++a) {
                                    auto arng = rng.fork();
                                    if (!s.kept(s.action_item(c, static_cast<int>(w), a))) continue;
                                    const std::string who = "c" + std::to_string(c) + "w" + std::to_string(w) + "a" + std::to_string(a);
                                    const auto aid = ctx.begin(who);
                                    co_await run_action(ctx, *conn, arng, who);
                                    ctx.end(aid);
                                }
                                ctx.end(wid);
                            },
                            asio::detached);
                    }
                    ctx.end(id);
                },
                asio::detached);
        }
        for (int p = 0; p < s.pool_workers; ++p) {
            const auto wid = ctx.begin("pool" + std::to_string(p));
            asio::co_spawn(
                ex,
                [&ctx, &s, &client, p, wid, rng = rng.fork(), actions = s.pool_actions()]() mutable -> asio::awaitable<void> {
                    for (int a = 0; a < actions; ++a) {
                        auto arng = rng.fork();
                        if (!s.kept(s.pool_item(p, a))) continue;
                        const std::string who = "pool" + std::to_string(p) + "a" + std::to_string(a);
                        const auto aid = ctx.begin(who);
                        co_await run_pipe_upload(ctx, *client, arng, who);
                        ctx.end(aid);
                    }
                    ctx.end(wid);
                },
                asio::detached);
        }
        if (s.idle_at_ns) {
            auto conn = std::make_shared<h3co::connection>();
            conns.push_back(conn);
            const auto id = ctx.begin("idle");
            asio::co_spawn(
                ex,
                [&ctx, &net, &s, &tls, &idle_options, &idle_pool, conn, id, start, irng = rng.fork(), ex]() mutable
                -> asio::awaitable<void> {
                    const auto when = start + s.idle_at_ns - 1'000 * ms;
                    if (when > net.now_ns()) co_await h3co::sleep_for(std::chrono::nanoseconds(when - net.now_ns()));
                    auto [ec, made] = co_await h3co::connect(asio::any_io_executor(ex), "127.0.0.1", 443, tls, idle_options, tuple);
                    ctx.record("idle", "connect " + describe(ec));
                    if (!ec) *conn = std::move(made);
                    co_await run_idle(ctx, *conn, *idle_pool, irng, s.idle_timeout_ms, !ec);
                    ctx.end(id);
                },
                asio::detached);
        }
        // Hostile moves at their moments.
        const auto at = [&](std::uint64_t when, std::string what, std::function<void()> f) {
            if (!when) return;
            const auto id = ctx.begin(what);
            asio::co_spawn(
                ex,
                [&ctx, &net, when, id, what, f]() -> asio::awaitable<void> {
                    const auto now = net.now_ns();
                    if (when > now) co_await h3co::sleep_for(std::chrono::nanoseconds(when - now));
                    ctx.record("net", what);
                    f();
                    ctx.end(id);
                },
                asio::detached);
        };
        at(s.rebind_at_ns ? start + s.rebind_at_ns - 1'000 * ms : 0, "rebind", [&net] { net.rebind(0); });
        at(s.shutdown_at_ns ? start + s.shutdown_at_ns - 1'000 * ms : 0, "server shutdown",
           [&server] { server->shutdown(std::chrono::seconds(2)); });
        at(s.close_at_ns ? start + s.close_at_ns - 1'000 * ms : 0, "close c0", [&conns] { conns[0]->close(); });

        if (s.destroy_at_ns) {
            // The io_context destroyed with work pending: drop every handle (as Asio asks, before
            // the context), then destroy the context without running it again. Its services'
            // shutdown must free everything h3co has on it.
            net.run_until([&ctx] { return ctx.completed == ctx.started; }, start + s.destroy_at_ns - 1'000 * ms);
            ctx.record("net", "io_context destroyed with " + std::to_string(ctx.started - ctx.completed) + " pending");
            out.virtual_ns = net.now_ns() - start;
            out.net = net.stats();
            conns.clear();
            client.reset();
            idle_pool.reset();
            server.reset();
            io.reset();
            const long conns_left = h3co::testing::live_connections() - conns_before;
            const long streams_left = h3co::testing::live_stream_states() - streams_before;
            const long ops_left = h3co::testing::live_pending_ops() - ops_before;
            if (conns_left || streams_left || ops_left)
                ctx.fail("after the io_context was destroyed: " + std::to_string(conns_left) + " connections, " +
                         std::to_string(streams_left) + " streams and " + std::to_string(ops_left) +
                         " operations still alive");
            ctx.events.add("end t=" + std::to_string(out.virtual_ns / ms) + " sent " + std::to_string(out.net.sent) +
                           " delivered " + std::to_string(out.net.delivered));
            out.failure = ctx.failure;
            out.passed = ctx.failure.empty();
            out.hash = ctx.events.hash();
            out.events = ctx.events.events();
            return out;
        }
        // No hang: some operation completes at least every stall_ns of virtual time (longer than
        // any idle timeout, pause or shutdown grace of the workload), and all within limit_ns.
        const auto all_done = [&ctx] { return !ctx.failure.empty() || ctx.completed == ctx.started; };
        while (!all_done()) {
            const long before = ctx.completed;
            const auto progress = [&] { return all_done() || ctx.completed != before; };
            const auto deadline = std::min(start + s.limit_ns, net.now_ns() + s.stall_ns);
            if (net.run_until(progress, deadline)) continue;
            std::string pending;
            for (const auto& [id, what] : ctx.in_flight) pending += (pending.empty() ? "" : ", ") + what;
            ctx.fail((deadline == start + s.limit_ns ? "over the time limit: " : "no progress for " +
                      std::to_string(s.stall_ns / ms) + " ms: ") + std::to_string(ctx.started - ctx.completed) +
                     " operations not completed (virtual " + std::to_string(ctx.now()) + " ms): " + pending.substr(0, 400));
        }
        out.virtual_ns = net.now_ns() - start;
        // The end: close everything, let the closes run, then nothing may be left.
        for (auto& c : conns) {
            if (c->is_open() || c->close_error()) {
                ctx.check_ledger("end", c->stats());
                check_stream_memory(ctx, "end", h3co::testing::stream_memory_of(*c));
            }
            c->close();
        }
        client->close();
        idle_pool->close();
        server->close();
        conns.clear();
        client.reset();
        idle_pool.reset();
        server.reset();
        const auto quiet = [&] {
            return h3co::testing::live_connections() == conns_before &&
                   h3co::testing::live_stream_states() == streams_before;
        };
        if (ctx.failure.empty() && !net.run_until(quiet, net.now_ns() + 60'000 * ms))
            ctx.fail("after close: " + std::to_string(h3co::testing::live_connections() - conns_before) +
                     " connections and " + std::to_string(h3co::testing::live_stream_states() - streams_before) +
                     " streams still alive");
        if (ctx.failure.empty() && h3co::testing::live_pending_ops() != ops_before)
            ctx.fail("after close: " + std::to_string(h3co::testing::live_pending_ops() - ops_before) +
                     " operations still pending");
        out.net = net.stats();
        ctx.events.add("end t=" + std::to_string(out.virtual_ns / ms) + " sent " + std::to_string(out.net.sent) +
                       " delivered " + std::to_string(out.net.delivered));
        io.reset();  // its services' shutdown destroys what still waits, before the network goes
    }
    out.failure = ctx.failure;
    out.passed = ctx.failure.empty();
    out.hash = ctx.events.hash();
    out.events = ctx.events.events();
    return out;
}

}  // namespace h3co_sim
