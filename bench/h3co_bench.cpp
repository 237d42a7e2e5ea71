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
#include <h3co/h3co.hpp>

#include "initial_forger.hpp"
#include "link_emulator.hpp"
#include "link_selftest.hpp"
#include "process.hpp"

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <sys/prctl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using bench::clock_type;
constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

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
                "--gso",        std::to_string(gso), "--socket-buffer", std::to_string(socket_buffer),
                "--gro",        std::to_string(gro), "--ecn", std::to_string(ecn),
                "--sendmmsg",   std::to_string(sendmmsg), "--recvmmsg", std::to_string(recvmmsg),
                "--max-stream-window", std::to_string(max_stream_window), "--max-conn-window", std::to_string(max_conn_window),
                "--max-send-buffer", std::to_string(max_send_buffer), "--max-conn-send-buffer", std::to_string(max_conn_send_buffer),
                "--cc", cc.empty() ? "default" : cc,
                "--flood",      std::to_string(flood_count), "--flood-rate", std::to_string(flood_rate),
                "--sources",    std::to_string(flood_sources), "--validate", validate};
    }
};

std::uint64_t parse_size(const std::string& s) {
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

const char* usage_text = R"(h3co_bench: HTTP/3 on loopback, h3co against itself and against ngtcp2's example peers.

usage: h3co_bench MODE [flags]
modes:
  upload       one POST of --bytes on a single stream (client -> server)
  download     one GET of --bytes on a single stream (server -> client)
  parallel     --streams streams on one connection, --bytes in total (--direction up|down)
  clients      --clients connections (each its own UDP socket) from one client process to the one
               server, one stream each, at the same time; --bytes in total (--direction up|down)
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

config parse_args(int argc, char** argv) {
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
        else if (a == "--socket-buffer") c.socket_buffer = parse_size(value());
        else if (a == "--gro") c.gro = std::stoi(value());
        else if (a == "--ecn") c.ecn = std::stoi(value());
        else if (a == "--sendmmsg") c.sendmmsg = parse_size(value());
        else if (a == "--recvmmsg") c.recvmmsg = parse_size(value());
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

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

// ---------------------------------------------------------------------------------------------
// A flat JSON object: what children print, and what the orchestrator reads back.

class json_record {
public:
    void set(const std::string& k, double v) { num_[k] = v; order(k); }
    void set(const std::string& k, const std::string& v) { str_[k] = v; order(k); }
    double num(const std::string& k, double def = NAN) const {
        auto it = num_.find(k);
        return it == num_.end() ? def : it->second;
    }
    std::string str(const std::string& k) const {
        auto it = str_.find(k);
        return it == str_.end() ? std::string{} : it->second;
    }
    bool has(const std::string& k) const { return num_.count(k) || str_.count(k); }
    const std::vector<std::string>& keys() const { return keys_; }
    /// The value of `k` as a CSV field.
    std::string field(const std::string& k) const {
        if (auto it = str_.find(k); it != str_.end()) return it->second;
        const double v = num(k);
        if (std::isnan(v)) return {};
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        return buf;
    }

    std::string dump() const {
        std::string out = "{";
        for (const auto& k : keys_) {
            if (out.size() > 1) out += ",";
            out += "\"" + k + "\":";
            if (auto it = num_.find(k); it != num_.end()) {
                char buf[64];
                if (std::isnan(it->second)) std::snprintf(buf, sizeof buf, "null");
                else std::snprintf(buf, sizeof buf, "%.17g", it->second);
                out += buf;
            } else {
                out += "\"" + escape(str_.at(k)) + "\"";
            }
        }
        return out + "}";
    }

    /// Parses what dump() writes (flat: strings, numbers, null, true/false).
    static json_record parse(const std::string& s) {
        json_record r;
        std::size_t i = s.find('{');
        if (i == std::string::npos) return r;
        ++i;
        auto skip = [&] { while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i; };
        auto string_at = [&]() {
            std::string out;
            ++i;  // opening quote
            while (i < s.size() && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < s.size()) ++i;
                out += s[i++];
            }
            ++i;
            return out;
        };
        for (;;) {
            skip();
            if (i >= s.size() || s[i] != '"') break;
            const std::string key = string_at();
            if (i >= s.size() || s[i] != ':') break;
            ++i;
            if (i < s.size() && s[i] == '"') {
                r.set(key, string_at());
            } else {
                const std::size_t end = s.find_first_of(",}", i);
                const std::string tok = s.substr(i, end - i);
                if (tok == "true") r.set(key, 1.0);
                else if (tok == "false") r.set(key, 0.0);
                else if (tok == "null") r.set(key, NAN);
                else r.set(key, std::strtod(tok.c_str(), nullptr));
                i = end;
            }
        }
        return r;
    }

private:
    static std::string escape(const std::string& s) {
        std::string out;
        for (char ch : s) {
            if (ch == '"' || ch == '\\') out += '\\';
            if (ch == '\n') { out += "\\n"; continue; }
            out += ch;
        }
        return out;
    }
    void order(const std::string& k) {
        if (std::find(keys_.begin(), keys_.end(), k) == keys_.end()) keys_.push_back(k);
    }
    std::map<std::string, double> num_;
    std::map<std::string, std::string> str_;
    std::vector<std::string> keys_;
};

void add_self_usage(json_record& r) {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    r.set("utime_s", bench::tv_seconds(ru.ru_utime));
    r.set("stime_s", bench::tv_seconds(ru.ru_stime));
    r.set("cpu_s", bench::tv_seconds(ru.ru_utime) + bench::tv_seconds(ru.ru_stime));
    r.set("maxrss_kib", static_cast<double>(ru.ru_maxrss));
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    const auto idx = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) ;
    return v[std::min(v.size() - 1, idx == 0 ? 0 : idx - 1)];
}

double median(std::vector<double> v) {
    v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    const auto n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count());
}

/// Body bytes: a fixed pattern (no compression anywhere in HTTP/3, so its content does not matter).
const std::vector<char>& payload(std::size_t size) {
    static std::vector<char> data;
    if (data.size() < size) {
        data.resize(size);
        for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + (i * 7919) % 26);
    }
    return data;
}

// ---------------------------------------------------------------------------------------------
// Server role: serves the same URLs as gtlsserver does for the bench.
//   GET /N            N body bytes (gtlsserver: dynamic content of length N)
//   POST /anything    reads and counts the body, then answers 200 with no body
//   POST /chunks      as POST, and records each chunk's write-to-read latency

/// The connection's numbers at the end of a transfer, as JSON fields of a child's report: what
/// limited a run (RTT, congestion window, losses, how far the windows and send buffers grew).
void add_connection_stats(json_record& r, const h3co::connection_stats& s) {
    r.set("srtt_ms", static_cast<double>(s.smoothed_rtt.count()) / 1e6);
    r.set("min_rtt_ms", static_cast<double>(s.min_rtt.count()) / 1e6);
    r.set("cwnd", static_cast<double>(s.congestion_window));
    r.set("lost", static_cast<double>(s.packets_lost));
    r.set("packets_sent", static_cast<double>(s.packets_sent));
    r.set("stream_window", static_cast<double>(s.stream_receive_window));
    r.set("conn_window", static_cast<double>(s.connection_receive_window));
    r.set("send_buffer", static_cast<double>(s.stream_send_buffer));
    r.set("cc", h3co::to_string(s.algorithm));
}

struct server_stats {
    std::uint64_t bytes_in = 0, bytes_out = 0, requests = 0, errors = 0;
    std::vector<double> latency_us;
    std::size_t chunk_size = 1024;
    std::size_t write_size = 64 * 1024;
    std::optional<h3co::connection_stats> connection;  ///< the last request's connection, when it ended
};
/// Each server worker thread counts into its own (run_server sums them): no sharing between workers.
thread_local server_stats* t_server = nullptr;

asio::awaitable<void> serve_chunks(h3co::server_request& req) {
    std::vector<char> chunk(t_server->chunk_size);
    std::size_t have = 0;
    for (;;) {
        auto [ec, n] = co_await req.read_some(asio::buffer(chunk.data() + have, chunk.size() - have), as_tuple);
        have += n;
        t_server->bytes_in += n;
        if (have == chunk.size()) {
            const std::uint64_t now = now_ns();
            std::uint64_t sent = 0;
            std::memcpy(&sent, chunk.data(), sizeof sent);
            t_server->latency_us.push_back(static_cast<double>(now - sent) / 1000.0);
            have = 0;
        }
        if (ec) {
            if (ec != h3co::error::eof) ++t_server->errors;
            co_return;
        }
    }
}

asio::awaitable<void> serve(h3co::server_request& req, h3co::response& res) {
    ++t_server->requests;
    const std::string path = req.path();
    if (req.method() == "POST" || req.method() == "PUT") {
        if (path == "/chunks") {
            co_await serve_chunks(req);
        } else {
            std::vector<char> buf(64 * 1024);
            for (;;) {
                auto [ec, n] = co_await req.read_some(asio::buffer(buf), as_tuple);
                t_server->bytes_in += n;
                if (ec) {
                    if (ec != h3co::error::eof) {
                        ++t_server->errors;
                        co_return;
                    }
                    break;
                }
            }
        }
        t_server->connection = req.connection_stats();
        const h3co::fields fields{{"content-length", "0"}};
        co_await res.send_header(200, fields);
        co_return;
    }
    std::uint64_t n = 0;
    bool number = path.size() > 1;
    for (std::size_t i = 1; i < path.size(); ++i) {
        if (path[i] < '0' || path[i] > '9') { number = false; break; }
        n = n * 10 + static_cast<std::uint64_t>(path[i] - '0');
    }
    if (!number) {
        co_await res.send_header(404);
        co_return;
    }
    const h3co::fields fields{{"content-length", std::to_string(n)}};
    co_await res.send_header(200, fields);
    const auto& data = payload(t_server->write_size);
    while (n > 0) {
        const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(n, data.size()));
        auto [ec, written] = co_await res.write(asio::buffer(data.data(), k), as_tuple);
        if (ec) {
            ++t_server->errors;
            co_return;
        }
        t_server->bytes_out += written;
        n -= written;
    }
    t_server->connection = req.connection_stats();  // before finish(): the client may close right after
    co_await res.finish();
}

// ---------------------------------------------------------------------------------------------
// Flood mode, server side: the library's default limits (what a user who copies an example gets),
// and what they did.

/// The flood runs against the library's defaults (--validate overrides the address validation).
/// The throughput workloads get no connection or handler caps: all their clients come from
/// 127.0.0.1, and what they measure is speed.
h3co::server_options server_limits(const config& c) {
    h3co::server_options limits;
    if (c.mode != "flood") {
        limits.max_connections = 0;
        limits.max_connections_per_address = 0;
        limits.max_running_handlers = 0;
        limits.max_running_handlers_per_address = 0;
        limits.early_data = true;  // ttfb's 0-RTT; the other workloads' clients keep no tickets
        return limits;
    }
    if (c.validate == "busy") limits.address_validation = h3co::address_validation::when_busy;
    if (c.validate == "always") limits.address_validation = h3co::address_validation::always;
    if (c.validate == "never") limits.address_validation = h3co::address_validation::never;
    return limits;
}

long status_kib(const char* key) {
    std::ifstream status("/proc/self/status");
    std::string line;
    const std::string prefix = std::string(key) + ":";
    while (std::getline(status, line))
        if (line.rfind(prefix, 0) == 0) return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
    return -1;
}

/// Samples the server's load every 10 ms during a flood (half-open handshakes and connections at
/// most); reports them with its counters and its resident memory at the start and at the end.
class flood_server_probe {
public:
    flood_server_probe(asio::io_context& io, h3co::server& server, bool on)
        : server_(server), timer_(io), on_(on), rss_start_(status_kib("VmRSS")) {
        if (on_) sample();
    }

    void report(json_record& r) const {
        if (!on_) return;
        const auto st = server_.stats();
        r.set("rss_start_kib", static_cast<double>(rss_start_));
        r.set("rss_end_kib", static_cast<double>(status_kib("VmRSS")));
        r.set("handshakes_max", static_cast<double>(handshakes_max_));
        r.set("connections_max", static_cast<double>(connections_max_));
        r.set("connections_accepted", static_cast<double>(st.connections_accepted));
        r.set("retries_sent", static_cast<double>(st.retries_sent));
        r.set("retry_tokens_accepted", static_cast<double>(st.retry_tokens_accepted));
        r.set("handshakes_dropped", static_cast<double>(st.handshakes_dropped));
        r.set("connections_refused", static_cast<double>(st.connections_refused));
        r.set("stateless_replies_limited", static_cast<double>(st.stateless_replies_limited));
        r.set("dropped_datagrams", static_cast<double>(st.dropped_datagrams));
    }

private:
    void sample() {
        const auto st = server_.stats();
        handshakes_max_ = std::max(handshakes_max_, st.handshakes);
        connections_max_ = std::max(connections_max_, st.connections);
        timer_.expires_after(10ms);
        timer_.async_wait([this](std::error_code ec) {
            if (!ec) sample();
        });
    }

    h3co::server& server_;
    asio::steady_timer timer_;
    bool on_;
    long rss_start_;
    std::size_t handshakes_max_ = 0, connections_max_ = 0;
};

int run_server(const config& c) {
    const auto workers = static_cast<std::size_t>(std::clamp(c.workers, 1, 256));
    std::vector<server_stats> per_worker(workers);
    for (auto& w : per_worker) {
        w.chunk_size = c.chunk_size;
        w.write_size = c.write_size;
    }
    std::vector<std::unique_ptr<asio::io_context>> others;  // workers 1..N-1; worker 0 is `io`
    asio::io_context io(1);
    std::vector<asio::any_io_executor> executors{io.get_executor()};
    for (std::size_t i = 1; i < workers; ++i) {
        others.push_back(std::make_unique<asio::io_context>(1));
        executors.push_back(others.back()->get_executor());
    }
    const auto tls = h3co::server_tls::from_pem_files(c.cert_dir + "/server.pem", c.cert_dir + "/server.key");
    h3co::server server(executors, tls, c.options(), server_limits(c));
    server.handle("/", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> { return serve(req, res); });
    asio::signal_set signals(io, SIGTERM, SIGINT);
    const auto stop_all = [&] {
        server.close();
        io.stop();
        for (auto& o : others) o->stop();
    };
    signals.async_wait([&](std::error_code, int) { stop_all(); });
    const auto endpoint = server.listen("127.0.0.1", c.port);
    // Its samples read every worker's counters: for one worker only.
    flood_server_probe probe(io, server, c.mode == "flood" && workers == 1);
    std::printf("PORT %u\n", static_cast<unsigned>(endpoint.port()));
    std::fflush(stdout);
    // Bounded: a server left behind ends by itself.
    asio::steady_timer limit(io, std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(c.timeout_s + 30)));
    limit.async_wait([&](std::error_code ec) {
        if (!ec) stop_all();
    });
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < workers; ++i)
        threads.emplace_back([&, i] {
            t_server = &per_worker[i];
            auto guard = asio::make_work_guard(*others[i - 1]);
            others[i - 1]->run();
        });
    t_server = &per_worker[0];
    io.run();
    for (auto& t : threads) t.join();
    server_stats total;  // the workers' figures summed, read now that their threads are done
    for (auto& w : per_worker) {
        total.bytes_in += w.bytes_in;
        total.bytes_out += w.bytes_out;
        total.requests += w.requests;
        total.errors += w.errors;
        total.latency_us.insert(total.latency_us.end(), w.latency_us.begin(), w.latency_us.end());
        if (w.connection) total.connection = w.connection;
    }
    t_server = &total;
    json_record r;
    r.set("role", "server");
    r.set("bytes_in", static_cast<double>(t_server->bytes_in));
    r.set("bytes_out", static_cast<double>(t_server->bytes_out));
    r.set("requests", static_cast<double>(t_server->requests));
    r.set("errors", static_cast<double>(t_server->errors));
    probe.report(r);
    if (!t_server->latency_us.empty()) {
        r.set("lat_count", static_cast<double>(t_server->latency_us.size()));
        r.set("lat_p50_us", percentile(t_server->latency_us, 50));
        r.set("lat_p99_us", percentile(t_server->latency_us, 99));
        r.set("lat_max_us", percentile(t_server->latency_us, 100));
    }
    if (t_server->connection) add_connection_stats(r, *t_server->connection);
    if (workers > 1) {
        const auto st = server.stats();
        r.set("workers", static_cast<double>(workers));
        r.set("kernel_steering", st.kernel_steering ? 1.0 : 0.0);
        std::string spread;  // connections each worker accepted, e.g. "33/31"
        double handoffs = 0;
        for (const auto& w : st.workers) {
            spread += (spread.empty() ? "" : "/") + std::to_string(w.connections_accepted);
            handoffs += static_cast<double>(w.handoffs_sent);
        }
        r.set("handoffs", handoffs);
        r.set("spread", spread);
    }
    add_self_usage(r);
    std::printf("%s\n", r.dump().c_str());
    std::fflush(stdout);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Client role

struct client_result {
    std::uint64_t bytes = 0;
    int status = 0;
    int handshakes = 0;
    double transfer_s = 0;
};

std::optional<h3co::connection_stats> g_client_stats;  ///< the transfer's connection, when it ended

std::string url(const config& c, const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(c.port) + path;
}

h3co::client_tls client_tls(const config& c) {
    h3co::client_tls tls;
    tls.ca_file = c.cert_dir + "/ca.pem";  // real verification: the bench CA, IP SAN 127.0.0.1
    return tls;
}

asio::awaitable<h3co::connection> connect(const config& c) {
    auto ex = co_await asio::this_coro::executor;
    const auto tls = client_tls(c);
    const auto options = c.options();
    const std::string host = "127.0.0.1";
    co_return co_await h3co::connect(ex, host, c.port, tls, options);
}

/// Reads a response body to its end; returns the byte count.
template <class Stream>
asio::awaitable<std::uint64_t> drain(Stream& stream) {
    std::vector<char> buf(64 * 1024);
    std::uint64_t total = 0;
    for (;;) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), as_tuple);
        total += n;
        if (ec == h3co::error::eof) co_return total;
        if (ec) throw std::system_error(ec, "reading the response body");
    }
}

/// POSTs `bytes` on a new stream of `conn`; returns the status.
asio::awaitable<int> post(const config& c, h3co::connection& conn, std::uint64_t bytes) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = url(c, "/0")};
    co_await stream.send_header(req);
    const auto& data = payload(c.write_size);
    while (bytes > 0) {
        const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, data.size()));
        const auto chunk = asio::buffer(data.data(), k);
        co_await stream.write(chunk);
        bytes -= k;
    }
    co_await stream.finish();
    const auto head = co_await stream.read_response();
    co_await drain(stream);
    g_client_stats = conn.stats();
    co_return head.status;
}

/// GETs `bytes` on a new stream of `conn`; returns the body bytes received.
asio::awaitable<std::uint64_t> get(const config& c, h3co::connection& conn, std::uint64_t bytes, int& status) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "GET", .url = url(c, "/" + std::to_string(bytes))};
    co_await stream.send_header(req);
    co_await stream.finish();
    const auto head = co_await stream.read_response();
    status = head.status;
    const auto got = co_await drain(stream);
    g_client_stats = conn.stats();
    co_return got;
}

/// A pipe reader seen only as an AsyncReadStream: h3co's pump then reads it into a buffer of its
/// own (the copying path that --body pipe-copy measures against the pipe's views).
struct plain_read_stream {
    h3co::pipe_reader reader;
    using executor_type = h3co::pipe_reader::executor_type;
    executor_type get_executor() const { return reader.get_executor(); }
    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return reader.async_read_some(buffers, std::forward<Token>(token));
    }
};

/// Writes `bytes` of the payload into `w` in writes of `write_size`, then closes it.
asio::awaitable<void> produce(h3co::pipe_writer w, std::size_t write_size, std::uint64_t bytes) {
    const auto& data = payload(write_size);
    for (std::uint64_t left = bytes; left > 0;) {
        const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(left, data.size()));
        co_await w.write(asio::buffer(data.data(), k));
        left -= k;
    }
    w.close();
}

/// POSTs `bytes` as a body that a producer coroutine writes into a pipe (the seed's io.Pipe).
asio::awaitable<int> post_through_pipe(const config& c, std::uint64_t bytes) {
    auto ex = co_await asio::this_coro::executor;
    h3co::client client(ex, client_tls(c), c.options());
    auto [reader, writer] = h3co::make_pipe(ex);
    asio::co_spawn(ex, produce(std::move(writer), c.write_size, bytes), asio::detached);
    const h3co::request req{.method = "POST", .url = url(c, "/0")};
    // Two statements, not a conditional expression: g++ 12 miscompiles co_await temporaries there.
    h3co::client_response response;
    if (c.body == "pipe") {
        response = co_await client.request(req, std::move(reader));
    } else {
        plain_read_stream plain{std::move(reader)};
        response = co_await client.request(req, std::move(plain));
    }
    co_await drain(response);
    g_client_stats = (co_await client.connection_for(url(c, "/"))).stats();
    client.close();
    co_return response.status;
}

asio::awaitable<void> client_upload(const config& c, client_result& r) {
    if (c.body == "direct") {
        auto conn = co_await connect(c);
        r.status = co_await post(c, conn, c.bytes);
    } else {
        r.status = co_await post_through_pipe(c, c.bytes);
    }
    r.bytes = c.bytes;
}

asio::awaitable<void> client_download(const config& c, client_result& r) {
    auto conn = co_await connect(c);
    r.bytes = co_await get(c, conn, c.bytes, r.status);
    if (r.bytes != c.bytes) throw std::runtime_error("short download: " + std::to_string(r.bytes) + " bytes");
}

/// The `i`th of `n` even shares of `total`; the first also takes the remainder.
std::uint64_t share_of(std::uint64_t total, int n, int i) {
    const auto parts = static_cast<std::uint64_t>(n);
    return total / parts + (i == 0 ? total % parts : 0);
}

/// One stream of `share` bytes on `conn`, up or down as --direction says.
asio::awaitable<void> transfer_one(const config& c, h3co::connection& conn, client_result& r, std::uint64_t share) {
    int status = 0;
    if (c.direction == "down") {
        const auto got = co_await get(c, conn, share, status);
        if (got != share) throw std::runtime_error("short download on a parallel stream");
        r.bytes += got;
    } else {
        status = co_await post(c, conn, share);
        r.bytes += share;
    }
    if (status != 200) throw std::runtime_error("status " + std::to_string(status));
    r.status = status;
}

/// Runs start(0) ... start(n - 1) at once on this executor and waits for all of them; the first
/// failure is rethrown once every task has ended (tasks hold references into the caller's frame).
template <class StartTask>
asio::awaitable<void> run_together(int n, StartTask start) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer all_done(ex, clock_type::time_point::max());
    int left = n;
    std::exception_ptr failure;
    for (int i = 0; i < n; ++i) {
        asio::co_spawn(ex, start(i), [&](std::exception_ptr e) {
            if (e && !failure) failure = e;
            if (--left == 0) all_done.cancel();
        });
    }
    while (left > 0) co_await all_done.async_wait(as_tuple);
    if (failure) std::rethrow_exception(failure);
}

asio::awaitable<void> client_parallel(const config& c, client_result& r) {
    auto conn = co_await connect(c);
    const auto start_stream = [&](int i) { return transfer_one(c, conn, r, share_of(c.bytes, c.streams, i)); };
    co_await run_together(c.streams, start_stream);
}

/// One of the `clients` peers: a connection of its own (its own UDP socket), one stream on it.
asio::awaitable<void> one_client(const config& c, client_result& r, std::uint64_t share) {
    auto conn = co_await connect(c);
    co_await transfer_one(c, conn, r, share);
}

asio::awaitable<void> client_clients(const config& c, client_result& r) {
    const auto start_client = [&](int i) { return one_client(c, r, share_of(c.bytes, c.clients, i)); };
    co_await run_together(c.clients, start_client);
}

asio::awaitable<void> client_chunks(const config& c, client_result& r) {
    auto ex = co_await asio::this_coro::executor;
    auto conn = co_await connect(c);
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = url(c, "/chunks")};
    co_await stream.send_header(req);
    std::vector<char> chunk(payload(c.chunk_size).begin(), payload(c.chunk_size).begin() + static_cast<std::ptrdiff_t>(c.chunk_size));
    asio::steady_timer timer(ex);
    const auto period = std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1.0 / c.chunk_rate));
    const auto start = clock_type::now() + 10ms;
    for (int i = 0; i < c.chunk_count; ++i) {
        timer.expires_at(start + period * i);
        co_await timer.async_wait(as_tuple);
        const std::uint64_t ts = now_ns();
        std::memcpy(chunk.data(), &ts, sizeof ts);
        const auto buf = asio::buffer(chunk);
        co_await stream.write(buf);
        r.bytes += chunk.size();
    }
    co_await stream.finish();
    const auto head = co_await stream.read_response();
    r.status = head.status;
    co_await drain(stream);
}

asio::awaitable<void> client_handshakes(const config& c, client_result& r) {
    const auto deadline = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(c.timeout_s / 2));
    for (int i = 0; i < c.handshakes && clock_type::now() < deadline; ++i) {
        auto conn = co_await connect(c);
        conn.close();
        ++r.handshakes;
    }
    r.status = 200;
}

// ---------------------------------------------------------------------------------------------
// Time to first response byte of a repeat GET (ttfb): --handshakes connections of each kind, one
// after another, each timed from connect() to the first body byte of GET /1: a full handshake (no
// ticket), a resumed one (a ticket, no early data) and 0-RTT (a ticket that allows early data).

struct ttfb_stats {
    std::vector<double> full_ms, resumed_ms, early_ms;
    int resumed = 0, early_accepted = 0;

    static std::string ms(double v) {
        char text[32];
        std::snprintf(text, sizeof text, "%.1f", v);
        return text;
    }
    void report(json_record& r) const {
        r.set("ttfb_full_ms", percentile(full_ms, 50));
        r.set("ttfb_resumed_ms", percentile(resumed_ms, 50));
        r.set("ttfb_0rtt_ms", percentile(early_ms, 50));
        r.set("ttfb_notes", "p50 time to first byte: full " + ms(percentile(full_ms, 50)) + " ms, resumed " +
                                ms(percentile(resumed_ms, 50)) + " ms, 0-RTT " + ms(percentile(early_ms, 50)) +
                                " ms (n=" + std::to_string(full_ms.size()) + " each; resumed " + std::to_string(resumed) +
                                "/" + std::to_string(resumed_ms.size() + early_ms.size()) + ", 0-RTT accepted " +
                                std::to_string(early_accepted) + "/" + std::to_string(early_ms.size()) + ")");
    }
};
ttfb_stats g_ttfb;

asio::awaitable<void> client_ttfb(const config& c, client_result& r) {
    auto ex = co_await asio::this_coro::executor;
    const auto tls = client_tls(c);
    const std::string host = "127.0.0.1";
    auto cache = std::make_shared<h3co::session_cache>();
    // kind 0: no ticket; 1: resumed; 2: 0-RTT. A kind's connections fill the cache for the next.
    for (int kind = 0; kind < 3; ++kind) {
        for (int i = 0; i < c.handshakes; ++i) {
            auto options = c.options();
            options.session_cache = kind == 0 && i + 1 < c.handshakes ? nullptr : cache;  // the last full one keeps its tickets
            options.early_data = kind == 2;
            const auto start = clock_type::now();
            auto conn = co_await h3co::connect(ex, host, c.port, tls, options);
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "GET", .url = url(c, "/1")};
            co_await stream.send_header(req);
            co_await stream.finish();
            const auto head = co_await stream.read_response();
            std::array<char, 16> byte;
            auto [ec, n] = co_await stream.read_some(asio::buffer(byte), as_tuple);
            const double ms = bench::seconds_since(start) * 1000;
            if (head.status != 200 || n == 0) throw std::runtime_error("ttfb: GET /1 answered " + std::to_string(head.status));
            const auto stats = conn.stats();
            (kind == 0 ? g_ttfb.full_ms : kind == 1 ? g_ttfb.resumed_ms : g_ttfb.early_ms).push_back(ms);
            if (kind > 0 && stats.resumed) ++g_ttfb.resumed;
            if (kind == 2 && stats.early_data_accepted) ++g_ttfb.early_accepted;
            co_await drain(stream);
            conn.close();
            ++r.handshakes;
        }
    }
    r.status = 200;
}

// ---------------------------------------------------------------------------------------------
// Flood mode, the legitimate client: handshakes (connect, close) one after another from the start;
// SIGUSR1 says the flood starts (and starts an upload of --bytes), SIGUSR2 that it is over.

struct flood_client_stats {
    int before = 0, during = 0, failed = 0;
    double before_s = 0, during_s = 0;
    std::vector<double> during_ms;  ///< each handshake's time during the flood
    bool upload_done = false, upload_ok = false;
    double upload_s = NAN;
    std::string upload_error;

    void report(json_record& r) const {
        r.set("handshakes_before", before);
        r.set("handshakes_before_per_s", before_s > 0 ? before / before_s : NAN);
        r.set("handshakes_during", during);
        r.set("handshakes_during_per_s", during_s > 0 ? during / during_s : NAN);
        r.set("handshake_during_p50_ms", percentile(during_ms, 50));
        r.set("handshake_during_p99_ms", percentile(during_ms, 99));
        r.set("handshakes_failed", failed);
        r.set("upload_ok", upload_ok ? 1.0 : 0.0);
        r.set("upload_s", upload_s);
        if (!upload_error.empty()) r.set("upload_error", upload_error);
    }
};
flood_client_stats g_flood_client;

asio::awaitable<void> flood_upload(const config& c) {
    auto& f = g_flood_client;
    const auto start = clock_type::now();
    try {
        auto conn = co_await connect(c);
        const int status = co_await post(c, conn, c.bytes);
        f.upload_ok = status == 200;
        if (!f.upload_ok) f.upload_error = "status " + std::to_string(status);
    } catch (const std::exception& e) {
        f.upload_error = e.what();
    }
    f.upload_s = bench::seconds_since(start);
    f.upload_done = true;
}

asio::awaitable<void> client_flood(const config& c, client_result& r) {
    auto& f = g_flood_client;
    auto ex = co_await asio::this_coro::executor;
    enum class phase { before, during, after } now = phase::before;
    const auto start = clock_type::now();
    auto flood_start = start, flood_end = start;
    asio::signal_set signals(ex, SIGUSR1, SIGUSR2);
    std::function<void(std::error_code, int)> on_signal = [&](std::error_code ec, int sig) {
        if (ec) return;
        if (sig == SIGUSR1 && now == phase::before) {
            now = phase::during;
            flood_start = clock_type::now();
            asio::co_spawn(ex, flood_upload(c), asio::detached);
        } else if (sig == SIGUSR2 && now == phase::during) {
            now = phase::after;
            flood_end = clock_type::now();
            return;
        }
        signals.async_wait(on_signal);
    };
    signals.async_wait(on_signal);
    const auto tls = client_tls(c);
    const auto options = c.options();
    const std::string host = "127.0.0.1";
    const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(c.timeout_s * 0.9));
    while (now != phase::after && clock_type::now() < deadline) {
        const auto began = clock_type::now();
        const bool in_flood = now == phase::during;
        auto [ec, conn] = co_await h3co::connect(ex, host, c.port, tls, options, as_tuple);
        if (ec) {
            ++f.failed;
            continue;
        }
        conn.close();
        if (in_flood && now == phase::during) {
            ++f.during;
            f.during_ms.push_back(bench::seconds_since(began) * 1000);
        } else if (!in_flood && now == phase::before) {
            ++f.before;
        }
    }
    signals.cancel();
    f.before_s = std::chrono::duration<double>(flood_start - start).count();
    f.during_s = std::chrono::duration<double>(flood_end - flood_start).count();
    while (!f.upload_done && clock_type::now() < deadline) co_await h3co::sleep_for(10ms);
    if (!f.upload_done) f.upload_error = "upload did not finish in time";
    r.handshakes = f.before + f.during;
    r.bytes = f.upload_ok ? c.bytes : 0;
    r.status = f.upload_ok ? 200 : 0;
}

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
        r.transfer_s = bench::seconds_since(start);
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

// ---------------------------------------------------------------------------------------------
// Link role: the emulator in a process of its own, so that it has its own CPU and its own rusage,
// and reports its counters like the other children (one JSON line when it gets SIGTERM).

std::atomic<bench::link::link_emulator*> g_link{nullptr};

void stop_link_on_signal(int) {
    if (auto* l = g_link.load()) l->stop();  // one write to an eventfd: async-signal-safe
}

json_record link_report(const bench::link::link_emulator& emu) {
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
        const auto drops = bench::udp_socket_drops(ports);
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

int run_link(const config& c) {
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

// ---------------------------------------------------------------------------------------------
// Orchestrator: a row per (workload, pair, run) and the medians over runs.

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
};

std::string self_exe() { return fs::read_symlink("/proc/self/exe").string(); }

std::chrono::milliseconds ms(double s) { return std::chrono::milliseconds(static_cast<long long>(s * 1000)); }

/// An h3co server child on 127.0.0.1:0; returns its port (0 on failure).
std::uint16_t start_h3co_server(const config& c, bench::child_process& p) {
    std::vector<std::string> argv{self_exe(), "--role", "server", "--port", "0"};
    const auto flags = c.child_flags();
    argv.insert(argv.end(), flags.begin(), flags.end());
    p.spawn(argv, true);
    std::string line;
    if (!p.read_line(line, 10s) || line.rfind("PORT ", 0) != 0) return 0;
    return static_cast<std::uint16_t>(std::stoi(line.substr(5)));
}

/// gtlsserver on a free port (bind 0, release, retry on a clash); returns the port (0 on failure).
std::uint16_t start_gtls_server(const config& c, bench::child_process& p, const std::string& log) {
    for (int attempt = 0; attempt < 5; ++attempt) {
        const auto port = bench::free_udp_port();
        const std::vector<std::string> argv{c.gtlsserver, "--no-quic-dump", "--no-http-dump", "-q",
                                            "-d", c.tmpdir, "--max-dyn-length=" + std::to_string(c.bytes + 1),
                                            "127.0.0.1", std::to_string(port),
                                            c.cert_dir + "/server.key", c.cert_dir + "/server.pem"};
        p.spawn(argv, false, log);
        const auto deadline = clock_type::now() + 5s;
        while (clock_type::now() < deadline) {
            if (!p.running() || p.wait(0ms)) break;  // exited: the port was taken, try another
            if (bench::udp_port_bound(port)) return port;
            std::this_thread::sleep_for(5ms);
        }
        if (p.running()) p.stop(1000ms);
    }
    return 0;
}

/// The link emulator child, forwarding to 127.0.0.1:`target`; returns the port clients use instead
/// (0 on failure).
std::uint16_t start_link(const config& c, std::uint16_t target, bench::child_process& p) {
    std::vector<std::string> argv{self_exe(), "--role", "link", "--link-target", "127.0.0.1:" + std::to_string(target),
                                  "--port", "0", "--timeout", std::to_string(c.timeout_s)};
    const auto flags = c.link.args();
    argv.insert(argv.end(), flags.begin(), flags.end());
    p.spawn(argv, true);
    std::string line;
    if (!p.read_line(line, 10s) || line.rfind("PORT ", 0) != 0) return 0;
    return static_cast<std::uint16_t>(std::stoi(line.substr(5)));
}

row run_pair(const config& c, const std::string& workload, const std::string& client, const std::string& server, int run) {
    row r{.workload = workload, .client = client, .server = server, .run = run};
    const std::string log = c.tmpdir + "/h3co_bench." + std::to_string(::getpid()) + ".log";
    std::remove(log.c_str());
    bench::child_process srv;
    const std::uint16_t port = server == "h3co" ? start_h3co_server(c, srv) : start_gtls_server(c, srv, log);
    if (port == 0) {
        r.error = server + " server did not start: " + bench::read_text(log);
        return r;
    }
    // Where the client connects: the server, or the link emulator in front of it.
    bench::child_process lnk;
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
    bench::child_process cli;
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
        if (workload == "handshakes") r.wall_s = j.num("wall_s");
        if (workload == "ttfb") r.notes = j.str("ttfb_notes");
    } else {
        r.bytes = c.bytes;  // gtlsclient exits 0 only after its stream closed cleanly
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
        }
    }
    if (!r.ok && r.error.empty()) {
        r.error = "client failed (status " + std::to_string(cli.status()) + ")";
        if (client == "gtls") r.error += ": " + bench::read_text(log, 1500);
    }
    if (workload != "handshakes" && workload != "chunks" && r.wall_s > 0)
        r.mbps = static_cast<double>(r.bytes) / r.wall_s / 1e6;
    std::remove(log.c_str());
    return r;
}

row median_row(const std::vector<row>& rows) {
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
                   &row::lat_p50, &row::lat_p99, &row::lat_max, &row::lat_count, &row::hs_per_s, &row::link_cpu})
        m.*f = med(f);
    return m;
}

std::string fmt(double v, int prec = 2) {
    if (std::isnan(v)) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, v);
    return buf;
}

/// The link emulator's numbers that --csv and --json carry for each run.
constexpr const char* link_keys[] = {"up_forwarded",    "up_queue_drops",   "up_lost",          "up_reordered",
                                     "up_kernel_drops", "up_late_p99_us",   "up_peer_drops",    "down_forwarded",
                                     "down_queue_drops", "down_lost",       "down_reordered",   "down_kernel_drops",
                                     "down_late_p99_us", "down_peer_drops"};

json_record to_json(const row& r, const std::string& kind) {
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
    if (!r.error.empty()) j.set("error", r.error);
    return j;
}

void print_csv_header() {
    std::cout << "kind,workload,client,server,run,ok,bytes,wall_s,mb_per_s,client_cpu_s,server_cpu_s,client_maxrss_kib,"
                 "server_maxrss_kib,lat_p50_us,lat_p99_us,lat_max_us,handshakes_per_s,link_cpu_s";
    for (const char* k : link_keys) std::cout << ",link_" << k;
    std::cout << '\n';
}

void print_csv(const row& r, const std::string& kind) {
    auto v = [](double x, int p = 4) { return std::isnan(x) ? std::string{} : fmt(x, p); };
    std::cout << kind << ',' << r.workload << ',' << r.client << ',' << r.server << ',' << r.run << ',' << (r.ok ? 1 : 0) << ','
              << r.bytes << ',' << v(r.wall_s) << ',' << v(r.mbps, 2) << ',' << v(r.client_cpu) << ',' << v(r.server_cpu) << ','
              << v(r.client_rss_kib, 0) << ',' << v(r.server_rss_kib, 0) << ',' << v(r.lat_p50, 1) << ',' << v(r.lat_p99, 1)
              << ',' << v(r.lat_max, 1) << ',' << v(r.hs_per_s, 1) << ',' << v(r.link_cpu);
    for (const char* k : link_keys) std::cout << ',' << v(r.link.num(k), 0);
    std::cout << '\n';
}

void print_table(const std::vector<row>& rows) {
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
void print_connection_stats(const std::vector<row>& all) {
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
void print_link_runs(const config& c, const std::vector<row>& all) {
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
    }
}

/// link-selftest: UDP through the emulator (a child process, as in compare) at 90 % and 110 % of
/// the link's rate, or at --offer. Shows what the emulator delivers and how late it releases.
int run_link_selftest(const config& c) {
    using namespace bench::link;
    const link_config lc = c.link.resolve();
    const direction_config& d = lc.to_server;
    std::vector<std::pair<std::string, double>> phases;
    if (!c.offer.empty()) {
        phases.emplace_back("offered", static_cast<double>(parse_rate(c.offer)));
    } else if (d.rate_bps) {
        phases.emplace_back("under", 0.9 * static_cast<double>(d.rate_bps));
        phases.emplace_back("over", 1.1 * static_cast<double>(d.rate_bps));
    } else {
        throw std::invalid_argument("link-selftest: give --link-rate (phases at 90 % and 110 % of it) or --offer RATE");
    }
    const double rate = static_cast<double>(d.rate_bps);
    const double queue_s = d.rate_bps ? (d.queue.packets ? static_cast<double>(d.queue.packets * c.datagram) : static_cast<double>(d.queue.bytes)) * 8 / rate : 0;
    const std::uint64_t quiet_ns = d.delay_ns + d.jitter_ns + d.reorder_gap_ns + static_cast<std::uint64_t>(queue_s * 1e9) + 300'000'000;
    const double serialization_us = d.rate_bps ? static_cast<double>(c.datagram) * 8e6 / rate : 0;
    if (c.format == "table")
        std::printf("link-selftest: %s\n  %zu-byte datagrams (%zu per send), %g s of sending per phase; one-way delay from the sender's clock to the\n"
                    "  receiving socket's kernel timestamp; expected at least %.3f ms (delay %.3f + one datagram's sending time %.3f)\n",
                    c.link.describe().c_str(), c.datagram, std::max<std::size_t>(c.gso, 1), c.selftest_seconds, static_cast<double>(d.delay_ns) / 1e6 + serialization_us / 1000,
                    static_cast<double>(d.delay_ns) / 1e6, serialization_us / 1000);
    bool ok = true;
    std::vector<json_record> records;
    for (const auto& [name, offered] : phases) {
        selftest_receiver rx;
        bench::child_process lnk;
        const std::uint16_t port = start_link(c, rx.port(), lnk);
        if (port == 0) throw std::runtime_error("the link emulator did not start");
        const selftest_result res = run_selftest(rx, loopback(AF_INET, port), offered, c.selftest_seconds, c.datagram, quiet_ns,
                                                 std::max<std::size_t>(c.gso, 1));
        lnk.stop(5000ms);
        const json_record link = json_record::parse(lnk.json_line());
        if (!link.has("role") || res.received == 0) ok = false;
        json_record j;
        j.set("phase", name);
        j.set("offered_mbit_s", offered / 1e6);
        j.set("sent_mbit_s", res.sent_bps() / 1e6);
        j.set("delivered_mbit_s", res.delivered_bps / 1e6);
        j.set("link_mbit_s", rate / 1e6);
        j.set("sent", static_cast<double>(res.sent));
        j.set("received", static_cast<double>(res.received));
        j.set("out_of_order", static_cast<double>(res.out_of_order));
        j.set("receiver_drops", static_cast<double>(res.receiver_drops));
        j.set("delay_min_ms", res.delay_min_us / 1000);
        j.set("delay_p50_ms", res.delay_p50_us / 1000);
        j.set("delay_p99_ms", res.delay_p99_us / 1000);
        j.set("delay_max_ms", res.delay_max_us / 1000);
        for (const char* k : {"up_received", "up_forwarded", "up_queue_drops", "up_lost", "up_reordered", "up_overflow", "up_kernel_drops",
                              "up_late_p50_us", "up_late_p99_us", "up_late_max_us"})
            j.set(std::string("link_") + k, link.num(k));
        j.set("link_cpu_s", lnk.cpu_seconds());
        records.push_back(j);
        if (c.format != "table") continue;
        const double cpu_share = res.seconds > 0 ? lnk.cpu_seconds() / res.seconds * 100 : NAN;
        std::printf("\nphase %s: offered %s Mbit/s, sent %s Mbit/s (%s datagrams), delivered %s Mbit/s%s\n", name.c_str(),
                    fmt(offered / 1e6, 1).c_str(), fmt(res.sent_bps() / 1e6, 1).c_str(), fmt(static_cast<double>(res.sent), 0).c_str(),
                    fmt(res.delivered_bps / 1e6, 1).c_str(),
                    d.rate_bps ? (" (" + fmt(res.delivered_bps / rate * 100, 1) + " % of the link)").c_str() : "");
        if (res.sent_bps() < 0.97 * offered)
            std::printf("  note: the sender got out only %s %% of the offered rate (not scheduled often enough, or its\n"
                        "  sends are the limit): this phase says nothing about rates above what was sent\n",
                        fmt(res.sent_bps() / offered * 100, 0).c_str());
        std::printf("  the emulator received %s, forwarded %s; dropped by the queue %s, lost at random %s, reordered %s; "
                    "its ring overflowed %s, its sockets dropped %s (kernel)\n",
                    fmt(link.num("up_received"), 0).c_str(), fmt(link.num("up_forwarded"), 0).c_str(), fmt(link.num("up_queue_drops"), 0).c_str(),
                    fmt(link.num("up_lost"), 0).c_str(), fmt(link.num("up_reordered"), 0).c_str(), fmt(link.num("up_overflow"), 0).c_str(),
                    fmt(link.num("up_kernel_drops"), 0).c_str());
        std::printf("  receiver: %s datagrams, %s out of order, %s dropped by its socket\n", fmt(static_cast<double>(res.received), 0).c_str(),
                    fmt(static_cast<double>(res.out_of_order), 0).c_str(), fmt(static_cast<double>(res.receiver_drops), 0).c_str());
        std::printf("  one-way delay ms: min %s, p50 %s, p99 %s, max %s%s\n", fmt(res.delay_min_us / 1000, 3).c_str(),
                    fmt(res.delay_p50_us / 1000, 3).c_str(), fmt(res.delay_p99_us / 1000, 3).c_str(), fmt(res.delay_max_us / 1000, 3).c_str(),
                    offered > rate && d.rate_bps ? (" (above the rate, the queue fills: up to " + fmt(queue_s * 1000, 1) + " ms more)").c_str() : "");
        std::printf("  emulator: released late by p50 %s us, p99 %s us, max %s us; CPU %s s (%s %% of one core over %s s of sending)\n",
                    fmt(link.num("up_late_p50_us"), 0).c_str(), fmt(link.num("up_late_p99_us"), 0).c_str(), fmt(link.num("up_late_max_us"), 0).c_str(),
                    fmt(lnk.cpu_seconds(), 2).c_str(), fmt(cpu_share, 0).c_str(), fmt(res.seconds, 2).c_str());
    }
    if (c.format == "json") {
        std::cout << "[\n";
        for (std::size_t i = 0; i < records.size(); ++i) std::cout << (i ? ",\n  " : "  ") << records[i].dump();
        std::cout << "\n]\n";
    } else if (c.format == "csv" && !records.empty()) {
        const auto& keys = records.front().keys();
        for (std::size_t k = 0; k < keys.size(); ++k) std::cout << (k ? "," : "") << keys[k];
        std::cout << '\n';
        for (const auto& r : records) {
            for (std::size_t k = 0; k < keys.size(); ++k) std::cout << (k ? "," : "") << r.field(keys[k]);
            std::cout << '\n';
        }
    }
    return ok ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Flood mode: the flooder (a child of its own: its CPU is the "one core" that sends), and the run.

/// Forges --flood Initials from --sources sockets bound to 127.1.x.y (loopback: Linux routes all of
/// 127/8 to lo), prints FORGED, then sends them all with sendmmsg, 64 at a time, as fast as it can
/// or paced at --flood-rate. What comes back is never read.
int run_flooder(const config& c) {
    std::vector<int> fds;
    std::vector<sockaddr_in> locals;
    for (int k = 0; k < c.flood_sources; ++k) {
        const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl((127u << 24) | (1u << 16) | (static_cast<unsigned>(k / 250) << 8) | (k % 250 + 1u));
        socklen_t len = sizeof a;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("flooder: cannot bind a source address in 127.1.0.0/16");
        fds.push_back(fd);
        locals.push_back(a);
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(c.port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    constexpr std::size_t batch = 64;  // consecutive Initials share a source socket, for sendmmsg
    const auto source_of = [&](std::size_t i) { return (i / batch) % fds.size(); };

    bench::initial_forger forger;
    std::vector<std::vector<std::uint8_t>> initials;
    initials.reserve(static_cast<std::size_t>(c.flood_count));
    const auto forge_start = clock_type::now();
    for (std::size_t i = 0; i < static_cast<std::size_t>(c.flood_count); ++i) {
        const auto& from = locals[source_of(i)];
        initials.push_back(forger.make(reinterpret_cast<const sockaddr*>(&from), sizeof from,
                                       reinterpret_cast<const sockaddr*>(&to), sizeof to, now_ns()));
    }
    const double forge_s = bench::seconds_since(forge_start);
    std::printf("FORGED %zu\n", initials.size());
    std::fflush(stdout);

    std::uint64_t sent = 0, errors = 0;
    const auto send_start = clock_type::now();
    std::array<mmsghdr, batch> msgs{};
    std::array<iovec, batch> iov{};
    for (std::size_t at = 0; at < initials.size();) {
        const std::size_t n = std::min(batch, initials.size() - at);
        for (std::size_t k = 0; k < n; ++k) {
            iov[k] = {initials[at + k].data(), initials[at + k].size()};
            msgs[k] = {};
            msgs[k].msg_hdr.msg_name = &to;
            msgs[k].msg_hdr.msg_namelen = sizeof to;
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
        }
        if (c.flood_rate > 0) {  // paced: batch `at` leaves at at / rate seconds
            const auto due = send_start + std::chrono::duration_cast<clock_type::duration>(
                                              std::chrono::duration<double>(static_cast<double>(at) / c.flood_rate));
            std::this_thread::sleep_until(due);
        }
        const int r = ::sendmmsg(fds[source_of(at)], msgs.data(), static_cast<unsigned>(n), 0);
        if (r > 0) sent += static_cast<std::uint64_t>(r);
        if (r < static_cast<int>(n)) ++errors;
        at += n;  // what the kernel refused is lost, as on a real link
    }
    const double send_s = bench::seconds_since(send_start);
    for (int fd : fds) ::close(fd);
    json_record out;
    out.set("role", "flooder");
    out.set("forged", static_cast<double>(initials.size()));
    out.set("forge_s", forge_s);
    out.set("sent", static_cast<double>(sent));
    out.set("send_errors", static_cast<double>(errors));
    out.set("send_s", send_s);
    out.set("send_rate", send_s > 0 ? static_cast<double>(sent) / send_s : NAN);
    out.set("datagram_bytes", initials.empty() ? 0.0 : static_cast<double>(initials.front().size()));
    add_self_usage(out);
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
    return 0;
}

/// The flood run: server, client (handshakes from the start), flooder; the client learns by signal
/// when the flood starts (after the forging) and ends (one second after the last Initial left,
/// for the server to work off its socket's backlog).
int run_flood(config c) {
    if (!c.bytes_given) c.bytes = 16 << 20;
    if (!fs::exists(c.cert_dir + "/ca.pem")) {
        std::cerr << "h3co_bench: no certificates in " << c.cert_dir << '\n';
        return 2;
    }
    const auto limit = ms(c.timeout_s);
    const auto flags = c.child_flags();
    const auto spawn = [&](bench::child_process& p, const std::string& role) {
        std::vector<std::string> argv{self_exe(), "--role", role, "--mode", "flood", "--port", std::to_string(c.port)};
        argv.insert(argv.end(), flags.begin(), flags.end());
        p.spawn(argv, true);
    };
    bench::child_process server, client, flooder;
    spawn(server, "server");
    std::string line;
    if (!server.read_line(line, 10s) || line.rfind("PORT ", 0) != 0) {
        std::cerr << "h3co_bench flood: the server did not start\n";
        return 1;
    }
    c.port = static_cast<std::uint16_t>(std::stoi(line.substr(5)));
    const auto drops_before = bench::udp_socket_drops({c.port}).front();
    spawn(client, "client");
    spawn(flooder, "flooder");
    if (!flooder.read_line(line, limit) || line.rfind("FORGED", 0) != 0) {
        std::cerr << "h3co_bench flood: the flooder did not forge its Initials\n";
        return 1;
    }
    ::kill(client.pid(), SIGUSR1);
    const bool flooded = flooder.wait(limit);
    std::this_thread::sleep_for(1s);  // the server works off what its socket still holds
    const auto kernel_drops = bench::udp_socket_drops({c.port}).front() - drops_before;
    ::kill(client.pid(), SIGUSR2);
    const bool client_done = client.wait(limit);
    server.stop(5000ms);
    const auto fj = json_record::parse(flooder.json_line());
    const auto cj = json_record::parse(client.json_line());
    const auto sj = json_record::parse(server.json_line());

    json_record out;
    out.set("kind", "flood");
    out.set("validate", c.validate);
    for (const char* k : {"forged", "sent", "send_s", "send_rate", "forge_s", "datagram_bytes"}) out.set(k, fj.num(k));
    out.set("server_kernel_drops", static_cast<double>(kernel_drops));
    for (const char* k : {"connections_accepted", "retries_sent", "retry_tokens_accepted", "handshakes_dropped",
                          "connections_refused", "handshakes_max", "connections_max", "rss_start_kib", "rss_end_kib",
                          "maxrss_kib", "cpu_s"})
        out.set(std::string("server_") + k, sj.num(k));
    const double growth_kib = sj.num("maxrss_kib") - sj.num("rss_start_kib");
    const double seen = fj.num("sent") - static_cast<double>(kernel_drops);
    out.set("server_rss_growth_kib", growth_kib);
    out.set("server_bytes_per_forged_initial", growth_kib * 1024 / fj.num("sent"));
    out.set("server_bytes_per_received_initial", seen > 0 ? growth_kib * 1024 / seen : NAN);
    for (const char* k : {"handshakes_before", "handshakes_before_per_s", "handshakes_during", "handshakes_during_per_s",
                          "handshake_during_p50_ms", "handshake_during_p99_ms", "handshakes_failed", "upload_ok", "upload_s"})
        out.set(std::string("client_") + k, cj.num(k));
    if (!cj.str("upload_error").empty()) out.set("client_upload_error", cj.str("upload_error"));
    const bool ok = flooded && client_done && cj.num("upload_ok") == 1;
    out.set("ok", ok ? 1.0 : 0.0);

    if (c.format != "table") {
        std::cout << out.dump() << '\n';
        return ok ? 0 : 1;
    }
    const std::string policy = c.validate == "default" ? "library default (when_busy)" : c.validate;
    std::printf("h3co_bench flood: %s forged Initials from %d addresses, %s; address validation: %s\n",
                fmt(fj.num("forged"), 0).c_str(), c.flood_sources,
                c.flood_rate > 0 ? (fmt(c.flood_rate, 0) + " per second").c_str() : "as fast as one core sends", policy.c_str());
    std::printf("  flooder: forged in %s s; sent %s in %s s (%s Initials/s, %s bytes each)\n", fmt(fj.num("forge_s")).c_str(),
                fmt(fj.num("sent"), 0).c_str(), fmt(fj.num("send_s"), 3).c_str(), fmt(fj.num("send_rate"), 0).c_str(),
                fmt(fj.num("datagram_bytes"), 0).c_str());
    std::printf("  server:  %s dropped by the kernel at its full socket; accepted %s connections (at most %s half-open at "
                "once), sent %s Retry packets, dropped %s at max_handshakes, refused %s; CPU %s s\n",
                fmt(static_cast<double>(kernel_drops), 0).c_str(), fmt(sj.num("connections_accepted"), 0).c_str(),
                fmt(sj.num("handshakes_max"), 0).c_str(), fmt(sj.num("retries_sent"), 0).c_str(),
                fmt(sj.num("handshakes_dropped"), 0).c_str(), fmt(sj.num("connections_refused"), 0).c_str(),
                fmt(sj.num("cpu_s")).c_str());
    std::printf("           RSS %s MiB at the start, peak %s MiB (growth %s MiB: %s bytes per forged Initial sent, %s per one "
                "the server received), %s MiB at the end\n",
                fmt(sj.num("rss_start_kib") / 1024, 1).c_str(), fmt(sj.num("maxrss_kib") / 1024, 1).c_str(),
                fmt(growth_kib / 1024, 1).c_str(), fmt(out.num("server_bytes_per_forged_initial"), 0).c_str(),
                fmt(out.num("server_bytes_per_received_initial"), 0).c_str(), fmt(sj.num("rss_end_kib") / 1024, 1).c_str());
    std::printf("  client:  %s handshakes/s before the flood, %s during it (%s handshakes, p50 %s ms, p99 %s ms), %s failed; "
                "upload of %s MiB during the flood: %s in %s s\n",
                fmt(cj.num("handshakes_before_per_s"), 1).c_str(), fmt(cj.num("handshakes_during_per_s"), 1).c_str(),
                fmt(cj.num("handshakes_during"), 0).c_str(), fmt(cj.num("handshake_during_p50_ms"), 1).c_str(),
                fmt(cj.num("handshake_during_p99_ms"), 1).c_str(), fmt(cj.num("handshakes_failed"), 0).c_str(),
                fmt(static_cast<double>(c.bytes) / (1 << 20), 0).c_str(), cj.num("upload_ok") == 1 ? "completed" : "FAILED",
                fmt(cj.num("upload_s")).c_str());
    if (!cj.str("upload_error").empty()) std::printf("           upload error: %s\n", cj.str("upload_error").c_str());
    return ok ? 0 : 1;
}

int orchestrate(config c) {
    if (c.mode == "flood") return run_flood(c);
    if (c.tmpdir.empty()) c.tmpdir = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
    if (!fs::exists(c.cert_dir + "/ca.pem")) {
        std::cerr << "h3co_bench: no certificates in " << c.cert_dir << " (cmake/make-certs.sh DIR, then --cert-dir DIR)\n";
        return 2;
    }
    struct job {
        std::string workload, client, server;
    };
    std::vector<std::vector<job>> rounds;  // one round per run; pairs alternate between rounds
    std::vector<job> base;
    if (c.mode == "compare") {
        for (const auto& dir : split(c.directions, ','))
            for (const auto& pair : split(c.pairs, ',')) {
                const auto parts = split(pair, '-');
                if (parts.size() != 2) throw std::invalid_argument("bad pair " + pair);
                base.push_back({dir, parts[0], parts[1]});
            }
        const bool needs_gtls = std::any_of(base.begin(), base.end(), [](const job& j) { return j.client == "gtls" || j.server == "gtls"; });
        if (needs_gtls && (c.gtlsserver.empty() || c.gtlsclient.empty())) {
            std::cerr << "h3co_bench compare: gtlsserver/gtlsclient not found (apt-get install ngtcp2-server ngtcp2-client)\n";
            return 2;
        }
    } else if (c.mode == "all") {
        for (const char* w : {"upload", "download", "parallel", "clients", "chunks", "handshakes"}) base.push_back({w, "h3co", "h3co"});
    } else {
        base.push_back({c.mode, "h3co", "h3co"});
    }
    for (int run = 0; run < c.runs; ++run) {
        std::vector<job> round = base;
        // Alternate: each run starts at a different pair, and every other run goes backwards.
        if (!round.empty()) std::rotate(round.begin(), round.begin() + static_cast<std::ptrdiff_t>(run % round.size()), round.end());
        if (run % 2) std::reverse(round.begin(), round.end());
        rounds.push_back(round);
    }
    const std::string upload_file = c.tmpdir + "/h3co_bench_upload.bin";
    const bool gtls_upload = std::any_of(base.begin(), base.end(), [](const job& j) { return j.client == "gtls" && j.workload == "upload"; });
    if (gtls_upload) {
        std::ofstream out(upload_file, std::ios::binary | std::ios::trunc);
        const auto& data = payload(1 << 20);
        for (std::uint64_t left = c.bytes; left > 0;) {
            const auto k = std::min<std::uint64_t>(left, data.size());
            out.write(data.data(), static_cast<std::streamsize>(k));
            left -= k;
        }
        if (!out) {
            std::cerr << "h3co_bench: cannot write " << upload_file << '\n';
            return 2;
        }
    }

    std::vector<row> all;
    for (int run = 0; run < c.runs; ++run) {
        for (const auto& j : rounds[static_cast<std::size_t>(run)]) {
            if (c.format == "table") std::fprintf(stderr, "run %d/%d: %s %s -> %s ...\n", run + 1, c.runs, j.workload.c_str(), j.client.c_str(), j.server.c_str());
            all.push_back(run_pair(c, j.workload, j.client, j.server, run + 1));
            if (c.format == "table" && !all.back().ok) std::fprintf(stderr, "  failed: %s\n", all.back().error.c_str());
        }
    }
    if (gtls_upload) std::remove(upload_file.c_str());

    std::vector<row> medians;
    for (const auto& j : base) {
        std::vector<row> same;
        for (const auto& r : all)
            if (r.workload == j.workload && r.client == j.client && r.server == j.server) same.push_back(r);
        medians.push_back(median_row(same));
    }
    // Ratios h3co / gtls for each direction: throughput, CPU and RSS per side.
    std::vector<std::pair<std::string, double>> ratios;
    if (c.mode == "compare") {
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
    }

    if (c.format == "csv") {
        print_csv_header();
        for (const auto& r : all) print_csv(r, "run");
        for (const auto& r : medians) print_csv(r, "median");
        for (const auto& [name, v] : ratios) std::cout << "ratio," << name << ",,,,,,,," << fmt(v, 3) << ",,,,,,,\n";
    } else if (c.format == "json") {
        std::cout << "[\n";
        bool first = true;
        auto emit = [&](const json_record& j) {
            std::cout << (first ? "  " : ",\n  ") << j.dump();
            first = false;
        };
        for (const auto& r : all) emit(to_json(r, "run"));
        for (const auto& r : medians) emit(to_json(r, "median"));
        for (const auto& [name, v] : ratios) {
            json_record j;
            j.set("kind", "ratio");
            j.set("name", name);
            j.set("value", v);
            emit(j);
        }
        std::cout << "\n]\n";
    } else {
        std::printf("h3co_bench %s: %s body, %d run(s)%s; MB/s = 10^6 body bytes/s\n", c.mode.c_str(),
                    (fmt(static_cast<double>(c.bytes) / (1 << 20), 0) + " MiB").c_str(), c.runs,
                    c.runs > 1 ? ", medians of the successful runs" : "");
        print_table(medians);
        if (c.runs > 1) {
            std::printf("\nper run:\n");
            print_table(all);
        }
        if (!ratios.empty()) {
            std::printf("\nratios (medians):\n");
            for (const auto& [name, v] : ratios) std::printf("  %-44s %s\n", name.c_str(), fmt(v, 2).c_str());
        }
        print_connection_stats(all);
        if (c.link.given) print_link_runs(c, all);
    }
    const bool ok = std::all_of(medians.begin(), medians.end(), [](const row& r) { return r.ok; });
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const config c = parse_args(argc, argv);
        if (c.role == "server") return run_server(c);
        if (c.role == "client") return run_client(c);
        if (c.role == "link" || (c.role.empty() && c.mode == "link")) return run_link(c);
        if (c.role == "flooder") return run_flooder(c);
        if (!c.role.empty()) throw std::invalid_argument("unknown role " + c.role);
        if (c.mode == "link-selftest") return run_link_selftest(c);
        return orchestrate(c);
    } catch (const std::exception& e) {
        std::cerr << "h3co_bench: " << e.what() << "\n(--help lists the modes and flags)\n";
        return 2;
    }
}
