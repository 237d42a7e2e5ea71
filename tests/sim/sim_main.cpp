// h3co_sim: runs seeded scenarios of h3co's public API over a simulated network in virtual time.
//   h3co_sim --seeds A-B          runs seeds A..B; ends with "N scenarios, F failed, trace hash H"
//   h3co_sim --seed S --trace     replays one scenario and prints its events
//   h3co_sim --seeds A-B --twice  runs each scenario twice in this process: the hashes must agree
//   h3co_sim --upload SECONDS     times an upload of SECONDS at 100 Mbit/s and 50 ms RTT
// A failure prints the one-line command that replays it. See docs/testing.md.
#include "runner.hpp"
#include "upload.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int usage() {
    std::fprintf(stderr, "usage: h3co_sim --seeds A-B [--seeds C-D ...] | --seed S [--trace] [--twice] [--mtu-drops] | --upload SECONDS\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    bool print_trace = false;
    bool quiet = false;
    bool twice = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if ((arg == "--seeds" || arg == "--seed") && i + 1 < argc) {
            const std::string v = argv[++i];
            const auto dash = v.find('-');
            const std::uint64_t a = std::strtoull(v.c_str(), nullptr, 10);
            const std::uint64_t b = dash == std::string::npos ? a : std::strtoull(v.c_str() + dash + 1, nullptr, 10);
            if (b < a) return usage();
            ranges.emplace_back(a, b);
        } else if (arg == "--trace") {
            print_trace = true;
        } else if (arg == "--quiet") {
            quiet = true;
        } else if (arg == "--twice") {
            twice = true;
        } else if (arg == "--upload" && i + 1 < argc) {
            const auto f = h3co_sim::run_upload(std::strtod(argv[++i], nullptr));
            std::printf("upload: %llu bytes, %s, virtual %.1f s, wall %.2f s (%.1fx), %llu packets sent, %llu dropped at the queue\n",
                        static_cast<unsigned long long>(f.bytes), h3co_sim::describe(f.ec).c_str(), f.virtual_s, f.wall_s,
                        f.wall_s > 0 ? f.virtual_s / f.wall_s : 0.0, static_cast<unsigned long long>(f.net.sent),
                        static_cast<unsigned long long>(f.net.dropped.count("queue") ? f.net.dropped.at("queue") : 0));
            return f.ec ? 1 : 0;
        } else if (arg == "--mtu-drops") {
            h3co_sim::mtu_drops = true;
        } else {
            return usage();
        }
    }
    if (ranges.empty()) return usage();
    std::uint64_t scenarios = 0, failed = 0, hash = 0xcbf29ce484222325ull, virtual_ns = 0;
    const auto wall_start = std::chrono::steady_clock::now();
    for (const auto& [a, b] : ranges) {
        for (std::uint64_t seed = a; seed <= b; ++seed) {
            const auto s = h3co_sim::generate(seed);
            if (print_trace) std::printf("%s\n", s.describe().c_str());
            auto out = h3co_sim::run_scenario(s, print_trace);
            if (twice && out.passed) {
                const auto again = h3co_sim::run_scenario(s, false);
                if (again.hash != out.hash) {
                    out.passed = false;
                    out.failure = "not deterministic: trace hash differs between two runs in one process";
                }
            }
            ++scenarios;
            virtual_ns += out.virtual_ns;
            hash = h3co_sim::combine(hash, out.hash);
            if (print_trace)
                for (const auto& e : out.events) std::printf("  %s\n", e.c_str());
            if (!out.passed) {
                ++failed;
                std::printf("FAILED seed %llu: %s\n  replay: %s --seed %llu --trace\n",
                            static_cast<unsigned long long>(seed), out.failure.c_str(), argv[0],
                            static_cast<unsigned long long>(seed));
            } else if (!quiet && print_trace) {
                std::printf("seed %llu passed, trace hash %016llx\n", static_cast<unsigned long long>(seed),
                            static_cast<unsigned long long>(out.hash));
            }
            std::fflush(stdout);
        }
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    std::fprintf(stderr, "wall %.2f s, virtual %.1f s (%.1fx)\n", wall, static_cast<double>(virtual_ns) / 1e9,
                 wall > 0 ? static_cast<double>(virtual_ns) / 1e9 / wall : 0.0);
    std::printf("%llu scenarios, %llu failed, trace hash %016llx\n", static_cast<unsigned long long>(scenarios),
                static_cast<unsigned long long>(failed), static_cast<unsigned long long>(hash));
    std::fflush(stdout);  // before LeakSanitizer's report at exit, which ends the process with _exit
    return failed ? 1 : 0;
}
