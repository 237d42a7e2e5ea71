// h3co_sim: runs seeded scenarios of h3co's public API over a simulated network in virtual time.
//   h3co_sim --seeds A-B [--jobs N]  runs seeds A..B (N processes); ends with
//                                    "N scenarios, F failed, trace hash H", H the same for any N
//   h3co_sim --seed S --trace        replays one scenario and prints its events
//   h3co_sim --seed S --shrink       shrinks a failing scenario: prints the fewest actions and
//                                    faults that still fail the same way, as a replay command
//   h3co_sim --seed S --only LIST    runs only those items of the scenario (LIST: 3,17-20,42)
//   h3co_sim --seeds A-B --twice     runs each scenario twice in this process: the hashes must agree
//   h3co_sim --upload SECONDS        times an upload of SECONDS at 100 Mbit/s and 50 ms RTT
// A failure prints the one-line command that replays it. See docs/testing.md.
#include "runner.hpp"
#include "upload.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: h3co_sim --seeds A-B [--seeds C-D ...] [--jobs N] | --seed S [--trace] [--twice] [--no-mtu-drops]"
                 " [--shrink] [--only LIST] | --upload SECONDS\n");
    return 2;
}

struct options {
    bool print_trace = false, quiet = false, twice = false, inject_failure = false;
    bool has_only = false;
    std::set<int> only;
};

/// What one seed's run reports to the summary (and, with --jobs, through a pipe to the parent).
struct record {
    std::uint64_t seed = 0, hash = 0, virtual_ns = 0;
    bool passed = true;
    std::string failure;
};

h3co_sim::scenario scenario_of(std::uint64_t seed, const options& o) {
    auto s = h3co_sim::generate(seed);
    s.inject_failure = o.inject_failure;
    if (o.has_only)
        for (int i = 0; i < s.item_count(); ++i)
            if (!o.only.count(i)) s.dropped.insert(i);
    s.apply_dropped();
    return s;
}

record run_seed(std::uint64_t seed, const options& o) {
    const auto s = scenario_of(seed, o);
    if (o.print_trace) std::printf("%s\n", s.describe().c_str());
    auto out = h3co_sim::run_scenario(s, o.print_trace);
    if (o.twice && out.passed) {
        const auto again = h3co_sim::run_scenario(s, false);
        if (again.hash != out.hash) {
            out.passed = false;
            out.failure = "not deterministic: trace hash differs between two runs in one process";
        }
    }
    if (o.print_trace)
        for (const auto& e : out.events) std::printf("  %s\n", e.c_str());
    return record{seed, out.hash, out.virtual_ns, out.passed, out.failure};
}

// --- --jobs: one process per job, each running every Nth seed; records come back through pipes.
void put(std::string& buf, std::uint64_t v) { buf.append(reinterpret_cast<const char*>(&v), sizeof v); }
std::uint64_t take(const std::string& buf, std::size_t& at) {
    std::uint64_t v = 0;
    std::memcpy(&v, buf.data() + at, sizeof v);
    at += sizeof v;
    return v;
}

void write_all(int fd, const std::string& buf) {
    for (std::size_t off = 0; off < buf.size();) {
        const auto n = ::write(fd, buf.data() + off, buf.size() - off);
        if (n <= 0) std::_Exit(3);
        off += static_cast<std::size_t>(n);
    }
}

/// Set when a job's process ended badly after all its records (LeakSanitizer's exit status).
bool job_failed = false;

std::vector<record> run_jobs(const std::vector<std::uint64_t>& seeds, const options& o, unsigned jobs) {
    std::vector<int> fds;
    std::vector<pid_t> pids;
    std::fflush(stdout);
    std::fflush(stderr);
    for (unsigned j = 0; j < jobs; ++j) {
        int p[2];
        if (::pipe(p) != 0) std::exit(3);
        const pid_t pid = ::fork();
        if (pid < 0) std::exit(3);
        if (pid == 0) {
            ::close(p[0]);
            for (std::size_t i = j; i < seeds.size(); i += jobs) {
                const auto r = run_seed(seeds[i], o);
                std::string buf;
                put(buf, r.seed);
                put(buf, r.hash);
                put(buf, r.virtual_ns);
                put(buf, r.passed ? 1 : 0);
                put(buf, r.failure.size());
                buf += r.failure;
                write_all(p[1], buf);  // one record at a time: what a crash leaves is whole
            }
            // exit, not _Exit: LeakSanitizer checks each job's process at its exit.
            std::exit(0);
        }
        ::close(p[1]);
        fds.push_back(p[0]);
        pids.push_back(pid);
    }
    std::vector<std::string> got(jobs);
    std::vector<pollfd> pfds;
    for (int fd : fds) pfds.push_back(pollfd{fd, POLLIN, 0});
    for (std::size_t open = jobs; open > 0;) {
        if (::poll(pfds.data(), pfds.size(), -1) < 0) continue;
        for (unsigned j = 0; j < jobs; ++j) {
            if (pfds[j].fd < 0 || !(pfds[j].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[65536];
            const auto n = ::read(pfds[j].fd, buf, sizeof buf);
            if (n > 0) {
                got[j].append(buf, static_cast<std::size_t>(n));
            } else {
                ::close(pfds[j].fd);
                pfds[j].fd = -1;
                --open;
            }
        }
    }
    std::vector<record> out(seeds.size());
    for (unsigned j = 0; j < jobs; ++j) {
        int status = 0;
        ::waitpid(pids[j], &status, 0);
        std::size_t at = 0, i = j;
        for (; at + 40 <= got[j].size() && i < seeds.size(); i += jobs) {
            record r;
            r.seed = take(got[j], at);
            r.hash = take(got[j], at);
            r.virtual_ns = take(got[j], at);
            r.passed = take(got[j], at) != 0;
            const auto len = take(got[j], at);
            r.failure = got[j].substr(at, len);
            at += len;
            out[i] = r;
        }
        // The job died in the seed after its last record: that seed fails, and the rest it had
        // are run again here (one process) so that the summary still covers every seed.
        if (i < seeds.size()) {
            out[i] = record{seeds[i], 0, 0, false,
                            WIFSIGNALED(status) ? "crashed (signal " + std::to_string(WTERMSIG(status)) + ")"
                                                : "the job exited with status " + std::to_string(WEXITSTATUS(status))};
            for (i += jobs; i < seeds.size(); i += jobs) out[i] = run_seed(seeds[i], o);
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::printf("job %u (every %uth seed from %llu) exited with status %d after all its scenarios\n", j, jobs,
                        static_cast<unsigned long long>(seeds[j]), status);
            job_failed = true;
        }
    }
    return out;
}

// --- --shrink ------------------------------------------------------------------------------
/// How a failure reads with its numbers taken out, and a hang without its list of what was
/// pending: a smaller scenario fails "the same way" when this stays the same (which action, byte
/// counts, times and how many operations hang may change).
std::string signature(const std::string& failure) {
    std::string s;
    for (const char c : failure.substr(0, failure.find(" (virtual ")))
        if (c < '0' || c > '9') s += c;
    return s;
}

std::string list_of(const std::vector<int>& items) {
    std::string s;
    for (std::size_t i = 0; i < items.size();) {
        std::size_t j = i;
        while (j + 1 < items.size() && items[j + 1] == items[j] + 1) ++j;
        s += (s.empty() ? "" : ",") + std::to_string(items[i]) + (j > i ? "-" + std::to_string(items[j]) : "");
        i = j + 1;
    }
    return s;
}

int shrink(std::uint64_t seed, const options& o, const char* argv0, const std::string& extra_flags) {
    auto base = scenario_of(seed, o);
    const auto first = h3co_sim::run_scenario(base, false);
    if (first.passed) {
        std::printf("seed %llu passes: nothing to shrink\n", static_cast<unsigned long long>(seed));
        return 1;
    }
    const std::string sig = signature(first.failure);
    std::vector<int> kept;
    for (int i = 0; i < base.item_count(); ++i)
        if (base.kept(i) && base.present(i)) kept.push_back(i);
    const std::size_t original = kept.size();
    std::printf("shrinking seed %llu (%zu items): %s\n", static_cast<unsigned long long>(seed), original,
                first.failure.c_str());
    std::string last_failure = first.failure;
    int runs = 0;
    const auto fails_without = [&](const std::vector<int>& keep) {
        auto s = h3co_sim::generate(seed);
        s.inject_failure = o.inject_failure;
        for (int i = 0; i < s.item_count(); ++i)
            if (!std::binary_search(keep.begin(), keep.end(), i)) s.dropped.insert(i);
        s.apply_dropped();
        ++runs;
        const auto out = h3co_sim::run_scenario(s, false);
        if (out.passed || signature(out.failure) != sig) return false;
        last_failure = out.failure;
        return true;
    };
    // Delta debugging, greedy: leave out chunks of what is kept, halving the chunk size down to
    // single items; a leaving-out that still fails the same way stays left out.
    constexpr int max_runs = 2000;
    for (std::size_t chunk = std::max<std::size_t>(1, kept.size() / 2); runs < max_runs; chunk = std::max<std::size_t>(1, chunk / 2)) {
        bool removed = false;
        for (std::size_t at = 0; at < kept.size() && runs < max_runs;) {
            std::vector<int> trial(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(at));
            trial.insert(trial.end(), kept.begin() + static_cast<std::ptrdiff_t>(std::min(kept.size(), at + chunk)), kept.end());
            if (trial.size() < kept.size() && fails_without(trial)) {
                kept = std::move(trial);
                removed = true;
            } else {
                at += chunk;
            }
        }
        if (chunk == 1 && !removed) break;
    }
    std::string names;
    for (const int i : kept) names += (names.empty() ? "" : " ") + base.item_name(i);
    std::printf("shrunk seed %llu from %zu to %zu items in %d runs: %s\n  failure: %s\n  replay: %s --seed %llu%s --only %s --trace\n",
                static_cast<unsigned long long>(seed), original, kept.size(), runs, names.c_str(), last_failure.c_str(),
                argv0, static_cast<unsigned long long>(seed), extra_flags.c_str(), list_of(kept).c_str());
    return 0;
}

bool parse_list(const std::string& v, std::set<int>& out) {
    std::size_t at = 0;
    while (at < v.size()) {
        char* end = nullptr;
        const long a = std::strtol(v.c_str() + at, &end, 10);
        long b = a;
        if (end == v.c_str() + at) return false;
        at = static_cast<std::size_t>(end - v.c_str());
        if (at < v.size() && v[at] == '-') {
            b = std::strtol(v.c_str() + at + 1, &end, 10);
            at = static_cast<std::size_t>(end - v.c_str());
        }
        for (long i = a; i <= b; ++i) out.insert(static_cast<int>(i));
        if (at < v.size() && v[at] != ',') return false;
        ++at;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    options o;
    bool do_shrink = false;
    unsigned jobs = 1;
    std::string extra_flags;  // what a replay command must repeat
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
            o.print_trace = true;
        } else if (arg == "--quiet") {
            o.quiet = true;
        } else if (arg == "--twice") {
            o.twice = true;
        } else if (arg == "--jobs" && i + 1 < argc) {
            jobs = static_cast<unsigned>(std::max(1l, std::strtol(argv[++i], nullptr, 10)));
        } else if (arg == "--shrink") {
            do_shrink = true;
        } else if (arg == "--only" && i + 1 < argc) {
            o.has_only = true;
            if (!parse_list(argv[++i], o.only)) return usage();
            extra_flags += std::string(" --only ") + argv[i];
        } else if (arg == "--inject-failure") {  // hidden: the shrinker's test (tests/CMakeLists.txt)
            o.inject_failure = true;
            extra_flags += " --inject-failure";
        } else if (arg == "--upload" && i + 1 < argc) {
            const auto f = h3co_sim::run_upload(std::strtod(argv[++i], nullptr));
            std::printf("upload: %llu bytes, %s, virtual %.1f s, wall %.2f s (%.1fx), %llu packets sent, %llu dropped at the queue\n",
                        static_cast<unsigned long long>(f.bytes), h3co_sim::describe(f.ec).c_str(), f.virtual_s, f.wall_s,
                        f.wall_s > 0 ? f.virtual_s / f.wall_s : 0.0, static_cast<unsigned long long>(f.net.sent),
                        static_cast<unsigned long long>(f.net.dropped.count("queue") ? f.net.dropped.at("queue") : 0));
            // The client connection's figures, as h3co_bench prints them (docs/testing.md compares).
            const auto& c = f.client;
            std::printf("client: srtt %.1f ms (min %.1f), cwnd %.2f MB (peak %.2f MB), lost %llu/%llu pkts, %llu pkts received\n",
                        static_cast<double>(c.smoothed_rtt.count()) / 1e6, static_cast<double>(c.min_rtt.count()) / 1e6,
                        static_cast<double>(c.congestion_window) / 1e6, static_cast<double>(f.peak_cwnd) / 1e6,
                        static_cast<unsigned long long>(c.packets_lost), static_cast<unsigned long long>(c.packets_sent),
                        static_cast<unsigned long long>(c.packets_received));
            return f.ec ? 1 : 0;
        } else if (arg == "--mtu-drops") {  // the default now: kept for older replay commands
            h3co_sim::mtu_drops = true;
        } else if (arg == "--no-mtu-drops") {
            h3co_sim::mtu_drops = false;
            extra_flags += " --no-mtu-drops";
        } else {
            return usage();
        }
    }
    if (ranges.empty()) return usage();
    std::vector<std::uint64_t> seeds;
    for (const auto& [a, b] : ranges)
        for (std::uint64_t seed = a; seed <= b; ++seed) seeds.push_back(seed);
    if (do_shrink) {
        if (seeds.size() != 1) return usage();
        return shrink(seeds[0], o, argv[0], extra_flags);
    }
    if (o.print_trace) jobs = 1;  // the trace is printed as it runs
    std::uint64_t scenarios = 0, failed = 0, hash = 0xcbf29ce484222325ull, virtual_ns = 0;
    const auto wall_start = std::chrono::steady_clock::now();
    const auto report = [&](const record& r) {
        ++scenarios;
        virtual_ns += r.virtual_ns;
        hash = h3co_sim::combine(hash, r.hash);
        if (!r.passed) {
            ++failed;
            std::printf("FAILED seed %llu: %s\n  replay: %s --seed %llu%s --trace\n  shrink: %s --seed %llu%s --shrink\n",
                        static_cast<unsigned long long>(r.seed), r.failure.c_str(), argv[0],
                        static_cast<unsigned long long>(r.seed), extra_flags.c_str(), argv[0],
                        static_cast<unsigned long long>(r.seed), extra_flags.c_str());
        } else if (!o.quiet && o.print_trace) {
            std::printf("seed %llu passed, trace hash %016llx\n", static_cast<unsigned long long>(r.seed),
                        static_cast<unsigned long long>(r.hash));
        }
        std::fflush(stdout);
    };
    if (jobs > 1 && seeds.size() > 1) {
        // Per-seed hashes combine in seed order, whichever job ran them: H does not depend on N.
        for (const auto& r : run_jobs(seeds, o, std::min<std::size_t>(jobs, seeds.size()))) report(r);
    } else {
        for (const auto seed : seeds) report(run_seed(seed, o));
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    std::fprintf(stderr, "wall %.2f s, virtual %.1f s (%.1fx)\n", wall, static_cast<double>(virtual_ns) / 1e9,
                 wall > 0 ? static_cast<double>(virtual_ns) / 1e9 / wall : 0.0);
    std::printf("%llu scenarios, %llu failed, trace hash %016llx\n", static_cast<unsigned long long>(scenarios),
                static_cast<unsigned long long>(failed), static_cast<unsigned long long>(hash));
    std::fflush(stdout);  // before LeakSanitizer's report at exit, which ends the process with _exit
    return failed || job_failed ? 1 : 0;
}
