// link-selftest: UDP datagrams through the link emulator (bench/link_selftest.hpp's paced sender and
// stamping receiver) at 90 % and 110 % of --link-rate, or at --offer: delivered rate, one-way delay,
// drops, the emulator's lateness and CPU.
#pragma once

#include "../link_selftest.hpp"
#include "../output.hpp"
#include "../run.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bench {

/// link-selftest: UDP through the emulator (a child process, as in compare) at 90 % and 110 % of
/// the link's rate, or at --offer. Shows what the emulator delivers and how late it releases.
inline int run_link_selftest(const config& c) {
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
        child_process lnk;
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

}  // namespace bench
