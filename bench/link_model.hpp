// The bench's emulated link, its model (bench/link_emulator.hpp moves the datagrams, these decide
// their fate). No I/O here: nothing reads a socket, and only now_ns() / realtime_now_ns() read a
// clock (the relay calls them; the model takes time as an argument), so tests drive it with
// virtual time and exact expectations.
//
// The link model, per direction, in the order a datagram meets it:
//   1. random loss with probability `loss` (at the link's entry, as netem does: a lost datagram
//      takes no bottleneck time);
//   2. the bottleneck: it sends at `rate_bps`, one datagram after the other; a datagram that finds
//      the queue (what is waiting or being sent) at its limit in bytes or packets is dropped (tail
//      drop), except that an idle link always takes one datagram;
//   3. propagation: `delay_ns` after leaving the bottleneck, plus a uniform random `jitter` in
//      [0, jitter_ns]; jitter never makes a datagram overtake the one before it (a FIFO path);
//   4. reordering: with probability `reorder`, a datagram is held `reorder_gap_ns` longer than its
//      place in line, so those released meanwhile overtake it.
// The random draws are made for every datagram in the same order whatever the outcome, so one seed
// gives one sequence of fates.
//
// Also here: the values of the --link-* flags parsed and printed, the packet ring the relay holds
// datagrams in, and the counters it reports.
#pragma once

#include <time.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench::link {

/// CLOCK_MONOTONIC in nanoseconds (the clock std::chrono::steady_clock reads on Linux).
inline std::uint64_t now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

/// CLOCK_REALTIME in nanoseconds (what SO_TIMESTAMPNS stamps).
inline std::uint64_t realtime_now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

inline constexpr std::uint64_t default_seed = 20241201;
inline constexpr std::size_t max_datagram = 65536;
/// The smallest queue the default (one bandwidth-delay product) gives, so that a link with RTT 0
/// still has room for a burst.
inline constexpr std::uint64_t min_default_queue_bytes = 64 * 1024;
inline constexpr std::uint64_t max_queue_packets = 1u << 22;

// ---------------------------------------------------------------------------------------------
// Parsing and printing the flags' values

namespace detail {
inline std::string lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}
/// A non-negative number at the start of `s`; `rest` gets what follows it.
inline double leading_number(const std::string& s, std::string& rest, const char* what) {
    std::size_t pos = 0;
    double v = 0;
    try {
        v = std::stod(s, &pos);
    } catch (const std::exception&) {
        throw std::invalid_argument(std::string("bad ") + what + " '" + s + "'");
    }
    if (!(v >= 0) || !std::isfinite(v)) throw std::invalid_argument(std::string("bad ") + what + " '" + s + "'");
    rest = lower(s.substr(pos));
    return v;
}
}  // namespace detail

/// "100mbit", "1gbit", "500kbit", "2.5gbit", "64000bit" (decimal, as tc writes rates): bits per
/// second. "0", "none" or "unlimited": no bottleneck (0). Byte rates are refused: tc's "mbps" means
/// megabytes, which is a trap.
inline std::uint64_t parse_rate(const std::string& text) {
    const auto t = detail::lower(text);
    if (t == "0" || t == "none" || t == "unlimited") return 0;
    std::string unit;
    const double v = detail::leading_number(text, unit, "rate");
    double mult = 0;
    if (unit == "bit" || unit == "bit/s") mult = 1;
    else if (unit == "kbit" || unit == "kbit/s") mult = 1e3;
    else if (unit == "mbit" || unit == "mbit/s") mult = 1e6;
    else if (unit == "gbit" || unit == "gbit/s") mult = 1e9;
    else throw std::invalid_argument("bad rate '" + text + "' (write e.g. 500kbit, 100mbit, 1gbit)");
    const double bps = v * mult;
    if (bps < 1000 || bps > 1e12) throw std::invalid_argument("rate '" + text + "' out of range (1kbit .. 1000gbit)");
    return static_cast<std::uint64_t>(std::llround(bps));
}

/// "50ms", "10us", "1.5s", "250ns"; "0" alone needs no unit: nanoseconds.
inline std::uint64_t parse_duration(const std::string& text) {
    if (text == "0") return 0;
    std::string unit;
    const double v = detail::leading_number(text, unit, "duration");
    double mult = 0;
    if (unit == "ns") mult = 1;
    else if (unit == "us") mult = 1e3;
    else if (unit == "ms") mult = 1e6;
    else if (unit == "s") mult = 1e9;
    else throw std::invalid_argument("bad duration '" + text + "' (write e.g. 50ms, 200us, 1s)");
    const double ns = v * mult;
    if (ns > 3600e9) throw std::invalid_argument("duration '" + text + "' too long");
    return static_cast<std::uint64_t>(std::llround(ns));
}

/// "1%", "0.1%", or a fraction "0.01": a probability in [0, 1].
inline double parse_probability(const std::string& text) {
    std::string unit;
    double v = detail::leading_number(text, unit, "probability");
    if (unit == "%") v /= 100;
    else if (!unit.empty()) throw std::invalid_argument("bad probability '" + text + "' (write e.g. 1% or 0.01)");
    if (v > 1) throw std::invalid_argument("probability '" + text + "' above 1");
    return v;
}

/// The queue's limit as written: "1bdp" / "0.5bdp" (bandwidth-delay products), "50ms" (what the
/// rate sends in that time), "100p" / "100pkt" (packets), "64K", "1M", "150000B", "150000" (bytes,
/// K = 1024), "none" (no limit but the emulator's memory).
struct queue_spec {
    enum class unit { bdp, time, packets, bytes, none };
    unit kind = unit::bdp;
    double value = 1;
};

inline queue_spec parse_queue(const std::string& text) {
    const auto t = detail::lower(text);
    if (t == "none" || t == "inf" || t == "unlimited") return {queue_spec::unit::none, 0};
    std::string unit;
    const double v = detail::leading_number(text, unit, "queue");
    if (unit == "bdp") return {queue_spec::unit::bdp, v};
    if (unit == "p" || unit == "pkt" || unit == "pkts" || unit == "packets") return {queue_spec::unit::packets, v};
    if (unit == "ns" || unit == "us" || unit == "ms" || unit == "s") return {queue_spec::unit::time, static_cast<double>(parse_duration(text))};
    if (unit.empty() || unit == "b") return {queue_spec::unit::bytes, v};
    if (unit == "k" || unit == "kib") return {queue_spec::unit::bytes, v * 1024};
    if (unit == "m" || unit == "mib") return {queue_spec::unit::bytes, v * 1024 * 1024};
    throw std::invalid_argument("bad queue '" + text + "' (write e.g. 1bdp, 50ms, 100p, 256K)");
}

/// A queue limit in bytes or in packets (one of them; both 0: no limit).
struct queue_limit {
    std::uint64_t bytes = 0;
    std::uint64_t packets = 0;
};

/// Bytes the link carries in `rtt_ns` at `rate_bps`.
inline std::uint64_t bdp_bytes(std::uint64_t rate_bps, std::uint64_t rtt_ns) {
    return static_cast<std::uint64_t>(static_cast<double>(rate_bps) / 8.0 * static_cast<double>(rtt_ns) / 1e9);
}

/// The limit `q` means on a link of `rate_bps` and round-trip `rtt_ns`. "1bdp" is at least
/// min_default_queue_bytes.
inline queue_limit resolve_queue(const queue_spec& q, std::uint64_t rate_bps, std::uint64_t rtt_ns) {
    switch (q.kind) {
    case queue_spec::unit::none:
        return {};
    case queue_spec::unit::bdp:
        return {std::max<std::uint64_t>(static_cast<std::uint64_t>(q.value * static_cast<double>(bdp_bytes(rate_bps, rtt_ns))),
                                        min_default_queue_bytes),
                0};
    case queue_spec::unit::time:
        return {std::max<std::uint64_t>(1, static_cast<std::uint64_t>(static_cast<double>(rate_bps) / 8.0 * q.value / 1e9)), 0};
    case queue_spec::unit::packets:
        if (q.value < 1 || q.value > static_cast<double>(max_queue_packets)) throw std::invalid_argument("queue packets out of range");
        return {0, static_cast<std::uint64_t>(q.value)};
    case queue_spec::unit::bytes:
        return {std::max<std::uint64_t>(1, static_cast<std::uint64_t>(q.value)), 0};
    }
    return {};
}

inline std::string format_rate(std::uint64_t bps) {
    char buf[64];
    if (bps == 0) return "unlimited";
    if (bps >= 1'000'000'000 && bps % 1'000'000 == 0) std::snprintf(buf, sizeof buf, "%g Gbit/s", static_cast<double>(bps) / 1e9);
    else if (bps >= 1'000'000) std::snprintf(buf, sizeof buf, "%g Mbit/s", static_cast<double>(bps) / 1e6);
    else std::snprintf(buf, sizeof buf, "%g kbit/s", static_cast<double>(bps) / 1e3);
    return buf;
}

inline std::string format_duration(std::uint64_t ns) {
    char buf[64];
    if (ns == 0) return "0";
    if (ns >= 1'000'000) std::snprintf(buf, sizeof buf, "%g ms", static_cast<double>(ns) / 1e6);
    else if (ns >= 1000) std::snprintf(buf, sizeof buf, "%g us", static_cast<double>(ns) / 1e3);
    else std::snprintf(buf, sizeof buf, "%g ns", static_cast<double>(ns));
    return buf;
}

// ---------------------------------------------------------------------------------------------
// The model of one direction (no I/O, no clock)

struct direction_config {
    std::uint64_t delay_ns = 0;                  ///< one-way propagation delay
    std::uint64_t jitter_ns = 0;                 ///< plus uniform [0, jitter_ns]
    std::uint64_t rate_bps = 0;                  ///< bottleneck rate; 0: none (no queue either)
    queue_limit queue;                           ///< the bottleneck's queue limit
    double loss = 0;                             ///< per datagram
    double reorder = 0;                          ///< per datagram
    std::uint64_t reorder_gap_ns = 1'000'000;    ///< how much later a reordered datagram leaves
};

/// xoshiro256** seeded through splitmix64: the same sequence on every platform and library (the
/// standard distributions are not specified bit for bit, so they are not used).
class rng {
public:
    explicit rng(std::uint64_t seed) noexcept {
        for (auto& s : s_) {
            seed += 0x9e3779b97f4a7c15ULL;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            s = z ^ (z >> 31);
        }
    }
    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    /// Uniform in [0, 1).
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4]{};
};

/// What happens to one datagram.
struct verdict {
    enum class fate : std::uint8_t { forward, queue_drop, lost };
    fate what = fate::forward;
    bool reordered = false;         ///< held reorder_gap_ns past its place in line
    std::uint64_t departure_ns = 0; ///< when it has left the bottleneck
    std::uint64_t release_ns = 0;   ///< when it leaves the link (forward only)
};

class direction_model {
public:
    direction_model(const direction_config& c, std::uint64_t seed) : c_(c), rng_(seed) {
        if (c_.loss < 0 || c_.loss > 1 || c_.reorder < 0 || c_.reorder > 1) throw std::invalid_argument("probability out of [0, 1]");
        if (c_.queue.packets > max_queue_packets) throw std::invalid_argument("queue packets out of range");
        if (c_.rate_bps && c_.queue.packets) departures_.assign(static_cast<std::size_t>(c_.queue.packets), 0);
    }

    const direction_config& config() const noexcept { return c_; }

    /// The fate of a datagram of `size` bytes arriving at `now_ns`. Release times of datagrams
    /// that are not reordered never decrease; nor do those of reordered ones.
    verdict admit(std::uint64_t now_ns, std::size_t size) {
        // Always three draws, in this order, so that the same seed gives the same fates.
        const double u_loss = rng_.uniform();
        const double u_jitter = rng_.uniform();
        const double u_reorder = rng_.uniform();
        verdict v;
        if (u_loss < c_.loss) {
            v.what = verdict::fate::lost;
            return v;
        }
        std::uint64_t departure = now_ns;
        if (c_.rate_bps) {
            const std::uint64_t start = std::max(now_ns, next_free_);
            forget_departed(now_ns);
            if (start > now_ns && queue_full(size, now_ns)) {
                v.what = verdict::fate::queue_drop;
                return v;
            }
            // Sending time in ns, the remainder carried so that no fraction of a ns is lost.
            const std::uint64_t bits_ns = static_cast<std::uint64_t>(size) * 8u * 1'000'000'000u + carry_;
            departure = start + bits_ns / c_.rate_bps;
            carry_ = bits_ns % c_.rate_bps;
            next_free_ = departure;
            if (!departures_.empty()) {
                departures_[(dep_head_ + dep_count_) % departures_.size()] = departure;
                ++dep_count_;
            }
        }
        std::uint64_t release = departure + c_.delay_ns;
        if (c_.jitter_ns) release += static_cast<std::uint64_t>(u_jitter * static_cast<double>(c_.jitter_ns + 1));
        release = std::max(release, last_release_);
        last_release_ = release;
        v.departure_ns = departure;
        v.release_ns = release;
        if (u_reorder < c_.reorder) {
            v.reordered = true;
            v.release_ns = release + c_.reorder_gap_ns;
        }
        return v;
    }

    /// Bytes at the bottleneck at `now_ns` (waiting or being sent).
    double backlog_bytes(std::uint64_t now_ns) const noexcept {
        if (!c_.rate_bps || next_free_ <= now_ns) return 0;
        return static_cast<double>(next_free_ - now_ns) * static_cast<double>(c_.rate_bps) / 8e9;
    }

private:
    /// Packet-limited queue: drops the departure times that have passed.
    void forget_departed(std::uint64_t now_ns) noexcept {
        while (dep_count_ > 0 && departures_[dep_head_] <= now_ns) {
            dep_head_ = (dep_head_ + 1) % departures_.size();
            --dep_count_;
        }
    }

    bool queue_full(std::size_t size, std::uint64_t now_ns) const noexcept {
        if (!departures_.empty()) return dep_count_ >= departures_.size();
        if (c_.queue.bytes == 0) return false;
        return backlog_bytes(now_ns) + static_cast<double>(size) > static_cast<double>(c_.queue.bytes);
    }

    direction_config c_;
    rng rng_;
    std::uint64_t next_free_ = 0;     // when the bottleneck has sent all it has accepted
    std::uint64_t carry_ = 0;         // remainder of bits * 1e9 / rate
    std::uint64_t last_release_ = 0;  // FIFO: jitter never reorders
    std::vector<std::uint64_t> departures_;  // packet-limited queue: departure times in line
    std::size_t dep_head_ = 0, dep_count_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Packets waiting for their release time: a byte ring of [header][payload] records, FIFO

class packet_ring {
public:
    struct header {
        std::uint64_t release_ns;
        std::uint32_t size;
        std::uint16_t flow;
        std::uint16_t mark;  // 0, or wrap_mark: the writer went back to offset 0 here
    };
    static_assert(sizeof(header) == 16);

    explicit packet_ring(std::size_t capacity)
        : cap_(capacity & ~std::size_t{7}), buf_(cap_ ? new std::byte[cap_] : nullptr) {}  // pages untouched until used

    std::size_t capacity() const noexcept { return cap_; }
    std::size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }

    /// Appends a copy of `data`; false (nothing stored) when there is no room.
    bool push(std::uint64_t release_ns, std::uint16_t flow, const std::byte* data, std::size_t size) {
        const std::size_t rec = record_size(size);
        if (rec > cap_ || size > UINT32_MAX) return false;
        if (count_ == 0) head_ = tail_ = 0;
        std::size_t at = 0;
        if (count_ == 0 || tail_ > head_) {
            if (cap_ - tail_ >= rec) {
                at = tail_;
            } else if (head_ >= rec) {
                if (cap_ - tail_ >= sizeof(header)) write_header(tail_, {0, 0, 0, wrap_mark});
                at = 0;
            } else {
                return false;
            }
        } else if (tail_ < head_ && head_ - tail_ >= rec) {
            at = tail_;
        } else {
            return false;  // full
        }
        write_header(at, {release_ns, static_cast<std::uint32_t>(size), flow, 0});
        if (size) std::memcpy(buf_.get() + at + sizeof(header), data, size);
        tail_ = at + rec;
        ++count_;
        return true;
    }

    /// The oldest record's header (the ring must not be empty).
    header front() const noexcept { return read_header(head_); }
    /// The oldest record's payload. It stays readable after pop() until the next push().
    const std::byte* front_data() const noexcept { return buf_.get() + head_ + sizeof(header); }

    void pop() noexcept {
        const header h = read_header(head_);
        head_ += record_size(h.size);
        if (--count_ == 0) {
            head_ = tail_ = 0;
            return;
        }
        if (cap_ - head_ < sizeof(header) || read_header(head_).mark == wrap_mark) head_ = 0;
    }

private:
    static constexpr std::uint16_t wrap_mark = 0xffff;
    static std::size_t record_size(std::size_t size) noexcept { return (sizeof(header) + size + 7) & ~std::size_t{7}; }
    header read_header(std::size_t at) const noexcept {
        header h;
        std::memcpy(&h, buf_.get() + at, sizeof h);
        return h;
    }
    void write_header(std::size_t at, const header& h) noexcept { std::memcpy(buf_.get() + at, &h, sizeof h); }

    std::size_t cap_;
    std::unique_ptr<std::byte[]> buf_;
    std::size_t head_ = 0, tail_ = 0, count_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Counters

/// How late datagrams left compared with their release time: 1 us buckets up to 1 ms, then 1 ms
/// buckets up to 1 s, then one overflow bucket.
class lateness_histogram {
public:
    void add(std::uint64_t late_ns) noexcept {
        const std::uint64_t us = late_ns / 1000;
        std::size_t i = 0;
        if (us < 1000) i = static_cast<std::size_t>(us);
        else if (us < 1'000'000) i = 1000 + static_cast<std::size_t>(us / 1000) - 1;
        else i = buckets - 1;
        ++counts_[i];
        ++total_;
        max_ns_ = std::max(max_ns_, late_ns);
    }
    std::uint64_t count() const noexcept { return total_; }
    double max_us() const noexcept { return static_cast<double>(max_ns_) / 1000.0; }
    /// The upper edge (us) of the bucket that holds the p-th percentile, at most the maximum;
    /// NaN when empty.
    double percentile_us(double p) const noexcept {
        return std::min(bucket_edge_us(p), max_us());
    }

private:
    double bucket_edge_us(double p) const noexcept {
        if (total_ == 0) return NAN;
        const auto want = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total_)));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets; ++i) {
            seen += counts_[i];
            if (seen >= std::max<std::uint64_t>(want, 1)) {
                if (i < 1000) return static_cast<double>(i + 1);
                if (i < buckets - 1) return static_cast<double>((i - 1000 + 2) * 1000);
                return max_us();
            }
        }
        return max_us();
    }

    static constexpr std::size_t buckets = 1000 + 999 + 1;
    std::array<std::uint64_t, buckets> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ns_ = 0;
};

struct direction_counters {
    std::uint64_t received = 0;        ///< datagrams that came in (a GRO message counts its segments)
    std::uint64_t bytes_received = 0;
    std::uint64_t forwarded = 0;       ///< datagrams sent on
    std::uint64_t bytes_forwarded = 0;
    std::uint64_t queue_drops = 0;     ///< tail-dropped at the bottleneck
    std::uint64_t lost = 0;            ///< lost at random (--link-loss)
    std::uint64_t reordered = 0;       ///< held back to be overtaken (--link-reorder)
    std::uint64_t overflow = 0;        ///< dropped because the emulator's own ring was full (should be 0)
    std::uint64_t send_errors = 0;     ///< the emulator's send failed (e.g. nobody listening)
    std::uint64_t kernel_drops = 0;    ///< dropped by the kernel before the emulator read them (SO_RXQ_OVFL)
    std::uint64_t no_flow = 0;         ///< from a new client address beyond max_flows, or whose socket failed
    lateness_histogram lateness;       ///< time from release time to the sendmmsg that sent it
};

// ---------------------------------------------------------------------------------------------
// The whole link: both directions and the relay's sizes

struct link_config {
    direction_config to_server;
    direction_config to_client;
    std::uint64_t seed = default_seed;
    std::size_t max_flows = 1024;  ///< client addresses served at once (one upstream socket each; clients --clients 256 fits)
    std::size_t ring_bytes = 0;    ///< packet memory per direction; 0: sized from the configuration
    std::size_t batch = 64;        ///< datagrams per recvmmsg / sendmmsg
    int socket_buffer = 16 << 20;  ///< SO_RCVBUF / SO_SNDBUF asked for (FORCE when allowed)
    /// While datagrams are held, wake at most once per tick: a datagram leaves up to a tick after
    /// its release time (never before). 0: wake for every release and every arrival.
    std::uint64_t tick_ns = 100'000;
};

/// Packet memory a direction needs: what the rate delivers while datagrams wait in the queue, on
/// the path and in the reorder gap, with room for record headers; 10 Gbit/s is assumed when there
/// is no bottleneck. Between 4 MiB and 1 GiB; the pages are touched only as they are used.
inline std::size_t auto_ring_bytes(const direction_config& c) {
    const double bytes_per_s = c.rate_bps ? static_cast<double>(c.rate_bps) / 8.0 : 1.25e9;
    const double hold_s = static_cast<double>(c.delay_ns + c.jitter_ns + c.reorder_gap_ns) / 1e9;
    double queue = static_cast<double>(c.queue.bytes) + static_cast<double>(c.queue.packets) * 2048.0;
    if (c.rate_bps && c.queue.bytes == 0 && c.queue.packets == 0) queue = bytes_per_s;  // unbounded queue: 1 s of it
    const double need = (bytes_per_s * hold_s + queue) * 1.5 + 4.0 * 1024 * 1024;
    return static_cast<std::size_t>(std::clamp(need, 4.0 * 1024 * 1024, 1024.0 * 1024 * 1024));
}

}  // namespace bench::link
