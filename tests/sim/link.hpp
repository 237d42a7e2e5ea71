// One direction of a simulated path: what happens to a datagram between two nodes. Delay and
// jitter, a rate with a bounded queue (tail drop), random and burst loss (Gilbert-Elliott),
// duplication, reordering, corruption, a blackhole for a while and a path-MTU drop. Every
// decision comes from the link's own seeded generator.
#pragma once

#include "prng.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace h3co_sim {

inline constexpr std::uint64_t ms = 1'000'000;  ///< nanoseconds per millisecond

struct link_params {
    std::uint64_t delay_ns = 10 * ms;
    std::uint64_t jitter_ns = 0;           ///< uniform extra delay in [0, jitter]
    std::uint64_t rate_bps = 0;            ///< 0: unlimited
    std::uint64_t queue_bytes = 256 * 1024;  ///< the bottleneck's buffer; beyond it, tail drop
    double loss = 0;                       ///< independent loss per datagram
    double burst_enter = 0;                ///< per datagram, chance to enter a loss burst
    double burst_leave = 0.3;              ///< per datagram in a burst, chance to leave it
    double duplicate = 0;
    double reorder = 0;                    ///< chance of an extra delay of reorder_extra_ns
    std::uint64_t reorder_extra_ns = 5 * ms;
    double corrupt = 0;
    std::uint64_t blackhole_from_ns = 0, blackhole_until_ns = 0;  ///< everything dropped meanwhile
    std::size_t mtu = 1500;                ///< datagrams (UDP payload) above it are dropped
    std::uint64_t mtu_drop_at_ns = 0;      ///< from then (if non-zero) the MTU is mtu_after
    std::size_t mtu_after = 1500;

    std::string describe() const;
};

/// What the link did with one datagram: arrival times of the copies delivered (none: dropped).
struct link_verdict {
    std::vector<std::uint64_t> arrivals;
    bool corrupt = false;
    std::size_t corrupt_at = 0;  ///< byte index to flip, when corrupt
    std::uint8_t corrupt_mask = 0;
    const char* dropped = nullptr;  ///< why, when dropped
};

class link {
public:
    link(link_params p, prng rng) : p_(p), rng_(rng) {}

    const link_params& params() const { return p_; }

    link_verdict send(std::uint64_t now, std::size_t len) {
        link_verdict v;
        if (now >= p_.blackhole_from_ns && now < p_.blackhole_until_ns) {
            v.dropped = "blackhole";
            return v;
        }
        const std::size_t mtu = (p_.mtu_drop_at_ns && now >= p_.mtu_drop_at_ns) ? p_.mtu_after : p_.mtu;
        if (len > mtu) {
            v.dropped = "mtu";
            return v;
        }
        if (in_burst_) {
            if (rng_.chance(p_.burst_leave)) in_burst_ = false;
        } else if (rng_.chance(p_.burst_enter)) {
            in_burst_ = true;
        }
        if (in_burst_) {
            v.dropped = "burst";
            return v;
        }
        if (rng_.chance(p_.loss)) {
            v.dropped = "loss";
            return v;
        }
        std::uint64_t depart = now;
        if (p_.rate_bps) {
            // The bottleneck serialises datagrams; what waits behind it is the queue.
            const std::uint64_t start = std::max(now, busy_until_);
            const std::uint64_t queued_ns = start - now;
            const std::uint64_t queued_bytes = queued_ns * p_.rate_bps / 8 / 1'000'000'000ull;
            if (queued_bytes + len > p_.queue_bytes) {
                v.dropped = "queue";
                return v;
            }
            busy_until_ = start + static_cast<std::uint64_t>(len) * 8 * 1'000'000'000ull / p_.rate_bps;
            depart = busy_until_;
        }
        std::uint64_t at = depart + p_.delay_ns + rng_.below(p_.jitter_ns + 1);
        if (rng_.chance(p_.reorder)) at += p_.reorder_extra_ns;
        v.arrivals.push_back(at);
        if (rng_.chance(p_.duplicate)) v.arrivals.push_back(at + rng_.below(2 * ms + 1));
        if (len > 0 && rng_.chance(p_.corrupt)) {
            v.corrupt = true;
            v.corrupt_at = rng_.below(len);
            v.corrupt_mask = static_cast<std::uint8_t>(1u << rng_.below(8));
        }
        return v;
    }

private:
    link_params p_;
    prng rng_;
    std::uint64_t busy_until_ = 0;
    bool in_burst_ = false;
};

inline std::string link_params::describe() const {
    std::string s = "delay " + std::to_string(delay_ns / ms) + "ms";
    if (jitter_ns) s += " jitter " + std::to_string(jitter_ns / ms) + "ms";
    if (rate_bps) s += " rate " + std::to_string(rate_bps / 1000) + "kbit/s queue " + std::to_string(queue_bytes);
    const auto pct = [](double p) { return std::to_string(static_cast<int>(p * 1000)) + "permille"; };
    if (loss > 0) s += " loss " + pct(loss);
    if (burst_enter > 0) s += " burst " + pct(burst_enter);
    if (duplicate > 0) s += " dup " + pct(duplicate);
    if (reorder > 0) s += " reorder " + pct(reorder);
    if (corrupt > 0) s += " corrupt " + pct(corrupt);
    if (blackhole_until_ns > blackhole_from_ns)
        s += " blackhole " + std::to_string(blackhole_from_ns / ms) + "-" + std::to_string(blackhole_until_ns / ms) + "ms";
    if (mtu_drop_at_ns) s += " mtu " + std::to_string(mtu) + "->" + std::to_string(mtu_after) + "@" + std::to_string(mtu_drop_at_ns / ms) + "ms";
    return s;
}

}  // namespace h3co_sim
