// The orchestrator's output: the table (medians, then per run), the h3co connections' numbers and the
// link emulator's counters per run, or the same as --csv / --json.
#pragma once

#include "run.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace bench {

inline std::string fmt(double v, int prec = 2) {
    if (std::isnan(v)) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, v);
    return buf;
}

/// The link emulator's numbers that --csv and --json carry for each run.
inline constexpr const char* link_keys[] = {"up_forwarded",    "up_queue_drops",   "up_lost",          "up_reordered",
                                     "up_kernel_drops", "up_late_p99_us",   "up_peer_drops",    "down_forwarded",
                                     "down_queue_drops", "down_lost",       "down_reordered",   "down_kernel_drops",
                                     "down_late_p99_us", "down_peer_drops",  "flows"};

inline json_record to_json(const row& r, const std::string& kind) {
    json_record j;
    j.set("kind", kind);
    j.set("workload", r.workload);
    j.set("client", r.client);
    j.set("server", r.server);
    j.set("run", r.run);
    j.set("ok", r.ok ? 1.0 : 0.0);
    j.set("bytes", static_cast<double>(r.bytes));
    j.set("wall_s", r.wall_s);
    j.set("mb_per_s", r.mbps);
    j.set("client_cpu_s", r.client_cpu);
    j.set("server_cpu_s", r.server_cpu);
    j.set("client_maxrss_kib", r.client_rss_kib);
    j.set("server_maxrss_kib", r.server_rss_kib);
    j.set("lat_p50_us", r.lat_p50);
    j.set("lat_p99_us", r.lat_p99);
    j.set("lat_max_us", r.lat_max);
    j.set("handshakes_per_s", r.hs_per_s);
    if (!std::isnan(r.link_cpu)) j.set("link_cpu_s", r.link_cpu);
    for (const char* k : link_keys)
        if (r.link.has(k)) j.set(std::string("link_") + k, r.link.num(k));
    j.set("server_packets_in", r.server_packets_in);
    j.set("connection_s", r.connection_s);
    j.set("server_cpu_s_per_gb", r.server_cpu_s_per_gb);
    j.set("server_cpu_ms_per_conn_s", r.server_cpu_ms_per_conn_s);
    j.set("server_cpu_us_per_packet", r.server_cpu_us_per_packet);
    if (!r.error.empty()) j.set("error", r.error);
    return j;
}

inline void print_csv_header() {
    std::cout << "kind,workload,client,server,run,ok,bytes,wall_s,mb_per_s,client_cpu_s,server_cpu_s,client_maxrss_kib,"
                 "server_maxrss_kib,lat_p50_us,lat_p99_us,lat_max_us,handshakes_per_s,link_cpu_s";
    for (const char* k : link_keys) std::cout << ",link_" << k;
    // Appended after the link's columns, so that readers by position keep working.
    std::cout << ",server_packets_in,connection_s,server_cpu_s_per_gb,server_cpu_ms_per_conn_s,server_cpu_us_per_packet\n";
}

inline void print_csv(const row& r, const std::string& kind) {
    auto v = [](double x, int p = 4) { return std::isnan(x) ? std::string{} : fmt(x, p); };
    std::cout << kind << ',' << r.workload << ',' << r.client << ',' << r.server << ',' << r.run << ',' << (r.ok ? 1 : 0) << ','
              << r.bytes << ',' << v(r.wall_s) << ',' << v(r.mbps, 2) << ',' << v(r.client_cpu) << ',' << v(r.server_cpu) << ','
              << v(r.client_rss_kib, 0) << ',' << v(r.server_rss_kib, 0) << ',' << v(r.lat_p50, 1) << ',' << v(r.lat_p99, 1)
              << ',' << v(r.lat_max, 1) << ',' << v(r.hs_per_s, 1) << ',' << v(r.link_cpu);
    for (const char* k : link_keys) std::cout << ',' << v(r.link.num(k), 0);
    std::cout << ',' << v(r.server_packets_in, 0) << ',' << v(r.connection_s, 3) << ',' << v(r.server_cpu_s_per_gb, 3) << ','
              << v(r.server_cpu_ms_per_conn_s, 3) << ',' << v(r.server_cpu_us_per_packet, 3) << '\n';
}

/// What the server's CPU bought, per row that moved bytes: CPU s per GB of body, ms per
/// connection-second (the clients' connections, summed), us per datagram it received.
inline void print_server_cost(const std::vector<row>& rows, const char* which) {
    bool any = false;
    for (const auto& r : rows) {
        const bool bulk = r.workload == "upload" || r.workload == "download" || r.workload == "parallel" || r.workload == "clients";
        if (!bulk || r.bytes == 0 || std::isnan(r.server_cpu_s_per_gb)) continue;
        if (!any)
            std::printf("\nserver CPU per unit (%s): s per GB of body, ms per connection-second, us per datagram received\n"
                        "(datagrams: the h3co server's own count; gtlsserver's only through --link-*, what the emulator delivered):\n",
                        which);
        any = true;
        std::string who = r.run ? "run " + std::to_string(r.run) + " " : std::string{};
        std::printf("  %s%-10s %s -> %s: %s s/GB, %s ms per conn-s (%s conn-s), %s us per datagram (%s datagrams)\n", who.c_str(),
                    r.workload.c_str(), r.client.c_str(), r.server.c_str(), fmt(r.server_cpu_s_per_gb, 2).c_str(),
                    fmt(r.server_cpu_ms_per_conn_s, 2).c_str(), fmt(r.connection_s, 1).c_str(), fmt(r.server_cpu_us_per_packet, 2).c_str(),
                    fmt(r.server_packets_in, 0).c_str());
    }
}

inline void print_table(const std::vector<row>& rows) {
    std::printf("%-11s %-6s %-6s %9s %8s %9s %9s %9s %9s  %s\n", "workload", "client", "server", "MB/s", "wall s",
                "cli CPU s", "srv CPU s", "cli MiB", "srv MiB", "notes");
    for (const auto& r : rows) {
        std::string notes;
        if (r.workload == "chunks")
            notes = "latency p50 " + fmt(r.lat_p50 / 1000, 3) + " ms, p99 " + fmt(r.lat_p99 / 1000, 3) + " ms, max " +
                    fmt(r.lat_max / 1000, 3) + " ms (n=" + fmt(r.lat_count, 0) + ")";
        if (r.workload == "handshakes") notes = fmt(r.hs_per_s, 1) + " handshakes/s";
        if (r.workload == "ttfb") notes = r.notes;
        if (r.server_report.has("workers"))  // --workers N: how the connections spread over them
            notes += (notes.empty() ? "" : "; ") + fmt(r.server_report.num("workers"), 0) + " workers, connections " +
                     r.server_report.str("spread") + ", hand-offs " + fmt(r.server_report.num("handoffs"), 0) +
                     (r.server_report.num("kernel_steering") > 0 ? ", kernel steering" : ", no kernel steering");
        if (!r.ok) notes += (notes.empty() ? "" : "; ") + std::string("FAILED: ") + r.error;
        std::printf("%-11s %-6s %-6s %9s %8s %9s %9s %9s %9s  %s\n", r.workload.c_str(), r.client.c_str(), r.server.c_str(),
                    fmt(r.mbps, 1).c_str(), fmt(r.wall_s, 2).c_str(), fmt(r.client_cpu, 2).c_str(), fmt(r.server_cpu, 2).c_str(),
                    fmt(r.client_rss_kib / 1024, 1).c_str(), fmt(r.server_rss_kib / 1024, 1).c_str(), notes.c_str());
    }
}

/// Per run, the h3co sides' connection numbers at the end of the transfer: what limited it.
inline void print_connection_stats(const std::vector<row>& all) {
    bool any = false;
    auto side = [](const json_record& j) {
        if (!j.has("srtt_ms")) return std::string("-");
        return "srtt " + fmt(j.num("srtt_ms"), 1) + " ms (min " + fmt(j.num("min_rtt_ms"), 1) + "), cwnd " +
               fmt(j.num("cwnd") / 1e6, 2) + " MB, lost " + fmt(j.num("lost"), 0) + "/" + fmt(j.num("packets_sent"), 0) +
               " pkts, windows stream " + fmt(j.num("stream_window") / 1048576, 2) + " / conn " +
               fmt(j.num("conn_window") / 1048576, 2) + " MiB, send buffer " + fmt(j.num("send_buffer") / 1048576, 2) +
               " MiB, " + j.str("cc");
    };
    for (const auto& r : all) {
        if (!r.client_report.has("srtt_ms") && !r.server_report.has("srtt_ms")) continue;
        if (!any) std::printf("\nh3co connection stats per run, at the end of the transfer (client | server):\n");
        any = true;
        std::printf("  run %d %-10s %s -> %s: %s | %s\n", r.run, r.workload.c_str(), r.client.c_str(), r.server.c_str(),
                    side(r.client_report).c_str(), side(r.server_report).c_str());
    }
}

/// What link was emulated, and per run what the emulator did in each direction.
inline void print_link_runs(const config& c, const std::vector<row>& all) {
    std::printf("\nlink: %s; emulated by a third process (h3co_bench --role link)\n", c.link.describe().c_str());
    std::printf("link counters per run, datagrams to server | to client: forwarded / dropped by the queue / lost at random /\n"
                "reordered; the emulator's release lateness p99 (us), kernel drops at its sockets, its CPU s; and what the\n"
                "peers' own sockets dropped (their receive buffers were full; not the link's doing):\n");
    auto dir = [](const json_record& j, const std::string& p) {
        std::string s = fmt(j.num(p + "forwarded"), 0) + " / " + fmt(j.num(p + "queue_drops"), 0) + " / " + fmt(j.num(p + "lost"), 0) +
                        " / " + fmt(j.num(p + "reordered"), 0);
        for (const char* extra : {"overflow", "send_errors", "no_flow"})
            if (j.num(p + extra, 0) > 0) s += " (" + std::string(extra) + " " + fmt(j.num(p + extra), 0) + ")";
        return s;
    };
    for (const auto& r : all) {
        if (!r.link.has("role")) continue;
        const double late = std::max(r.link.num("up_late_p99_us", 0), r.link.num("down_late_p99_us", 0));
        std::printf("  run %d %-10s %s -> %s: %s | %s; late p99 %s us, kernel drops %s, CPU %s s; drops in the peers' own sockets: "
                    "server %s, client %s\n",
                    r.run, r.workload.c_str(), r.client.c_str(), r.server.c_str(), dir(r.link, "up_").c_str(), dir(r.link, "down_").c_str(),
                    fmt(late, 0).c_str(), fmt(r.link.num("up_kernel_drops") + r.link.num("down_kernel_drops"), 0).c_str(),
                    fmt(r.link_cpu, 2).c_str(), fmt(r.link.num("up_peer_drops"), 0).c_str(), fmt(r.link.num("down_peer_drops"), 0).c_str());
        if (r.link.num("flows", 1) > 1)  // many clients: each client address is a flow of its own
            std::printf("    %s client addresses relayed, each through its own socket to the server\n", fmt(r.link.num("flows"), 0).c_str());
    }
}

}  // namespace bench
