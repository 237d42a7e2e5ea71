// Peak resident memory, measured inside the test process (Linux /proc).
#pragma once

#include <cstdlib>
#include <fstream>
#include <string>

namespace test {

/// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS, so a later peak_rss_kib() reads
/// the peak of what ran in between.
inline bool reset_peak_rss() {
    std::ofstream clear("/proc/self/clear_refs");
    if (!clear) return false;
    clear << "5";
    return static_cast<bool>(clear.flush());
}

inline long status_kib(const std::string& key) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind(key + ":", 0) == 0) return std::strtol(line.c_str() + key.size() + 1, nullptr, 10);
    return -1;
}

inline long peak_rss_kib() { return status_kib("VmHWM"); }
inline long rss_kib() { return status_kib("VmRSS"); }

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool under_asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool under_asan = true;
#else
inline constexpr bool under_asan = false;
#endif
#else
inline constexpr bool under_asan = false;
#endif

/// Size of the big transfers: 1 GiB by default; H3CO_TEST_BIG_MIB overrides (ASan builds use less,
/// since its allocator quarantine makes RSS meaningless and it runs several times slower).
inline std::size_t big_transfer_bytes() {
    if (const char* env = std::getenv("H3CO_TEST_BIG_MIB")) return std::strtoull(env, nullptr, 10) << 20;
    return under_asan ? (64u << 20) : (1024u << 20);
}

}  // namespace test
