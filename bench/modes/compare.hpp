// compare: h3co and gtls (ngtcp2's example peers gtlsclient / gtlsserver) clients x servers, upload
// and download of --bytes, --runs times (orchestrate.hpp alternates their order): the jobs, and the
// ratios h3co / gtls of the medians.
#pragma once

#include "../options.hpp"
#include "../run.hpp"

#include <algorithm>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bench {

/// One workload between one client and one server, each "h3co" or "gtls".
struct job {
    std::string workload, client, server;
};

/// --directions x --pairs (client-server).
inline std::vector<job> compare_jobs(const config& c) {
    std::vector<job> base;
    for (const auto& dir : split(c.directions, ','))
        for (const auto& pair : split(c.pairs, ',')) {
            const auto parts = split(pair, '-');
            if (parts.size() != 2) throw std::invalid_argument("bad pair " + pair);
            base.push_back({dir, parts[0], parts[1]});
        }
    return base;
}

/// False (and says so) when a job needs gtlsserver or gtlsclient and it was not found.
inline bool compare_peers_found(const config& c, const std::vector<job>& base) {
    const bool needs_gtls = std::any_of(base.begin(), base.end(), [](const job& j) { return j.client == "gtls" || j.server == "gtls"; });
    if (needs_gtls && (c.gtlsserver.empty() || c.gtlsclient.empty())) {
        std::cerr << "h3co_bench compare: gtlsserver/gtlsclient not found (apt-get install ngtcp2-server ngtcp2-client)\n";
        return false;
    }
    return true;
}

/// Ratios h3co / gtls of the medians for each direction: throughput, CPU and RSS per side.
inline std::vector<std::pair<std::string, double>> compare_ratios(const config& c, const std::vector<row>& medians) {
    std::vector<std::pair<std::string, double>> ratios;
    auto find = [&](const std::string& w, const std::string& cl, const std::string& sv) -> const row* {
        for (const auto& m : medians)
            if (m.workload == w && m.client == cl && m.server == sv && m.ok) return &m;
        return nullptr;
    };
    for (const auto& dir : split(c.directions, ',')) {
        const row* h = find(dir, "h3co", "h3co");
        const row* g = find(dir, "gtls", "gtls");
        if (!h || !g) continue;
        ratios.emplace_back(dir + " MB/s h3co-h3co / gtls-gtls", h->mbps / g->mbps);
        ratios.emplace_back(dir + " client CPU s h3co / gtls", h->client_cpu / g->client_cpu);
        ratios.emplace_back(dir + " server CPU s h3co / gtls", h->server_cpu / g->server_cpu);
        ratios.emplace_back(dir + " client peak RSS h3co / gtls", h->client_rss_kib / g->client_rss_kib);
        ratios.emplace_back(dir + " server peak RSS h3co / gtls", h->server_rss_kib / g->server_rss_kib);
        if (const row* x = find(dir, "gtls", "h3co")) ratios.emplace_back(dir + " MB/s gtls-h3co / gtls-gtls", x->mbps / g->mbps);
        if (const row* x = find(dir, "h3co", "gtls")) ratios.emplace_back(dir + " MB/s h3co-gtls / gtls-gtls", x->mbps / g->mbps);
    }
    return ratios;
}

}  // namespace bench
