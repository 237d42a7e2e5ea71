// An emulated network link for the bench: a UDP relay on loopback that gives each direction a
// one-way delay with jitter, a bottleneck (a rate and a bounded, tail-drop queue), random loss and
// reordering, all drawn from one seed.
//
//   client ──► front socket ─┐                               ┌─► flow socket ──► server
//                            │ to_server: loss, bottleneck,  │   (one per client address,
//                            │ delay + jitter, reorder       │    connected to the server)
//   client ◄── front socket ◄┘ to_client: the same, its own  └── flow socket ◄── server
//                              state and random stream
//
// Two layers, as in a sans-I/O design:
//  - direction_model decides each datagram's fate from its arrival time and size only (time is an
//    argument, nothing here reads a clock or touches a socket), so tests can drive it with virtual
//    time and exact expectations;
//  - link_emulator moves datagrams: recvmmsg (with UDP GRO, so a GSO burst from a sender arrives as
//    one message and is split here), the model, a ring of packets per direction (no allocation per
//    packet), and sendmmsg when CLOCK_MONOTONIC reaches a packet's release time. It runs on the
//    calling thread (a bench child process, or a std::thread in the tests) until stop(), which is
//    async-signal-safe, or a time limit. Loopback only: the server must be on 127.0.0.0/8 or ::1,
//    and the client side binds the same loopback address.
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
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#ifndef UDP_GRO
#define UDP_GRO 104  // linux/udp.h
#endif

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
// Addresses

inline bool is_loopback(const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(a);
        return (ntohl(in.sin_addr.s_addr) >> 24) == 127;
    }
    if (a.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
        return IN6_IS_ADDR_LOOPBACK(&in6.sin6_addr);
    }
    return false;
}

inline socklen_t address_length(const sockaddr_storage& a) {
    return a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

inline std::uint16_t address_port(const sockaddr_storage& a) {
    return a.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port)
                                   : ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
}

/// "127.0.0.1:4433", "[::1]:4433" or "::1:4433" (the last colon separates the port).
inline sockaddr_storage parse_endpoint(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 >= text.size()) throw std::invalid_argument("bad address '" + text + "' (HOST:PORT)");
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const int port = std::stoi(text.substr(colon + 1));
    if (port < 0 || port > 65535) throw std::invalid_argument("bad port in '" + text + "'");
    sockaddr_storage a{};
    if (host.find(':') != std::string::npos) {
        auto& in6 = reinterpret_cast<sockaddr_in6&>(a);
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(static_cast<std::uint16_t>(port));
        if (::inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr) != 1) throw std::invalid_argument("bad address '" + text + "'");
    } else {
        auto& in = reinterpret_cast<sockaddr_in&>(a);
        in.sin_family = AF_INET;
        in.sin_port = htons(static_cast<std::uint16_t>(port));
        if (::inet_pton(AF_INET, host.c_str(), &in.sin_addr) != 1) throw std::invalid_argument("bad address '" + text + "'");
    }
    return a;
}

/// The loopback address of `family` with `port`.
inline sockaddr_storage loopback(int family, std::uint16_t port) {
    return parse_endpoint(std::string(family == AF_INET6 ? "[::1]:" : "127.0.0.1:") + std::to_string(port));
}

// ---------------------------------------------------------------------------------------------
// The relay

struct link_config {
    direction_config to_server;
    direction_config to_client;
    std::uint64_t seed = default_seed;
    std::size_t max_flows = 256;   ///< client addresses served at once (one upstream socket each)
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

class link_emulator {
public:
    enum direction : int { to_server = 0, to_client = 1 };

    /// Binds the client side on the loopback address of the server's family, port `port` (0: any),
    /// and forwards to `server`, which must be a loopback address.
    link_emulator(const link_config& cfg, const sockaddr_storage& server, std::uint16_t port = 0)
        : cfg_(cfg), server_(server),
          dirs_{direction_state(cfg.to_server, direction_seed(cfg.seed, to_server), cfg.ring_bytes),
                direction_state(cfg.to_client, direction_seed(cfg.seed, to_client), cfg.ring_bytes)},
          flows_(new flow[std::max<std::size_t>(cfg.max_flows, 1)]) {
        if (!is_loopback(server)) throw std::invalid_argument("link_emulator: the server must be on loopback");
        if (cfg_.batch == 0 || cfg_.batch > 1024) throw std::invalid_argument("link_emulator: batch out of range");
        if (cfg_.max_flows == 0 || cfg_.max_flows > 60000) throw std::invalid_argument("link_emulator: max_flows out of range");
        rbuf_.reset(new std::byte[cfg_.batch * max_datagram]);
        rmsgs_.resize(cfg_.batch);
        riov_.resize(cfg_.batch);
        rnames_.resize(cfg_.batch);
        rctrl_.resize(cfg_.batch);
        smsgs_.resize(cfg_.batch);
        siov_.resize(cfg_.batch);
        srelease_.resize(cfg_.batch);
        try {
            ep_ = ::epoll_create1(EPOLL_CLOEXEC);
            stop_ep_ = ::epoll_create1(EPOLL_CLOEXEC);
            if (ep_ < 0 || stop_ep_ < 0) throw_errno("epoll_create1");
            stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (stop_fd_ < 0) throw_errno("eventfd");
            watch(stop_fd_, tag_stop);
            watch(stop_fd_, tag_stop, stop_ep_);
            front_ = open_socket(loopback(server_.ss_family, port));
            watch(front_, tag_front);
        } catch (...) {
            close_all();
            throw;
        }
    }
    link_emulator(const link_emulator&) = delete;
    link_emulator& operator=(const link_emulator&) = delete;
    ~link_emulator() { close_all(); }

    /// Where the client sends.
    std::uint16_t port() const {
        sockaddr_storage a{};
        socklen_t len = sizeof a;
        if (::getsockname(front_, reinterpret_cast<sockaddr*>(&a), &len) != 0) throw_errno("getsockname");
        return address_port(a);
    }

    /// Relays until stop() or until `limit` has passed. Call from one thread at a time.
    void run(std::chrono::nanoseconds limit) {
        ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);  // wake at the release time, not up to 50 us after
        const std::uint64_t start = now_ns();
        const std::uint64_t deadline = limit.count() <= 0 ? start : start + static_cast<std::uint64_t>(limit.count());
        for (std::uint64_t now = start; now < deadline; now = now_ns())
            if (!step(std::chrono::nanoseconds(deadline - now))) break;
    }

    /// One round of run(): sends what is due, waits (at most `max_wait`) for the next release
    /// time, a datagram or stop(), and reads what came. False once stop() has been called. Tests
    /// call this directly to drive the emulator on their own thread.
    ///
    /// When its next release is due within a tick (link_config::tick_ns) of its last wake-up, the
    /// emulator sleeps until that tick is over, deaf to arrivals: they wait in the socket, stamped
    /// by the kernel, and the model uses those stamps, so only release times are rounded up, by at
    /// most a tick. Otherwise it sleeps until the next release or a datagram, whichever is first
    /// (a datagram that comes may be due before the ones it holds).
    bool step(std::chrono::nanoseconds max_wait) {
        if (stopping_) return false;
        std::uint64_t now = now_ns();
        release(to_server, now);
        release(to_client, now);
        now = now_ns();
        const std::uint64_t wait_limit = now + static_cast<std::uint64_t>(std::max<std::int64_t>(max_wait.count(), 0));
        const std::uint64_t next = std::min({next_release(to_server), next_release(to_client), wait_limit});
        const std::uint64_t tick_end = last_wake_ + cfg_.tick_ns;
        if (cfg_.tick_ns > 0 && next < tick_end && now < tick_end) {
            wait_and_dispatch(stop_ep_, std::min(tick_end, wait_limit), now);
            last_wake_ = now_ns();
            wait_and_dispatch(ep_, 0, 0);  // what arrived meanwhile
        } else {
            wait_and_dispatch(ep_, next, now);
            last_wake_ = now_ns();
        }
        return !stopping_;
    }

    /// Asks run() to return. Thread-safe and async-signal-safe (one write to an eventfd).
    void stop() noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto r = ::write(stop_fd_, &one, sizeof one);
    }

    /// A direction's counters; read them while run() is not running (e.g. after joining its thread).
    const direction_counters& counters(direction d) const noexcept { return dirs_[d].count; }
    /// Client addresses seen (upstream sockets opened).
    std::size_t flows() const noexcept { return flow_count_; }
    /// The client address of flow `i` (< flows()).
    const sockaddr_storage& flow_client(std::size_t i) const noexcept { return flows_[i].client; }
    /// Where it forwards to.
    const sockaddr_storage& server() const noexcept { return server_; }
    /// Whether stop() has been seen (run() and step() return at once from then on).
    bool stopped() const noexcept { return stopping_; }
    const link_config& config() const noexcept { return cfg_; }
    /// The seed of direction `d`'s random stream, from the link's seed.
    static std::uint64_t direction_seed(std::uint64_t seed, direction d) noexcept { return mix_seed(seed, d == to_server ? 1 : 2); }
    /// Datagrams waiting in the emulator (for the tests).
    std::size_t held(direction d) const noexcept { return dirs_[d].main.size() + dirs_[d].late.size(); }

private:
    static constexpr std::uint64_t tag_stop = 0, tag_front = 1, tag_flow0 = 2;
    static constexpr int read_rounds = 8;      // recvmmsg calls per socket per wake-up
    static constexpr int release_rounds = 16;  // sendmmsg calls per direction per wake-up

    struct direction_state {
        direction_state(const direction_config& c, std::uint64_t seed, std::size_t ring_bytes)
            : model(c, seed), main(ring_bytes ? ring_bytes : auto_ring_bytes(c)),
              late(c.reorder > 0 ? std::max<std::size_t>((ring_bytes ? ring_bytes : auto_ring_bytes(c)) / 4, 1 << 20) : 0) {}
        direction_model model;
        packet_ring main;  // in release order
        packet_ring late;  // reordered ones, also in release order
        direction_counters count;
    };

    struct flow {
        int fd = -1;
        sockaddr_storage client{};
        socklen_t client_len = 0;
        std::uint32_t drops_seen = 0;  // SO_RXQ_OVFL is cumulative per socket
    };

    static std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t lane) noexcept {
        std::uint64_t z = seed ^ (lane * 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdULL;
        return z ^ (z >> 33);
    }

    [[noreturn]] static void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

    /// Waits on `ep` until `until` (CLOCK_MONOTONIC ns; `until` <= `now`: just looks), then
    /// handles what is ready: stop, or datagrams on the client side or a flow socket.
    void wait_and_dispatch(int ep, std::uint64_t until, std::uint64_t now) {
        timespec ts{};
        if (until > now) {
            const std::uint64_t wait = until - now;
            ts.tv_sec = static_cast<time_t>(wait / 1'000'000'000u);
            ts.tv_nsec = static_cast<long>(wait % 1'000'000'000u);
        }
        std::array<epoll_event, 16> evs;
        const int n = ::epoll_pwait2(ep, evs.data(), static_cast<int>(evs.size()), &ts, nullptr);
        if (n < 0 && errno != EINTR) throw_errno("epoll_pwait2");
        for (int i = 0; i < n; ++i) {
            const std::uint64_t tag = evs[static_cast<std::size_t>(i)].data.u64;
            if (tag == tag_stop) {
                std::uint64_t v = 0;
                [[maybe_unused]] const auto r = ::read(stop_fd_, &v, sizeof v);
                stopping_ = true;
            } else if (tag == tag_front) {
                receive(front_, to_server, 0);
            } else {
                const auto f = static_cast<std::size_t>(tag - tag_flow0);
                receive(flows_[f].fd, to_client, f);
            }
        }
    }

    void watch(int fd, std::uint64_t tag, int ep = -1) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag;
        if (::epoll_ctl(ep < 0 ? ep_ : ep, EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl");
    }

    /// A non-blocking UDP socket bound to `local`, with big buffers, drop counts and GRO.
    int open_socket(const sockaddr_storage& local) {
        const int fd = ::socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) throw_errno("socket");
        const int buf = cfg_.socket_buffer;
        // FORCE goes past net.core.rmem_max when the process may (CAP_NET_ADMIN); else the capped one.
        if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) != 0) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        const int on = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
        ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);  // arrival times, however late we read
        ::setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on);  // best effort: without it, datagrams come one by one
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), address_length(local)) != 0) {
            const int e = errno;
            ::close(fd);
            errno = e;
            throw_errno("bind");
        }
        return fd;
    }

    void close_all() noexcept {
        for (std::size_t i = 0; i < flow_count_; ++i)
            if (flows_[i].fd >= 0) ::close(flows_[i].fd);
        flow_count_ = 0;
        for (int* fd : {&front_, &stop_fd_, &ep_, &stop_ep_})
            if (*fd >= 0) {
                ::close(*fd);
                *fd = -1;
            }
    }

    static bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) noexcept {
        if (a.ss_family != b.ss_family) return false;
        if (a.ss_family == AF_INET) {
            const auto& x = reinterpret_cast<const sockaddr_in&>(a);
            const auto& y = reinterpret_cast<const sockaddr_in&>(b);
            return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
        }
        const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
        const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
        return x.sin6_port == y.sin6_port && std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
    }

    /// The flow of client address `from`, opened on first sight; -1 beyond max_flows.
    long flow_of(const sockaddr_storage& from) {
        if (last_flow_ < flow_count_ && same_address(flows_[last_flow_].client, from)) return static_cast<long>(last_flow_);
        for (std::size_t i = 0; i < flow_count_; ++i)
            if (same_address(flows_[i].client, from)) return static_cast<long>(last_flow_ = i);
        if (flow_count_ >= cfg_.max_flows || from.ss_family != server_.ss_family) return -1;
        flow& f = flows_[flow_count_];
        try {
            f.fd = open_socket(loopback(server_.ss_family, 0));
            if (::connect(f.fd, reinterpret_cast<const sockaddr*>(&server_), address_length(server_)) != 0) throw_errno("connect");
            watch(f.fd, tag_flow0 + flow_count_);
        } catch (const std::system_error&) {  // e.g. out of descriptors: this client is not served
            if (f.fd >= 0) ::close(f.fd);
            f.fd = -1;
            return -1;
        }
        f.client = from;
        f.client_len = address_length(from);
        last_flow_ = flow_count_++;
        return static_cast<long>(last_flow_);
    }

    /// Reads what `fd` has (bounded rounds) and passes each datagram to direction `d`'s model.
    void receive(int fd, direction d, std::size_t flow_index) {
        direction_state& ds = dirs_[d];
        const std::size_t n_batch = cfg_.batch;
        for (int round = 0; round < read_rounds; ++round) {
            for (std::size_t i = 0; i < n_batch; ++i) {
                riov_[i] = {rbuf_.get() + i * max_datagram, max_datagram};
                msghdr& h = rmsgs_[i].msg_hdr;
                h = {};
                h.msg_name = &rnames_[i];
                h.msg_namelen = sizeof(sockaddr_storage);
                h.msg_iov = &riov_[i];
                h.msg_iovlen = 1;
                h.msg_control = rctrl_[i].bytes;
                h.msg_controllen = sizeof rctrl_[i].bytes;
            }
            const int n = ::recvmmsg(fd, rmsgs_.data(), static_cast<unsigned>(n_batch), MSG_DONTWAIT, nullptr);
            if (n <= 0) return;  // drained (EAGAIN), or an ICMP error on a flow socket: nothing to read
            // The kernel stamps each datagram on arrival (CLOCK_REALTIME); the model runs on
            // CLOCK_MONOTONIC. Arrival = the stamp moved onto the monotonic clock, never later than
            // now: if this thread was late to read, the datagrams still arrived when they did.
            const std::uint64_t now = now_ns();
            const auto real_to_mono = static_cast<std::int64_t>(now) - static_cast<std::int64_t>(realtime_now_ns());
            for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
                const msghdr& h = rmsgs_[i].msg_hdr;
                const std::size_t len = rmsgs_[i].msg_len;
                std::size_t segment = len;
                std::uint64_t arrival = now;
                for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm; cm = CMSG_NXTHDR(const_cast<msghdr*>(&h), cm)) {
                    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMPNS) {
                        timespec ts{};
                        std::memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                        const std::int64_t mono = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec + real_to_mono;
                        if (mono > 0) arrival = std::min(now, static_cast<std::uint64_t>(mono));
                    } else if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
                        int gso = 0;
                        std::memcpy(&gso, CMSG_DATA(cm), sizeof gso);
                        if (gso > 0) segment = static_cast<std::size_t>(gso);
                    } else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
                        std::uint32_t drops = 0;
                        std::memcpy(&drops, CMSG_DATA(cm), sizeof drops);
                        std::uint32_t& seen = d == to_server ? front_drops_seen_ : flows_[flow_index].drops_seen;
                        if (drops > seen) ds.count.kernel_drops += drops - seen;
                        seen = std::max(seen, drops);
                    }
                }
                long f = static_cast<long>(flow_index);
                if (d == to_server) f = flow_of(rnames_[i]);
                const std::byte* data = static_cast<const std::byte*>(riov_[i].iov_base);
                std::size_t off = 0;
                do {  // each GRO segment is a datagram of its own; an empty datagram is one too
                    const std::size_t size = std::min(segment, len - off);
                    if (f < 0) {
                        ++ds.count.received;
                        ++ds.count.no_flow;
                    } else {
                        admit(ds, static_cast<std::uint16_t>(f), data + off, size, arrival);
                    }
                    off += size;
                } while (off < len);
            }
            if (static_cast<std::size_t>(n) < n_batch) return;
        }
    }

    void admit(direction_state& ds, std::uint16_t flow_index, const std::byte* data, std::size_t size, std::uint64_t now) {
        ++ds.count.received;
        ds.count.bytes_received += size;
        const verdict v = ds.model.admit(now, size);
        switch (v.what) {
        case verdict::fate::lost:
            ++ds.count.lost;
            return;
        case verdict::fate::queue_drop:
            ++ds.count.queue_drops;
            return;
        case verdict::fate::forward:
            break;
        }
        if (v.reordered) ++ds.count.reordered;
        packet_ring& ring = v.reordered ? ds.late : ds.main;
        if (!ring.push(v.release_ns, flow_index, data, size)) ++ds.count.overflow;
    }

    /// The ring whose oldest packet is due at `now` (the earlier of the two), or nullptr.
    static packet_ring* due(direction_state& ds, std::uint64_t now) noexcept {
        packet_ring* best = nullptr;
        std::uint64_t at = UINT64_MAX;
        for (packet_ring* r : {&ds.main, &ds.late})
            if (!r->empty() && r->front().release_ns <= now && r->front().release_ns < at) {
                at = r->front().release_ns;
                best = r;
            }
        return best;
    }

    std::uint64_t next_release(direction d) const noexcept {
        std::uint64_t at = UINT64_MAX;
        for (const packet_ring* r : {&dirs_[d].main, &dirs_[d].late})
            if (!r->empty()) at = std::min(at, r->front().release_ns);
        return at;
    }

    /// Sends direction `d`'s packets that are due (bounded rounds of one sendmmsg each). Toward the
    /// server, a batch holds one flow's packets (each flow has its own connected socket).
    void release(direction d, std::uint64_t now) {
        direction_state& ds = dirs_[d];
        for (int round = 0; round < release_rounds; ++round) {
            std::size_t k = 0;
            long flow_index = -1;
            while (k < cfg_.batch) {
                packet_ring* r = due(ds, now);
                if (!r) break;
                const packet_ring::header h = r->front();
                if (d == to_server && flow_index >= 0 && h.flow != flow_index) break;
                flow_index = h.flow;
                // The payload stays in the ring's memory until the next push (after this send).
                siov_[k] = {const_cast<std::byte*>(r->front_data()), h.size};
                msghdr& m = smsgs_[k].msg_hdr;
                m = {};
                m.msg_iov = &siov_[k];
                m.msg_iovlen = 1;
                if (d == to_client) {
                    m.msg_name = &flows_[h.flow].client;
                    m.msg_namelen = flows_[h.flow].client_len;
                }
                srelease_[k] = h.release_ns;
                r->pop();
                ++k;
            }
            if (k == 0) return;
            send_batch(d == to_server ? flows_[static_cast<std::size_t>(flow_index)].fd : front_, k, ds.count);
            now = now_ns();
            for (std::size_t i = 0; i < k; ++i) ds.count.lateness.add(now > srelease_[i] ? now - srelease_[i] : 0);
        }
    }

    void send_batch(int fd, std::size_t k, direction_counters& count) {
        std::size_t done = 0;
        for (int interrupted = 0; done < k;) {
            const int r = ::sendmmsg(fd, smsgs_.data() + done, static_cast<unsigned>(k - done), MSG_DONTWAIT);
            if (r > 0) {
                for (std::size_t i = done; i < done + static_cast<std::size_t>(r); ++i) {
                    ++count.forwarded;
                    count.bytes_forwarded += siov_[i].iov_len;
                }
                done += static_cast<std::size_t>(r);
                continue;
            }
            if (r < 0 && errno == EINTR && ++interrupted < 8) continue;
            ++count.send_errors;  // this datagram cannot go (e.g. ECONNREFUSED, EAGAIN): skip it
            ++done;
        }
    }

    link_config cfg_;
    sockaddr_storage server_;
    std::array<direction_state, 2> dirs_;
    std::unique_ptr<flow[]> flows_;
    std::size_t flow_count_ = 0, last_flow_ = 0;
    std::uint32_t front_drops_seen_ = 0;
    int ep_ = -1, stop_ep_ = -1, stop_fd_ = -1, front_ = -1;  // stop_ep_: the stop eventfd alone
    bool stopping_ = false;
    std::uint64_t last_wake_ = 0;
    std::unique_ptr<std::byte[]> rbuf_;
    std::vector<mmsghdr> rmsgs_;
    std::vector<iovec> riov_;
    std::vector<sockaddr_storage> rnames_;
    struct alignas(cmsghdr) control_buffer {
        char bytes[128];  // SO_TIMESTAMPNS (32) + SO_RXQ_OVFL (24) + UDP_GRO (24), with room
    };
    std::vector<control_buffer> rctrl_;
    std::vector<mmsghdr> smsgs_;
    std::vector<iovec> siov_;
    std::vector<std::uint64_t> srelease_;
};

// ---------------------------------------------------------------------------------------------
// The flags, resolved into a link_config

/// What the --link-* flags say (as written), and what they mean.
struct link_flags {
    std::string rtt = "0", rate = "0", loss = "0", queue = "1bdp", jitter = "0", reorder = "0", reorder_gap = "1ms", tick = "100us";
    std::uint64_t seed = default_seed;
    bool given = false;  ///< any --link-* flag: run through the emulator

    /// Consumes `--link-*` flag `name` with `value`; false if `name` is not one of them.
    bool set(const std::string& name, const std::string& value) {
        if (name == "--link-rtt") rtt = value;
        else if (name == "--link-rate") rate = value;
        else if (name == "--link-loss") loss = value;
        else if (name == "--link-queue") queue = value;
        else if (name == "--link-jitter") jitter = value;
        else if (name == "--link-reorder") reorder = value;
        else if (name == "--link-reorder-gap") reorder_gap = value;
        else if (name == "--link-tick") tick = value;
        else if (name == "--link-seed") seed = std::stoull(value, nullptr, 0);
        else return false;
        given = true;
        return true;
    }

    std::vector<std::string> args() const {
        return {"--link-rtt", rtt, "--link-rate", rate, "--link-loss", loss, "--link-queue", queue, "--link-jitter", jitter,
                "--link-reorder", reorder, "--link-reorder-gap", reorder_gap, "--link-tick", tick, "--link-seed", std::to_string(seed)};
    }

    /// The same link both ways: each direction gets RTT/2, the rate, the queue, loss, jitter and
    /// reordering; each has its own random stream.
    link_config resolve() const {
        const std::uint64_t rtt_ns = parse_duration(rtt);
        direction_config d;
        d.delay_ns = rtt_ns / 2;
        d.jitter_ns = parse_duration(jitter);
        d.rate_bps = parse_rate(rate);
        d.queue = d.rate_bps ? resolve_queue(parse_queue(queue), d.rate_bps, rtt_ns) : queue_limit{};
        d.loss = parse_probability(loss);
        d.reorder = parse_probability(reorder);
        d.reorder_gap_ns = parse_duration(reorder_gap);
        link_config c;
        c.to_server = d;
        c.to_client = d;
        c.seed = seed;
        c.tick_ns = parse_duration(tick);
        return c;
    }

    /// One line: what link is emulated.
    std::string describe() const {
        const link_config c = resolve();
        const auto& d = c.to_server;
        std::string s = "RTT " + format_duration(d.delay_ns * 2) + " (" + format_duration(d.delay_ns) + " each way), " +
                        format_rate(d.rate_bps) + " each way";
        if (d.rate_bps) {
            if (d.queue.packets) s += ", queue " + std::to_string(d.queue.packets) + " packets";
            else if (d.queue.bytes) s += ", queue " + std::to_string(d.queue.bytes) + " B (" + queue + ")";
            else s += ", queue unlimited";
        }
        char buf[256];
        std::snprintf(buf, sizeof buf, ", loss %g %%, jitter %s, reorder %g %% (gap %s), tick %s, seed %llu", d.loss * 100,
                      format_duration(d.jitter_ns).c_str(), d.reorder * 100, format_duration(d.reorder_gap_ns).c_str(),
                      format_duration(c.tick_ns).c_str(), static_cast<unsigned long long>(c.seed));
        return s + buf;
    }
};

}  // namespace bench::link
