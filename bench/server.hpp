// The server role (h3co_bench --role server): an h3co server on one or more workers that serves
// the URLs gtlsserver serves for the bench, prints "PORT n", and on SIGTERM one JSON line with its
// counters and rusage. In flood mode it keeps the library's default limits and samples its load.
//   GET /N            N body bytes (gtlsserver: dynamic content of length N)
//   POST /anything    reads and counts the body, then answers 200 with no body
//   POST /chunks      as POST, and records each chunk's write-to-read latency
#pragma once

#include "measure.hpp"
#include "options.hpp"

#include <h3co/h3co.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace bench {

struct server_stats {
    std::uint64_t bytes_in = 0, bytes_out = 0, requests = 0, errors = 0;
    std::vector<double> latency_us;
    std::size_t chunk_size = 1024;
    std::size_t write_size = 64 * 1024;
    std::optional<h3co::connection_stats> connection;  ///< the last request's connection, when it ended
    /// Datagrams each connection received, by the client's x-bench-connection tag (streams on one
    /// connection carry the same tag; a client without it, such as gtlsclient, has one connection),
    /// as its requests last saw them: the count only grows, so the highest is kept.
    std::map<std::string, std::uint64_t> packets_in;
};
/// Each server worker thread counts into its own (run_server sums them): no sharing between workers.
inline thread_local server_stats* t_server = nullptr;

inline asio::awaitable<void> serve_chunks(h3co::server_request& req) {
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

/// Notes the datagrams the request's connection has received so far (see server_stats::packets_in).
inline void count_packets(const h3co::server_request& req, const h3co::connection_stats& s) {
    const auto tag = req.headers().find(connection_tag_field);
    auto& n = t_server->packets_in[tag ? std::string(*tag) : std::string{}];
    n = std::max(n, s.packets_received);
}

inline asio::awaitable<void> serve(h3co::server_request& req, h3co::response& res) {
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
        count_packets(req, *t_server->connection);
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
    count_packets(req, *t_server->connection);
    co_await res.finish();
}

// ---------------------------------------------------------------------------------------------
// Flood mode, server side: the library's default limits (what a user who copies an example gets),
// and what they did.

/// The flood runs against the library's defaults (--validate overrides the address validation).
/// The throughput workloads get no connection or handler caps: all their clients come from
/// 127.0.0.1, and what they measure is speed.
inline h3co::server_options server_limits(const config& c) {
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

inline long status_kib(const char* key) {
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

inline int run_server(const config& c) {
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
        for (const auto& [tag, n] : w.packets_in) total.packets_in[tag] += n;  // a connection is on one worker
    }
    t_server = &total;
    json_record r;
    r.set("role", "server");
    r.set("bytes_in", static_cast<double>(t_server->bytes_in));
    r.set("bytes_out", static_cast<double>(t_server->bytes_out));
    r.set("requests", static_cast<double>(t_server->requests));
    r.set("errors", static_cast<double>(t_server->errors));
    double packets_in = 0;
    for (const auto& [tag, n] : t_server->packets_in) packets_in += static_cast<double>(n);
    r.set("packets_in", packets_in);
    r.set("connections_counted", static_cast<double>(t_server->packets_in.size()));
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

}  // namespace bench
