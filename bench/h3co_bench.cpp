// h3co_bench: HTTP/3 throughput, chunk latency and handshake rate on loopback, h3co against itself
// and side by side with ngtcp2's example peers (gtlsserver / gtlsclient).
//
//   h3co_bench upload|download|parallel|clients|chunks|handshakes|all [flags]
//   h3co_bench compare [flags]           h3co and gtls clients x servers, upload and download
//   h3co_bench link --link-target H:P    the link emulator alone, in the foreground
//   h3co_bench link-selftest [flags]     UDP through the link emulator: delivered rate, delay, drops
//   h3co_bench flood [flags]             forged client Initials against the server's limits (issue 13)
//
// With any --link-* flag, every client talks to its server through the link emulator
// (link_emulator.hpp), which runs as a third child process (this program with --role link).
//
// Each workload runs the server in one process and the client in another (this program spawned
// with --role server / --role client), so CPU seconds and peak RSS are per side. A child reports
// its numbers (getrusage(RUSAGE_SELF)) as one line of JSON on stdout. `--help` lists the flags.
//
// Where things are (bench/README.md says what each mode measures):
//   options.hpp         the flags, --help and their parsing (config)
//   measure.hpp         JSON reports, rusage, percentiles, the shared clock, the body bytes
//   process.hpp         child processes: spawn, wait with a deadline, wait4 rusage, free ports
//   server.hpp          the server role (--role server)
//   client.hpp          what the client role's workloads share (connect, POST, GET, drain)
//   modes/*.hpp         one file per mode: upload, download, parallel, clients, chunks, handshakes,
//                       ttfb, compare, flood, link, link_selftest
//   run.hpp             one measured run of a workload (the children, their reports) and medians
//   output.hpp          the table, --csv and --json
//   orchestrate.hpp     the runs of a mode and their medians
//   link_model.hpp      the emulated link's model (loss, bottleneck, delay, jitter, reordering)
//   link_flags.hpp      the --link-* flags
//   link_emulator.hpp   the emulator's sockets (a UDP relay on loopback)
//   link_selftest.hpp   link-selftest's paced sender and stamping receiver
//   initial_forger.hpp  flood's forged Initials
#include "client.hpp"
#include "measure.hpp"
#include "modes/chunks.hpp"
#include "modes/clients.hpp"
#include "modes/download.hpp"
#include "modes/flood.hpp"
#include "modes/handshakes.hpp"
#include "modes/link.hpp"
#include "modes/link_selftest.hpp"
#include "modes/parallel.hpp"
#include "modes/ttfb.hpp"
#include "modes/upload.hpp"
#include "options.hpp"
#include "orchestrate.hpp"
#include "server.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>

namespace bench {

/// The client role (--role client): runs --mode's workload (modes/*.hpp), then prints one JSON line.
int run_client(const config& c) {
    asio::io_context io(1);
    client_result r;
    std::string error;
    bool done = false;
    const auto start = clock_type::now();
    auto work = [&]() -> asio::awaitable<void> {
        if (c.mode == "upload") co_await client_upload(c, r);
        else if (c.mode == "download") co_await client_download(c, r);
        else if (c.mode == "parallel") co_await client_parallel(c, r);
        else if (c.mode == "clients") co_await client_clients(c, r);
        else if (c.mode == "chunks") co_await client_chunks(c, r);
        else if (c.mode == "handshakes") co_await client_handshakes(c, r);
        else if (c.mode == "ttfb") co_await client_ttfb(c, r);
        else if (c.mode == "flood") co_await client_flood(c, r);
        else throw std::invalid_argument("unknown mode " + c.mode);
    };
    asio::co_spawn(io, work(), [&](std::exception_ptr e) {
        r.transfer_s = seconds_since(start);
        done = true;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                error = ex.what();
            }
        }
    });
    const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(c.timeout_s));
    while (!done && clock_type::now() < deadline) {
        io.restart();
        io.run_for(100ms);
    }
    if (!done) error = "timed out";
    io.restart();
    io.run_for(5ms);  // CONNECTION_CLOSE goes out
    json_record out;
    out.set("role", "client");
    out.set("mode", c.mode);
    out.set("ok", error.empty() && (r.status == 200) ? 1.0 : 0.0);
    if (!error.empty()) out.set("error", error);
    out.set("status", r.status);
    out.set("bytes", static_cast<double>(r.bytes));
    out.set("wall_s", r.transfer_s);
    // Connection-seconds: the modes with one connection had it open for the whole run.
    out.set("connection_s", r.connection_s > 0 ? r.connection_s : r.transfer_s);
    if (c.mode == "handshakes") {
        out.set("handshakes", r.handshakes);
        out.set("handshakes_per_s", r.transfer_s > 0 ? r.handshakes / r.transfer_s : NAN);
    }
    if (g_client_stats) add_connection_stats(out, *g_client_stats);
    if (c.mode == "flood") g_flood_client.report(out);
    if (c.mode == "ttfb") g_ttfb.report(out);
    add_self_usage(out);
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
    return error.empty() && r.status == 200 ? 0 : 1;
}

}  // namespace bench

int main(int argc, char** argv) {
    try {
        const bench::config c = bench::parse_args(argc, argv);
        if (c.role == "server") return bench::run_server(c);
        if (c.role == "client") return bench::run_client(c);
        if (c.role == "link" || (c.role.empty() && c.mode == "link")) return bench::run_link(c);
        if (c.role == "flooder") return bench::run_flooder(c);
        if (!c.role.empty()) throw std::invalid_argument("unknown role " + c.role);
        if (c.mode == "link-selftest") return bench::run_link_selftest(c);
        return bench::orchestrate(c);
    } catch (const std::exception& e) {
        std::cerr << "h3co_bench: " << e.what() << "\n(--help lists the modes and flags)\n";
        return 2;
    }
}
