// One measured run of a workload between a client and a server, each h3co or gtls (ngtcp2's example
// peers): the children started (the server, the link emulator in front of it with --link-*, the
// client), waited for with a deadline and measured (wait4 rusage), their JSON reports read back
// into a row; and the median row over runs.
#pragma once

#include "link_emulator.hpp"
#include "measure.hpp"
#include "options.hpp"
#include "process.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace bench {

struct row {
    std::string workload, client, server;
    int run = 0;
    bool ok = false;
    std::string error;
    std::uint64_t bytes = 0;
    double wall_s = NAN, mbps = NAN;
    double client_cpu = NAN, server_cpu = NAN, client_rss_kib = NAN, server_rss_kib = NAN;
    double lat_p50 = NAN, lat_p99 = NAN, lat_max = NAN, lat_count = NAN, hs_per_s = NAN;
    json_record link;       // the link emulator's report (runs through --link-*)
    json_record client_report, server_report;  // the h3co children's reports (connection stats)
    double link_cpu = NAN;  // its CPU seconds (wait4)
    std::string notes;      // a workload's own summary (ttfb)
    // What the server's CPU bought (server_cost()): datagrams it received (an h3co server counts
    // them per connection; for gtlsserver, what the link emulator delivered to its socket, so only
    // through --link-*), the clients' connection-seconds, and the CPU per GB of body, per
    // connection-second and per datagram received.
    double server_packets_in = NAN, connection_s = NAN;
    double server_cpu_s_per_gb = NAN, server_cpu_ms_per_conn_s = NAN, server_cpu_us_per_packet = NAN;
};

/// Fills the server's cost per unit of `r` from its CPU seconds, bytes and counts.
inline void server_cost(row& r) {
    if (r.bytes > 0) r.server_cpu_s_per_gb = r.server_cpu / (static_cast<double>(r.bytes) / 1e9);
    if (r.connection_s > 0) r.server_cpu_ms_per_conn_s = r.server_cpu * 1e3 / r.connection_s;
    if (r.server_packets_in > 0) r.server_cpu_us_per_packet = r.server_cpu * 1e6 / r.server_packets_in;
}

inline std::string self_exe() { return fs::read_symlink("/proc/self/exe").string(); }

inline std::chrono::milliseconds ms(double s) { return std::chrono::milliseconds(static_cast<long long>(s * 1000)); }

/// An h3co server child on 127.0.0.1:0; returns its port (0 on failure).
inline std::uint16_t start_h3co_server(const config& c, child_process& p) {
    std::vector<std::string> argv{self_exe(), "--role", "server", "--port", "0"};
    const auto flags = c.child_flags();
    argv.insert(argv.end(), flags.begin(), flags.end());
    p.spawn(argv, true);
    std::string line;
    if (!p.read_line(line, 10s) || line.rfind("PORT ", 0) != 0) return 0;
    return static_cast<std::uint16_t>(std::stoi(line.substr(5)));
}

/// gtlsserver on a free port (bind 0, release, retry on a clash); returns the port (0 on failure).
inline std::uint16_t start_gtls_server(const config& c, child_process& p, const std::string& log) {
    for (int attempt = 0; attempt < 5; ++attempt) {
        const auto port = free_udp_port();
        const std::vector<std::string> argv{c.gtlsserver, "--no-quic-dump", "--no-http-dump", "-q",
                                            "-d", c.tmpdir, "--max-dyn-length=" + std::to_string(c.bytes + 1),
                                            "127.0.0.1", std::to_string(port),
                                            c.cert_dir + "/server.key", c.cert_dir + "/server.pem"};
        p.spawn(argv, false, log);
        const auto deadline = clock_type::now() + 5s;
        while (clock_type::now() < deadline) {
            if (!p.running() || p.wait(0ms)) break;  // exited: the port was taken, try another
            if (udp_port_bound(port)) return port;
            std::this_thread::sleep_for(5ms);
        }
        if (p.running()) p.stop(1000ms);
    }
    return 0;
}

/// The link emulator child, forwarding to 127.0.0.1:`target`; returns the port clients use instead
/// (0 on failure).
inline std::uint16_t start_link(const config& c, std::uint16_t target, child_process& p) {
    std::vector<std::string> argv{self_exe(), "--role", "link", "--link-target", "127.0.0.1:" + std::to_string(target),
                                  "--port", "0", "--timeout", std::to_string(c.timeout_s)};
    const auto flags = c.link.args();
    argv.insert(argv.end(), flags.begin(), flags.end());
    p.spawn(argv, true);
    std::string line;
    if (!p.read_line(line, 10s) || line.rfind("PORT ", 0) != 0) return 0;
    return static_cast<std::uint16_t>(std::stoi(line.substr(5)));
}

inline row run_pair(const config& c, const std::string& workload, const std::string& client, const std::string& server, int run) {
    row r{.workload = workload, .client = client, .server = server, .run = run};
    const std::string log = c.tmpdir + "/h3co_bench." + std::to_string(::getpid()) + ".log";
    std::remove(log.c_str());
    child_process srv;
    const std::uint16_t port = server == "h3co" ? start_h3co_server(c, srv) : start_gtls_server(c, srv, log);
    if (port == 0) {
        r.error = server + " server did not start: " + read_text(log);
        return r;
    }
    // Where the client connects: the server, or the link emulator in front of it.
    child_process lnk;
    std::uint16_t to = port;
    if (c.link.given) {
        to = start_link(c, port, lnk);
        if (to == 0) {
            srv.stop(5000ms);
            r.error = "the link emulator did not start";
            return r;
        }
    }
    const std::string mode = workload;  // upload, download, parallel, clients, chunks, handshakes
    child_process cli;
    if (client == "h3co") {
        config cc = c;
        cc.port = to;
        std::vector<std::string> argv{self_exe(), "--role", "client", "--mode", mode, "--port", std::to_string(to)};
        const auto flags = cc.child_flags();
        argv.insert(argv.end(), flags.begin(), flags.end());
        cli.spawn(argv, true);
    } else {
        const std::string authority = "https://127.0.0.1:" + std::to_string(to);
        std::vector<std::string> argv{c.gtlsclient, "-q", "--no-quic-dump", "--no-http-dump", "--exit-on-all-streams-close",
                                      "--timeout=30s"};
        if (workload == "upload") {
            argv.insert(argv.end(), {"-m", "POST", "-d", c.tmpdir + "/h3co_bench_upload.bin", "127.0.0.1",
                                     std::to_string(to), authority + "/0"});
        } else {
            argv.insert(argv.end(), {"127.0.0.1", std::to_string(to), authority + "/" + std::to_string(c.bytes)});
        }
        cli.spawn(argv, false, log);
    }
    if (!cli.wait(ms(c.timeout_s))) {
        cli.stop(1000ms);
        r.error = "client timed out";
    }
    srv.stop(5000ms);
    if (c.link.given) {
        lnk.stop(5000ms);
        r.link = json_record::parse(lnk.json_line());
        r.link_cpu = lnk.cpu_seconds();
        if (!r.link.has("role") && r.error.empty()) r.error = "no report from the link emulator";
    }
    r.wall_s = cli.wall_seconds();
    r.client_cpu = cli.cpu_seconds();
    r.client_rss_kib = cli.max_rss_kib();
    r.server_cpu = srv.cpu_seconds();
    r.server_rss_kib = srv.max_rss_kib();
    r.ok = cli.exited_ok() && r.error.empty();
    if (client == "h3co") {
        const auto j = json_record::parse(cli.json_line());
        r.client_report = j;
        if (!j.has("role")) r.ok = false;
        if (j.num("ok", 0) != 1) r.ok = false;
        if (!j.str("error").empty()) r.error = j.str("error");
        r.bytes = static_cast<std::uint64_t>(j.num("bytes", 0));
        // The child's own numbers (getrusage RUSAGE_SELF) agree with wait4's; wall: the child's
        // transfer time in the h3co-only modes, the process lifetime in `compare` (as for gtlsclient).
        if (c.mode != "compare") {
            r.wall_s = j.num("wall_s");
            r.client_cpu = j.num("cpu_s");
            r.client_rss_kib = j.num("maxrss_kib");
        }
        r.hs_per_s = j.num("handshakes_per_s");
        r.connection_s = c.mode == "compare" ? r.wall_s : j.num("connection_s", r.wall_s);
        if (workload == "handshakes") r.wall_s = j.num("wall_s");
        if (workload == "ttfb") r.notes = j.str("ttfb_notes");
    } else {
        r.bytes = c.bytes;  // gtlsclient exits 0 only after its stream closed cleanly
        r.connection_s = r.wall_s;  // one connection, for the process's life
    }
    if (server == "h3co") {
        const auto j = json_record::parse(srv.json_line());
        r.server_report = j;
        if (!j.has("role")) {
            r.ok = false;
            if (r.error.empty()) r.error = "no report from the h3co server";
        } else {
            if (c.mode != "compare") {
                r.server_cpu = j.num("cpu_s");
                r.server_rss_kib = j.num("maxrss_kib");
            }
            if (workload == "upload" && j.num("bytes_in", 0) != static_cast<double>(c.bytes)) {
                r.ok = false;
                r.error = "server received " + std::to_string(j.num("bytes_in", 0)) + " bytes";
            }
            r.lat_count = j.num("lat_count");
            r.lat_p50 = j.num("lat_p50_us");
            r.lat_p99 = j.num("lat_p99_us");
            r.lat_max = j.num("lat_max_us");
            // Counted per x-bench-connection tag: only the bulk workloads tag each connection.
            if (workload == "upload" || workload == "download" || workload == "parallel" || workload == "clients")
                r.server_packets_in = j.num("packets_in");
        }
    } else if (r.link.has("up_forwarded")) {  // gtlsserver: what reached its socket through the emulator
        r.server_packets_in = r.link.num("up_forwarded") - r.link.num("up_peer_drops", 0);
    }
    if (!r.ok && r.error.empty()) {
        r.error = "client failed (status " + std::to_string(cli.status()) + ")";
        if (client == "gtls") r.error += ": " + read_text(log, 1500);
    }
    if (workload != "handshakes" && workload != "chunks" && r.wall_s > 0)
        r.mbps = static_cast<double>(r.bytes) / r.wall_s / 1e6;
    if (r.ok) server_cost(r);
    std::remove(log.c_str());
    return r;
}

inline row median_row(const std::vector<row>& rows) {
    row m = rows.front();
    m.run = 0;
    m.link = {};  // the emulator's counters are per run
    m.client_report = m.server_report = {};
    if (rows.front().server_report.has("workers")) {  // --workers: the first run's spread, for the notes
        for (const char* k : {"workers", "handoffs", "kernel_steering"}) m.server_report.set(k, rows.front().server_report.num(k));
        m.server_report.set("spread", rows.front().server_report.str("spread"));
    }
    auto med = [&](double row::*f) {
        std::vector<double> v;
        for (const auto& r : rows)
            if (r.ok) v.push_back(r.*f);
        return median(v);
    };
    m.ok = std::any_of(rows.begin(), rows.end(), [](const row& r) { return r.ok; });
    for (const auto& r : rows)
        if (!r.ok && m.error.empty()) m.error = r.error;
    for (auto f : {&row::wall_s, &row::mbps, &row::client_cpu, &row::server_cpu, &row::client_rss_kib, &row::server_rss_kib,
                   &row::lat_p50, &row::lat_p99, &row::lat_max, &row::lat_count, &row::hs_per_s, &row::link_cpu,
                   &row::server_packets_in, &row::connection_s, &row::server_cpu_s_per_gb, &row::server_cpu_ms_per_conn_s,
                   &row::server_cpu_us_per_packet})
        m.*f = med(f);
    return m;
}

}  // namespace bench
