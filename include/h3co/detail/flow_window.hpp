// A receive window that grows with the path: the auto-tuning ngtcp2 and quic-go do, kept in h3co
// so that h3co always knows the window it granted (connection_stats, tests). When half of the
// window was read within two smoothed round trips, the window limited the sender: it doubles, up to
// its maximum. A slow reader never gets there, so its window stays and the sender waits.
#pragma once

#include <algorithm>
#include <cstdint>

namespace h3co::detail {

struct flow_window {
    std::uint64_t size;              ///< the window now: what the peer may send beyond what was read
    std::uint64_t epoch_start = 0;   ///< when the current half-window began (ns)
    std::uint64_t epoch_read = 0;    ///< bytes read since then

    explicit flow_window(std::uint64_t initial, std::uint64_t now = 0) : size(initial), epoch_start(now) {}

    /// `n` bytes were read at `now`, with a smoothed RTT of `srtt` ns. Returns the credit to grant
    /// the peer: the `n` bytes, plus what the window grew by.
    std::uint64_t on_read(std::uint64_t n, std::uint64_t now, std::uint64_t srtt, std::uint64_t max) {
        epoch_read += n;
        std::uint64_t grown = 0;
        if (epoch_read >= size / 2) {
            if (srtt > 0 && now - epoch_start < 2 * srtt) grown = grow_to(std::min(size * 2, max));
            epoch_start = now;
            epoch_read = 0;
        }
        return n + grown;
    }

    /// Grows to `target` if that is larger; returns the growth.
    std::uint64_t grow_to(std::uint64_t target) {
        if (target <= size) return 0;
        const std::uint64_t grown = target - size;
        size = target;
        return grown;
    }
};

}  // namespace h3co::detail
