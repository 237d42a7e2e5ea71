// The bench's --link-* flags, as written and resolved into a link_config (link_model.hpp).
#pragma once

#include "link_model.hpp"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace bench::link {

/// What the --link-* flags say (as written), and what they mean.
struct link_flags {
    std::string rtt = "0", rate = "0", loss = "0", queue = "1bdp", jitter = "0", reorder = "0", reorder_gap = "1ms", tick = "100us";
    std::uint64_t seed = default_seed;
    bool given = false;  ///< any --link-* flag: run through the emulator

    /// Consumes `--link-*` flag `name` with `value`; false if `name` is not one of them.
    bool set(const std::string& name, const std::string& value) {
        if (name == "--link-rtt") rtt = value;
        else if (name == "--link-rate") rate = value;
        else if (name == "--link-loss") loss = value;
        else if (name == "--link-queue") queue = value;
        else if (name == "--link-jitter") jitter = value;
        else if (name == "--link-reorder") reorder = value;
        else if (name == "--link-reorder-gap") reorder_gap = value;
        else if (name == "--link-tick") tick = value;
        else if (name == "--link-seed") seed = std::stoull(value, nullptr, 0);
        else return false;
        given = true;
        return true;
    }

    std::vector<std::string> args() const {
        return {"--link-rtt", rtt, "--link-rate", rate, "--link-loss", loss, "--link-queue", queue, "--link-jitter", jitter,
                "--link-reorder", reorder, "--link-reorder-gap", reorder_gap, "--link-tick", tick, "--link-seed", std::to_string(seed)};
    }

    /// The same link both ways: each direction gets RTT/2, the rate, the queue, loss, jitter and
    /// reordering; each has its own random stream.
    link_config resolve() const {
        const std::uint64_t rtt_ns = parse_duration(rtt);
        direction_config d;
        d.delay_ns = rtt_ns / 2;
        d.jitter_ns = parse_duration(jitter);
        d.rate_bps = parse_rate(rate);
        d.queue = d.rate_bps ? resolve_queue(parse_queue(queue), d.rate_bps, rtt_ns) : queue_limit{};
        d.loss = parse_probability(loss);
        d.reorder = parse_probability(reorder);
        d.reorder_gap_ns = parse_duration(reorder_gap);
        link_config c;
        c.to_server = d;
        c.to_client = d;
        c.seed = seed;
        c.tick_ns = parse_duration(tick);
        return c;
    }

    /// One line: what link is emulated.
    std::string describe() const {
        const link_config c = resolve();
        const auto& d = c.to_server;
        std::string s = "RTT " + format_duration(d.delay_ns * 2) + " (" + format_duration(d.delay_ns) + " each way), " +
                        format_rate(d.rate_bps) + " each way";
        if (d.rate_bps) {
            if (d.queue.packets) s += ", queue " + std::to_string(d.queue.packets) + " packets";
            else if (d.queue.bytes) s += ", queue " + std::to_string(d.queue.bytes) + " B (" + queue + ")";
            else s += ", queue unlimited";
        }
        char buf[256];
        std::snprintf(buf, sizeof buf, ", loss %g %%, jitter %s, reorder %g %% (gap %s), tick %s, seed %llu", d.loss * 100,
                      format_duration(d.jitter_ns).c_str(), d.reorder * 100, format_duration(d.reorder_gap_ns).c_str(),
                      format_duration(c.tick_ns).c_str(), static_cast<unsigned long long>(c.seed));
        return s + buf;
    }
};

}  // namespace bench::link
