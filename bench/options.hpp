// h3co_bench's command line: the configuration every mode and child reads (config), the --help
// text (the map of modes and flags) and its parsing. A child gets the orchestrator's configuration
// back through config::child_flags().
#pragma once

#include "link_flags.hpp"

#include <h3co/h3co.hpp>

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
inline constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// ---------------------------------------------------------------------------------------------
// Configuration

struct config {
    std::string mode = "all";  // upload download parallel clients chunks handshakes all compare
    std::string role;          // "" (orchestrator), "server", "client"
    std::uint64_t bytes = 1ull << 30;
    std::size_t write_size = 64 * 1024;
    int streams = 16;
    int clients = 16;
    int workers = 1;  // server side: threads, each with an io_context (a server on several workers)
    std::string direction = "up";  // parallel and clients: up or down
    std::string body = "direct";   // upload: direct stream writes, or a pipe (see --body)
    int chunk_count = 5000;
    double chunk_rate = 1000;  // chunks per second
    std::size_t chunk_size = 1024;
    int handshakes = 200;
    int runs = 1;
    std::uint16_t port = 0;
    std::string cert_dir = H3CO_BENCH_CERT_DIR;
    std::string format = "table";  // table csv json
    double timeout_s = 600;
    std::string gtlsserver = H3CO_BENCH_GTLSSERVER;
    std::string gtlsclient = H3CO_BENCH_GTLSCLIENT;
    std::string pairs = "h3co-h3co,gtls-gtls,gtls-h3co,h3co-gtls";  // client-server
    std::string directions = "upload,download";
    std::string tmpdir;
    // connection_options knobs, applied to both h3co sides (0 = library default)
    std::size_t udp_payload = 0, send_buffer = 0, stream_window = 0, conn_window = 0;
    std::size_t max_stream_window = 0, max_conn_window = 0, max_send_buffer = 0, max_conn_send_buffer = 0;
    std::string cc;  // congestion control: reno, cubic, bbr, bbr2 ("": library default)
    std::size_t gso = 0, socket_buffer = SIZE_MAX, sendmmsg = 0, recvmmsg = 0;
    int gro = -1, ecn = -1;  // -1: library default
    std::size_t ack_threshold = 0;  // 0: library default
    // The emulated link (--link-*); with any of them given, every pair runs through it.
    bench::link::link_flags link;
    std::string link_target;       // role/mode link: HOST:PORT the emulator forwards to
    double selftest_seconds = 2;   // link-selftest: seconds of sending per phase
    std::size_t datagram = 1200;   // link-selftest: datagram size
    std::string offer;             // link-selftest: one offered rate instead of 90 % and 110 % of the link's
    // flood mode (--flood*, --sources, --validate): forged Initials against the server's limits
    int flood_count = 20000;   // distinct forged Initials
    double flood_rate = 0;     // Initials per second; 0: as fast as one core sends them
    int flood_sources = 256;   // source addresses (127.1.x.y) they come from
    std::string validate = "default";  // server_options::address_validation: default busy always never
    bool bytes_given = false;

    h3co::connection_options options() const {
        h3co::connection_options o;
        if (udp_payload) o.max_udp_payload = udp_payload;
        if (send_buffer) o.stream_send_buffer = send_buffer;
        if (stream_window) o.stream_receive_window = stream_window;
        if (conn_window) o.connection_receive_window = conn_window;
        if (max_stream_window) o.max_stream_receive_window = max_stream_window;
        if (max_conn_window) o.max_connection_receive_window = max_conn_window;
        if (max_send_buffer) o.max_stream_send_buffer = max_send_buffer;
        if (max_conn_send_buffer) o.max_connection_send_buffer = max_conn_send_buffer;
        if (cc == "reno") o.congestion_control = h3co::congestion_control::reno;
        else if (cc == "cubic") o.congestion_control = h3co::congestion_control::cubic;
        else if (cc == "bbr") o.congestion_control = h3co::congestion_control::bbr;
        else if (cc == "bbr2") o.congestion_control = h3co::congestion_control::bbr2;
        else if (!cc.empty()) throw std::invalid_argument("unknown --cc " + cc + " (reno, cubic, bbr, bbr2)");
        if (gso) o.udp_gso_segments = gso;
        if (socket_buffer != SIZE_MAX) o.socket_buffer = socket_buffer;
        if (gro >= 0) o.udp_gro = gro != 0;
        if (sendmmsg) o.udp_sendmmsg_messages = sendmmsg;
        if (recvmmsg) o.udp_recvmmsg_messages = recvmmsg;
        if (ecn >= 0) o.ecn = ecn != 0;
        if (ack_threshold) o.ack_threshold = ack_threshold;
        o.idle_timeout = 60s;
        return o;
    }

    /// The flags a child needs to repeat this configuration.
    std::vector<std::string> child_flags() const {
        return {"--bytes",      std::to_string(bytes),         "--write-size",   std::to_string(write_size),
                "--streams",    std::to_string(streams),       "--clients",      std::to_string(clients),
                "--workers",    std::to_string(workers),
                "--direction",  direction,     "--body",         body,
                "--count",      std::to_string(chunk_count),   "--rate",         std::to_string(chunk_rate),
                "--chunk-size", std::to_string(chunk_size),    "--handshakes",   std::to_string(handshakes),
                "--cert-dir",   cert_dir,                      "--timeout",      std::to_string(timeout_s),
                "--udp-payload", std::to_string(udp_payload),  "--send-buffer",  std::to_string(send_buffer),
                "--stream-window", std::to_string(stream_window), "--conn-window", std::to_string(conn_window),
                "--gso",        std::to_string(gso), "--socket-buffer",
                socket_buffer == SIZE_MAX ? std::string("default") : std::to_string(socket_buffer),
                "--gro",        std::to_string(gro), "--ecn", std::to_string(ecn),
                "--sendmmsg",   std::to_string(sendmmsg), "--recvmmsg", std::to_string(recvmmsg),
                "--ack-threshold", std::to_string(ack_threshold),
                "--max-stream-window", std::to_string(max_stream_window), "--max-conn-window", std::to_string(max_conn_window),
                "--max-send-buffer", std::to_string(max_send_buffer), "--max-conn-send-buffer", std::to_string(max_conn_send_buffer),
                "--cc", cc.empty() ? "default" : cc,
                "--flood",      std::to_string(flood_count), "--flood-rate", std::to_string(flood_rate),
                "--sources",    std::to_string(flood_sources), "--validate", validate};
    }
};

inline std::uint64_t parse_size(const std::string& s) {
    std::size_t pos = 0;
    const double v = std::stod(s, &pos);
    std::string unit = s.substr(pos);
    double mult = 1;
    if (unit == "K" || unit == "k" || unit == "KiB") mult = 1024.0;
    else if (unit == "M" || unit == "m" || unit == "MiB") mult = 1024.0 * 1024;
    else if (unit == "G" || unit == "g" || unit == "GiB") mult = 1024.0 * 1024 * 1024;
    else if (!unit.empty()) throw std::invalid_argument("bad size " + s);
    return static_cast<std::uint64_t>(v * mult);
}

inline const char* usage_text = R"(h3co_bench: HTTP/3 on loopback, h3co against itself and against ngtcp2's example peers.

usage: h3co_bench MODE [flags]
modes:
  upload       one POST of --bytes on a single stream (client -> server)
  download     one GET of --bytes on a single stream (server -> client)
  parallel     --streams streams on one connection, --bytes in total (--direction up|down)
  clients      --clients connections (each its own UDP socket) from one client process to the one
               server, one stream each, at the same time; --bytes in total (--direction up|down).
               With --link-*: many slow connections. Every transfer mode also reports the
               server's CPU per GB, per connection-second and per datagram it received
  chunks       --count writes of --chunk-size bytes at --rate per second; latency from the
               client's write to the server handler's read (timestamp inside each chunk)
  handshakes   --handshakes sequential connections (handshake, then close): handshakes/s
  ttfb         time to the first response byte of GET /1 on a new connection, p50 of --handshakes
               each: full handshake, resumed (session ticket), 0-RTT (use with --link-rtt 50ms)
  all          all of the above (default)
  compare      h3co and gtls clients x servers, upload and download of --bytes, --runs times,
               pairs alternated; medians and h3co/gtls ratios
  link         the link emulator alone: forwards from 127.0.0.1:--port (0: any; printed) to
               --link-target HOST:PORT (loopback) until SIGINT/SIGTERM or --timeout
  flood        --flood forged client Initials (real ClientHellos under fresh connection IDs, never
               answered) from --sources addresses, as fast as one core sends them (or at
               --flood-rate), against a server with the library's default limits, while a real
               client keeps making handshakes and uploads --bytes (default 16 MiB here): server
               memory per forged Initial, half-open handshakes, Retry packets, legitimate
               handshakes/s before and during the flood
  link-selftest  UDP datagrams through the emulator at 90 % and 110 % of --link-rate (or at --offer):
               delivered rate, one-way delay p50/p99, drops, the emulator's lateness and CPU
flags:
  --bytes N          transfer size, with K/M/G suffix (default 1G)
  --write-size N     client/server write() size (default 64K)
  --streams N        parallel streams (default 16)
  --clients N        clients: connections at once (default 16)
  --workers N        the h3co server on N workers (threads, each with an io_context; default 1)
  --direction D      parallel, clients: up or down (default up)
  --body B           upload: direct (stream writes), pipe (a producer writes into a pipe_reader
                     body: one copy, writer's buffer to send buffer) or pipe-copy (the same pipe
                     read as a plain AsyncReadStream: copied into the pipe and a read buffer first)
  --count N          chunks to send (default 5000)
  --rate R           chunks per second (default 1000)
  --chunk-size N     bytes per chunk, >= 8 (default 1024)
  --handshakes N     handshakes to time (default 200)
  --runs N           repetitions; medians are reported (default 1; compare: 3)
  --csv | --json     machine-readable output instead of the table
  --timeout S        limit per child process in seconds (default 600)
  --cert-dir DIR     ca.pem, server.pem, server.key (default: the build's bench-certs)
  --udp-payload N    connection_options::max_udp_payload for both h3co sides (0: default)
  --send-buffer N    connection_options::stream_send_buffer (0: default)
  --gso N            connection_options::udp_gso_segments, packets per GSO send; 1: off (0: default)
  --socket-buffer N  connection_options::socket_buffer, SO_RCVBUF/SO_SNDBUF (default: library's)
  --gro 0|1          connection_options::udp_gro, coalesced receives with UDP GRO (default: library's, on)
  --ecn 0|1          connection_options::ecn, ECN marks sent and read (default: library's, on)
  --sendmmsg N       connection_options::udp_sendmmsg_messages, GSO runs or datagrams per sendmmsg; 1: off (0: default)
  --recvmmsg N       connection_options::udp_recvmmsg_messages, messages per recvmmsg; 1: off (0: default)
  --ack-threshold N  connection_options::ack_threshold, ack-eliciting packets per immediate ACK (0: default)
  --stream-window N  connection_options::stream_receive_window (0: default)
  --conn-window N    connection_options::connection_receive_window (0: default)
  --max-stream-window N / --max-conn-window N   connection_options::max_stream_receive_window /
                     max_connection_receive_window: how far the receive windows grow (0: default)
  --max-send-buffer N / --max-conn-send-buffer N   connection_options::max_stream_send_buffer /
                     max_connection_send_buffer (0: default)
  --cc ALG           connection_options::congestion_control: reno, cubic, bbr, bbr2 (default: library's)
  --pairs LIST       compare: client-server pairs (default h3co-h3co,gtls-gtls,gtls-h3co,h3co-gtls)
  --directions LIST  compare: upload,download (default both)
  --gtlsserver PATH / --gtlsclient PATH   the ngtcp2 example peers
  --tmpdir DIR       compare: where the upload file for gtlsclient goes (default: $TMPDIR or /tmp)
link emulator (any of these: every pair runs through it; each direction gets the same settings):
  --flood N          flood: forged Initials, all distinct (default 20000)
  --flood-rate R     flood: Initials per second (default 0: as fast as one core sends)
  --sources N        flood: source addresses 127.1.x.y the Initials come from (default 256)
  --validate V       flood: server_options::address_validation busy|always|never (default: the library's)
  --link-rtt D       round-trip propagation delay, half each way (default 0), e.g. 50ms
  --link-rate R      bottleneck rate each way, e.g. 500kbit, 100mbit, 1gbit (default 0: none)
  --link-queue Q     bottleneck queue limit: 1bdp (default; rate x RTT, at least 64 KiB), 0.5bdp,
                     50ms (of the rate), 100p (packets), 256K (bytes), none
  --link-loss P      random loss per datagram, e.g. 1% or 0.01 (default 0)
  --link-jitter D    extra delay, uniform in [0, D] (never reorders) (default 0)
  --link-reorder P   share of datagrams held back --link-reorder-gap (default 1ms) so later ones
                     overtake them (default 0)
  --link-seed N      seed of the emulator's random choices (default 20241201)
  --link-tick D      under steady traffic the emulator wakes once per D: a datagram leaves up to
                     D after its time, never before (default 100us; 0: for every datagram)
  --link-target H:P  link mode: where to forward
  --seconds S        link-selftest: seconds of sending per phase (default 2)
  --datagram N       link-selftest: datagram size (default 1200)
  --offer R          link-selftest: one phase at this offered rate (e.g. 3gbit; with --link-rate 0:
                     how fast the emulator relays without a bottleneck)
  --gso N            link-selftest: the test sender hands the kernel N datagrams per send (UDP GSO,
                     as h3co sends; default 1)
MB/s is 10^6 bytes per second of body, over the client's wall time (first connect to last byte).
)";

inline config parse_args(int argc, char** argv) {
    config c;
    bool runs_given = false;
    int i = 1;
    if (argc > 1 && argv[1][0] != '-') c.mode = argv[i++];
    for (; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument("missing value for " + a);
            return argv[++i];
        };
        if (a == "--help" || a == "-h") {
            std::cout << usage_text;
            std::exit(0);
        } else if (a == "--role") c.role = value();
        else if (a == "--mode") c.mode = value();
        else if (a == "--bytes") { c.bytes = parse_size(value()); c.bytes_given = true; }
        else if (a == "--write-size") c.write_size = parse_size(value());
        else if (a == "--body") c.body = value();
        else if (a == "--streams") c.streams = std::stoi(value());
        else if (a == "--clients") c.clients = std::stoi(value());
        else if (a == "--workers") c.workers = std::stoi(value());
        else if (a == "--direction") c.direction = value();
        else if (a == "--count") c.chunk_count = std::stoi(value());
        else if (a == "--rate") c.chunk_rate = std::stod(value());
        else if (a == "--chunk-size") c.chunk_size = parse_size(value());
        else if (a == "--handshakes") c.handshakes = std::stoi(value());
        else if (a == "--runs") { c.runs = std::stoi(value()); runs_given = true; }
        else if (a == "--port") c.port = static_cast<std::uint16_t>(std::stoi(value()));
        else if (a == "--cert-dir") c.cert_dir = value();
        else if (a == "--csv") c.format = "csv";
        else if (a == "--json") c.format = "json";
        else if (a == "--timeout") c.timeout_s = std::stod(value());
        else if (a == "--gtlsserver") c.gtlsserver = value();
        else if (a == "--gtlsclient") c.gtlsclient = value();
        else if (a == "--pairs") c.pairs = value();
        else if (a == "--directions") c.directions = value();
        else if (a == "--tmpdir") c.tmpdir = value();
        else if (a == "--udp-payload") c.udp_payload = parse_size(value());
        else if (a == "--send-buffer") c.send_buffer = parse_size(value());
        else if (a == "--stream-window") c.stream_window = parse_size(value());
        else if (a == "--max-stream-window") c.max_stream_window = parse_size(value());
        else if (a == "--max-conn-window") c.max_conn_window = parse_size(value());
        else if (a == "--max-send-buffer") c.max_send_buffer = parse_size(value());
        else if (a == "--max-conn-send-buffer") c.max_conn_send_buffer = parse_size(value());
        else if (a == "--cc") { c.cc = value(); if (c.cc == "default") c.cc.clear(); }
        else if (a == "--conn-window") c.conn_window = parse_size(value());
        else if (a == "--gso") c.gso = parse_size(value());
        else if (a == "--socket-buffer") {
            // "default" (what a child is passed when the flag was absent): the library's size.
            // Passing SIZE_MAX as a number instead went through a double and came back as 0 or
            // 2^63, so every h3co child ran with the system's default buffers.
            const std::string v = value();
            c.socket_buffer = v == "default" ? SIZE_MAX : parse_size(v);
        }
        else if (a == "--gro") c.gro = std::stoi(value());
        else if (a == "--ecn") c.ecn = std::stoi(value());
        else if (a == "--sendmmsg") c.sendmmsg = parse_size(value());
        else if (a == "--recvmmsg") c.recvmmsg = parse_size(value());
        else if (a == "--ack-threshold") c.ack_threshold = parse_size(value());
        else if (a == "--link-target") c.link_target = value();
        else if (a == "--seconds") c.selftest_seconds = std::stod(value());
        else if (a == "--datagram") c.datagram = parse_size(value());
        else if (a == "--offer") c.offer = value();
        else if (a == "--flood") c.flood_count = std::stoi(value());
        else if (a == "--flood-rate") c.flood_rate = std::stod(value());
        else if (a == "--sources") c.flood_sources = std::stoi(value());
        else if (a == "--validate") c.validate = value();
        else if (a.rfind("--link-", 0) == 0) {
            const std::string v = value();
            if (!c.link.set(a, v)) throw std::invalid_argument("unknown flag " + a);
        }
        else throw std::invalid_argument("unknown flag " + a);
    }
    if (c.mode == "compare" && !runs_given) c.runs = 3;
    if (c.flood_count < 1 || c.flood_rate < 0 || c.flood_sources < 1 || c.flood_sources > 250 * 250 ||
        (c.validate != "default" && c.validate != "busy" && c.validate != "always" && c.validate != "never"))
        throw std::invalid_argument("bad --flood, --flood-rate, --sources or --validate");
    if (c.chunk_size < 8) throw std::invalid_argument("--chunk-size must be >= 8");
    (void)c.link.resolve();  // a bad --link-* value fails here, not in a child
    if (c.selftest_seconds <= 0 || c.selftest_seconds > 600 || c.datagram < 16 || c.datagram > 65000)
        throw std::invalid_argument("bad --seconds or --datagram");
    if (c.write_size == 0 || c.streams < 1 || c.clients < 1 ||
        (c.body != "direct" && c.body != "pipe" && c.body != "pipe-copy") || c.runs < 1 || c.chunk_rate <= 0) throw std::invalid_argument("bad flag value");
    return c;
}

inline std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

}  // namespace bench
