// The one clock the I/O layer reads and hands to the engine as `now`: steady-clock nanoseconds,
// the unit ngtcp2 counts time in. The engine itself never reads a clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace h3co::detail {

inline std::uint64_t steady_now_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

}  // namespace h3co::detail
