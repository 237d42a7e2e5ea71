// What a scenario did, as a list of events and one hash of them. Only what the seed decides goes
// in: action kinds, outcomes, byte counts and virtual times. Not connection IDs or TLS randoms,
// which ngtcp2 and BoringSSL draw from the system's generator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace h3co_sim {

class trace {
public:
    explicit trace(bool keep) : keep_(keep) {}

    void add(const std::string& event) {
        for (const unsigned char c : event) hash_ = (hash_ ^ c) * 0x100000001b3ull;  // FNV-1a
        hash_ = (hash_ ^ '\n') * 0x100000001b3ull;
        ++count_;
        if (keep_) events_.push_back(event);
    }

    std::uint64_t hash() const { return hash_; }
    std::size_t count() const { return count_; }
    const std::vector<std::string>& events() const { return events_; }

private:
    bool keep_;
    std::uint64_t hash_ = 0xcbf29ce484222325ull;
    std::size_t count_ = 0;
    std::vector<std::string> events_;
};

/// Folds `value` into `hash` (the run's hash over its scenarios' hashes, in seed order).
inline std::uint64_t combine(std::uint64_t hash, std::uint64_t value) {
    for (int i = 0; i < 8; ++i) hash = (hash ^ ((value >> (8 * i)) & 0xff)) * 0x100000001b3ull;
    return hash;
}

}  // namespace h3co_sim
