// link: the link emulator (link_emulator.hpp) alone in the foreground (h3co_bench link), or as the
// third child of a run through --link-* (--role link): in a process of its own, so that it has its
// own CPU and its own rusage, and reports its counters like the other children (one JSON line when
// it gets SIGTERM).
#pragma once

#include "../link_emulator.hpp"
#include "../measure.hpp"
#include "../options.hpp"
#include "../process.hpp"

#include <signal.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

inline std::atomic<bench::link::link_emulator*> g_link{nullptr};

inline void stop_link_on_signal(int) {
    if (auto* l = g_link.load()) l->stop();  // one write to an eventfd: async-signal-safe
}

inline json_record link_report(const bench::link::link_emulator& emu) {
    using bench::link::link_emulator;
    json_record r;
    r.set("role", "link");
    for (const auto& [d, prefix] : {std::pair{link_emulator::to_server, "up_"}, std::pair{link_emulator::to_client, "down_"}}) {
        const auto& k = emu.counters(d);
        const std::string p = prefix;
        r.set(p + "received", static_cast<double>(k.received));
        r.set(p + "forwarded", static_cast<double>(k.forwarded));
        r.set(p + "bytes_forwarded", static_cast<double>(k.bytes_forwarded));
        r.set(p + "queue_drops", static_cast<double>(k.queue_drops));
        r.set(p + "lost", static_cast<double>(k.lost));
        r.set(p + "reordered", static_cast<double>(k.reordered));
        r.set(p + "overflow", static_cast<double>(k.overflow));
        r.set(p + "send_errors", static_cast<double>(k.send_errors));
        r.set(p + "kernel_drops", static_cast<double>(k.kernel_drops));
        r.set(p + "no_flow", static_cast<double>(k.no_flow));
        r.set(p + "late_p50_us", k.lateness.percentile_us(50));
        r.set(p + "late_p99_us", k.lateness.percentile_us(99));
        r.set(p + "late_max_us", k.lateness.count() ? k.lateness.max_us() : NAN);
    }
    r.set("flows", static_cast<double>(emu.flows()));
    return r;
}

/// What the peers' own sockets dropped (their receive buffers overflowed): the server's socket
/// receives what goes to the server, the clients' sockets what goes to the clients. Sampled from
/// /proc/net/udp while the emulator runs (cumulative per socket; the highest value seen is kept),
/// so a drop in the last sampling period before a socket closes can be missed.
struct peer_drops {
    std::uint64_t server = 0;
    std::vector<std::uint64_t> clients;  // per flow

    void sample(const bench::link::link_emulator& emu) {
        std::vector<std::uint16_t> ports{bench::link::address_port(emu.server())};
        for (std::size_t i = 0; i < emu.flows(); ++i) ports.push_back(bench::link::address_port(emu.flow_client(i)));
        const auto drops = udp_socket_drops(ports);
        server = std::max(server, drops[0]);
        clients.resize(emu.flows(), 0);
        for (std::size_t i = 0; i < clients.size(); ++i) clients[i] = std::max(clients[i], drops[i + 1]);
    }
    std::uint64_t client_total() const {
        std::uint64_t t = 0;
        for (auto d : clients) t += d;
        return t;
    }
};

inline int run_link(const config& c) {
    if (c.link_target.empty()) throw std::invalid_argument("link: --link-target HOST:PORT is required (the server, on loopback)");
    if (c.role == "link") ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the orchestrator died: stop too
    bench::link::link_emulator emu(c.link.resolve(), bench::link::parse_endpoint(c.link_target), c.port);
    g_link = &emu;
    struct sigaction sa{};
    sa.sa_handler = stop_link_on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    std::printf("PORT %u\n", static_cast<unsigned>(emu.port()));
    std::fflush(stdout);
    if (c.role != "link")
        std::fprintf(stderr, "h3co_bench link: 127.0.0.1:%u -> %s: %s (SIGINT/SIGTERM stops)\n", static_cast<unsigned>(emu.port()),
                     c.link_target.c_str(), c.link.describe().c_str());
    // Runs in slices of 50 ms, and samples the peers' sockets' drop counters between them.
    peer_drops peers;
    const auto deadline = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(c.timeout_s + 30));
    while (!emu.stopped() && clock_type::now() < deadline) {
        emu.run(50ms);
        peers.sample(emu);
    }
    g_link = nullptr;
    json_record r = link_report(emu);
    r.set("up_peer_drops", static_cast<double>(peers.server));
    r.set("down_peer_drops", static_cast<double>(peers.client_total()));
    add_self_usage(r);
    std::printf("%s\n", r.dump().c_str());
    std::fflush(stdout);
    return 0;
}

}  // namespace bench
