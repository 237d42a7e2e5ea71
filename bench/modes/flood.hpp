// flood: forged client Initials against the server's limits (issue 13). Three children: the server
// (server.hpp, the library's default limits), a legitimate client (below) and the flooder (below).
// The client makes handshakes (connect, close) one after another from the start; SIGUSR1 says the
// flood starts (and starts an upload of --bytes), SIGUSR2 that it is over.
#pragma once

#include "../client.hpp"
#include "../initial_forger.hpp"
#include "../output.hpp"
#include "../run.hpp"

#include <h3co/h3co.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/signal_set.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace bench {

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
inline flood_client_stats g_flood_client;

inline asio::awaitable<void> flood_upload(const config& c) {
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
    f.upload_s = seconds_since(start);
    f.upload_done = true;
}

inline asio::awaitable<void> client_flood(const config& c, client_result& r) {
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
            f.during_ms.push_back(seconds_since(began) * 1000);
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

// ---------------------------------------------------------------------------------------------
// Flood mode: the flooder (a child of its own: its CPU is the "one core" that sends), and the run.

/// Forges --flood Initials from --sources sockets bound to 127.1.x.y (loopback: Linux routes all of
/// 127/8 to lo), prints FORGED, then sends them all with sendmmsg, 64 at a time, as fast as it can
/// or paced at --flood-rate. What comes back is never read.
inline int run_flooder(const config& c) {
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

    initial_forger forger;
    std::vector<std::vector<std::uint8_t>> initials;
    initials.reserve(static_cast<std::size_t>(c.flood_count));
    const auto forge_start = clock_type::now();
    for (std::size_t i = 0; i < static_cast<std::size_t>(c.flood_count); ++i) {
        const auto& from = locals[source_of(i)];
        initials.push_back(forger.make(reinterpret_cast<const sockaddr*>(&from), sizeof from,
                                       reinterpret_cast<const sockaddr*>(&to), sizeof to, now_ns()));
    }
    const double forge_s = seconds_since(forge_start);
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
    const double send_s = seconds_since(send_start);
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
inline int run_flood(config c) {
    if (!c.bytes_given) c.bytes = 16 << 20;
    if (!fs::exists(c.cert_dir + "/ca.pem")) {
        std::cerr << "h3co_bench: no certificates in " << c.cert_dir << '\n';
        return 2;
    }
    const auto limit = ms(c.timeout_s);
    const auto flags = c.child_flags();
    const auto spawn = [&](child_process& p, const std::string& role) {
        std::vector<std::string> argv{self_exe(), "--role", role, "--mode", "flood", "--port", std::to_string(c.port)};
        argv.insert(argv.end(), flags.begin(), flags.end());
        p.spawn(argv, true);
    };
    child_process server, client, flooder;
    spawn(server, "server");
    std::string line;
    if (!server.read_line(line, 10s) || line.rfind("PORT ", 0) != 0) {
        std::cerr << "h3co_bench flood: the server did not start\n";
        return 1;
    }
    c.port = static_cast<std::uint16_t>(std::stoi(line.substr(5)));
    const auto drops_before = udp_socket_drops({c.port}).front();
    spawn(client, "client");
    spawn(flooder, "flooder");
    if (!flooder.read_line(line, limit) || line.rfind("FORGED", 0) != 0) {
        std::cerr << "h3co_bench flood: the flooder did not forge its Initials\n";
        return 1;
    }
    ::kill(client.pid(), SIGUSR1);
    const bool flooded = flooder.wait(limit);
    std::this_thread::sleep_for(1s);  // the server works off what its socket still holds
    const auto kernel_drops = udp_socket_drops({c.port}).front() - drops_before;
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

}  // namespace bench
