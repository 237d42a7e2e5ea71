// The simulation's only source of randomness: splitmix64, seeded per scenario and per link, so
// that one seed gives the same network and workload on every run and every machine.
#pragma once

#include <cstddef>
#include <cstdint>

namespace h3co_sim {

class prng {
public:
    explicit prng(std::uint64_t seed) : state_(seed) {}

    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, n); 0 when n is 0.
    std::uint64_t below(std::uint64_t n) { return n ? next() % n : 0; }
    /// Uniform in [lo, hi].
    std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
    /// True with probability p (0..1).
    bool chance(double p) { return p > 0 && static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }
    /// A fresh generator whose stream does not overlap this one's in practice.
    prng fork() { return prng(next()); }

private:
    std::uint64_t state_;
};

}  // namespace h3co_sim
