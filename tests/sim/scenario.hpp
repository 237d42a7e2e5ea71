// What one seed makes: a network (the links' parameters, a NAT rebinding) and a long-lived
// workload (clients, workers per connection, actions per worker, the ending). Generated before
// anything runs, so that the plan does not depend on how the run goes.
#pragma once

#include "link.hpp"
#include "prng.hpp"

#include <cstdint>
#include <string>

namespace h3co_sim {

struct scenario {
    std::uint64_t seed = 0;
    link_params up;    ///< clients to server
    link_params down;  ///< server to clients
    int connections = 1;           ///< h3co::connect connections
    int workers = 1;               ///< concurrent workers per connection
    int actions = 10;              ///< actions per worker
    int pool_workers = 0;          ///< workers on an h3co::client pool (pipe-fed uploads)
    std::uint64_t rebind_at_ns = 0;  ///< NAT rebinding of the first client then (0: none)
    std::uint64_t shutdown_at_ns = 0;  ///< server.shutdown() mid-flight then (0: none)
    std::uint64_t close_at_ns = 0;     ///< first connection's close() mid-flight then (0: none)
    /// Then (0: never) every handle is dropped and the io_context destroyed with work pending,
    /// without running it again: nothing may be left alive.
    std::uint64_t destroy_at_ns = 0;
    std::uint64_t limit_ns = 3'600'000 * ms;  ///< virtual time the scenario may take
    std::uint64_t stall_ns = 120'000 * ms;    ///< virtual time without any operation completing: a hang

    std::string describe() const {
        std::string s = "seed " + std::to_string(seed) + ": " + std::to_string(connections) + " conn x " +
                        std::to_string(workers) + " workers x " + std::to_string(actions) + " actions, " +
                        std::to_string(pool_workers) + " pool workers; up [" + up.describe() + "] down [" +
                        down.describe() + "]";
        if (rebind_at_ns) s += "; rebind @" + std::to_string(rebind_at_ns / ms) + "ms";
        if (shutdown_at_ns) s += "; shutdown @" + std::to_string(shutdown_at_ns / ms) + "ms";
        if (close_at_ns) s += "; close @" + std::to_string(close_at_ns / ms) + "ms";
        if (destroy_at_ns) s += "; io_context destroyed @" + std::to_string(destroy_at_ns / ms) + "ms";
        return s;
    }
};

/// Path-MTU drops (below what PMTUD found) stall a connection for good: ngtcp2 has no black-hole
/// detection (RFC 8899 §4.3) and h3co none either, while ACKs still pass, so no idle timeout ends
/// it (docs/testing.md). Off unless h3co_sim --mtu-drops asks for them.
inline bool mtu_drops = false;

inline link_params random_link(prng& rng) {
    link_params p;
    p.delay_ns = rng.between(1, 60) * ms;
    if (rng.chance(0.4)) p.jitter_ns = rng.between(1, 20) * ms;
    if (rng.chance(0.5)) {
        p.rate_bps = rng.between(1, 100) * 1'000'000;
        p.queue_bytes = rng.between(16, 512) * 1024;
    }
    if (rng.chance(0.5)) p.loss = static_cast<double>(rng.between(1, 50)) / 1000.0;
    if (rng.chance(0.2)) {
        p.burst_enter = static_cast<double>(rng.between(1, 10)) / 1000.0;
        p.burst_leave = static_cast<double>(rng.between(10, 60)) / 100.0;
    }
    if (rng.chance(0.3)) p.duplicate = static_cast<double>(rng.between(1, 30)) / 1000.0;
    if (rng.chance(0.3)) {
        p.reorder = static_cast<double>(rng.between(1, 50)) / 1000.0;
        p.reorder_extra_ns = rng.between(1, 30) * ms;
    }
    if (rng.chance(0.2)) p.corrupt = static_cast<double>(rng.between(1, 10)) / 1000.0;
    if (rng.chance(0.1)) {
        p.blackhole_from_ns = 1'000 * ms + rng.between(0, 3000) * ms;  // virtual time starts at 1 s
        p.blackhole_until_ns = p.blackhole_from_ns + rng.between(100, 3000) * ms;
    }
    // Drawn always, so that switching path-MTU drops on or off changes nothing else of the seed.
    const bool mtu_drop = rng.chance(0.1);
    const std::uint64_t mtu_at = 1'000 * ms + rng.between(0, 3000) * ms;
    if (mtu_drop && mtu_drops) {
        p.mtu_drop_at_ns = mtu_at;
        p.mtu_after = 1280;
    }
    return p;
}

/// The scenario of `seed`.
inline scenario generate(std::uint64_t seed) {
    prng rng(seed * 0x2545f4914f6cdd1dull + 1);
    scenario s;
    s.seed = seed;
    s.up = random_link(rng);
    s.down = rng.chance(0.5) ? s.up : random_link(rng);
    s.connections = static_cast<int>(rng.between(1, 3));
    s.workers = static_cast<int>(rng.between(1, 6));
    s.actions = static_cast<int>(rng.chance(0.1) ? rng.between(50, 200) : rng.between(3, 30));
    s.pool_workers = static_cast<int>(rng.between(0, 2));
    if (rng.chance(0.15)) s.rebind_at_ns = 1'000 * ms + rng.between(50, 2000) * ms;
    if (rng.chance(0.15)) s.shutdown_at_ns = 1'000 * ms + rng.between(50, 3000) * ms;
    if (rng.chance(0.1)) s.close_at_ns = 1'000 * ms + rng.between(50, 3000) * ms;
    // Drawn last, so that the draws before it stay what they were.
    if (rng.chance(0.1)) s.destroy_at_ns = 1'000 * ms + rng.between(50, 4000) * ms;
    return s;
}

}  // namespace h3co_sim
