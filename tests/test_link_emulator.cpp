// The bench's link emulator (bench/link_emulator.hpp): the model of one direction driven with
// virtual time (exact, deterministic with the seed), the packet ring, and the relay itself on
// loopback UDP, driven step by step on the test's thread or run on a thread of its own.
// Behaviour only: nothing here asserts a speed. Every wait is bounded.
#include "bench/link_emulator.hpp"

#include <catch2/catch.hpp>

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace bl = bench::link;
using namespace std::chrono_literals;

namespace link_emulator_test {

constexpr std::uint64_t ms_ns = 1'000'000;

std::uint64_t realtime_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

/// A non-blocking UDP socket on 127.0.0.1:0 (or [::1]:0) whose datagrams carry the kernel's
/// receive time.
class udp_socket {
public:
    explicit udp_socket(int family = AF_INET) : family_(family) {
        fd_ = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        const int buf = 4 << 20, on = 1;
        if (::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        ::setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
        const auto local = bl::loopback(family, 0);
        REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&local), bl::address_length(local)) == 0);
    }
    udp_socket(const udp_socket&) = delete;
    udp_socket& operator=(const udp_socket&) = delete;
    ~udp_socket() { ::close(fd_); }

    std::uint16_t port() const {
        sockaddr_storage a{};
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        return bl::address_port(a);
    }
    sockaddr_storage address() const { return bl::loopback(family_, port()); }

    void send_to(const sockaddr_storage& to, const void* data, std::size_t n) {
        REQUIRE(::sendto(fd_, data, n, 0, reinterpret_cast<const sockaddr*>(&to), bl::address_length(to)) == static_cast<ssize_t>(n));
    }

    struct datagram {
        std::vector<std::uint8_t> data;
        std::uint64_t kernel_ns = 0;  // CLOCK_REALTIME when the kernel queued it here
        sockaddr_storage from{};
    };
    /// One datagram if one is there now.
    bool try_receive(datagram& d) {
        std::uint8_t buf[2048];
        alignas(cmsghdr) char ctrl[128];
        iovec iov{buf, sizeof buf};
        msghdr h{};
        h.msg_name = &d.from;
        h.msg_namelen = sizeof d.from;
        h.msg_iov = &iov;
        h.msg_iovlen = 1;
        h.msg_control = ctrl;
        h.msg_controllen = sizeof ctrl;
        const ssize_t n = ::recvmsg(fd_, &h, MSG_DONTWAIT);
        if (n < 0) return false;
        d.data.assign(buf, buf + n);
        d.kernel_ns = 0;
        for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm; cm = CMSG_NXTHDR(&h, cm))
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMPNS) {
                timespec ts{};
                std::memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                d.kernel_ns = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
            }
        return true;
    }
    /// Waits up to `limit` for one datagram.
    bool receive(datagram& d, std::chrono::milliseconds limit) {
        if (try_receive(d)) return true;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return false;
        return try_receive(d);
    }

private:
    int family_ = AF_INET;
    int fd_ = -1;
};

/// A test datagram: sequence number, CLOCK_REALTIME at send, padding to `size`.
std::vector<std::uint8_t> probe(std::uint32_t seq, std::size_t size) {
    std::vector<std::uint8_t> d(std::max<std::size_t>(size, 12), static_cast<std::uint8_t>(seq));
    const std::uint64_t t = realtime_ns();
    std::memcpy(d.data(), &seq, 4);
    std::memcpy(d.data() + 4, &t, 8);
    return d;
}
std::uint32_t seq_of(const udp_socket::datagram& d) {
    std::uint32_t s = 0;
    std::memcpy(&s, d.data.data(), 4);
    return s;
}
std::uint64_t sent_ns_of(const udp_socket::datagram& d) {
    std::uint64_t t = 0;
    std::memcpy(&t, d.data.data() + 4, 8);
    return t;
}

/// Steps `link` and collects what `at` receives until `want` datagrams came or `limit` passed.
std::vector<udp_socket::datagram> relay_until(bl::link_emulator& link, udp_socket& at, std::size_t want,
                                              std::chrono::milliseconds limit = 10000ms) {
    std::vector<udp_socket::datagram> got;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
        link.step(5ms);
        udp_socket::datagram d;
        while (got.size() < want && at.try_receive(d)) got.push_back(d);
    }
    return got;
}

bl::direction_config plain(std::uint64_t delay_ns = 0) {
    bl::direction_config d;
    d.delay_ns = delay_ns;
    return d;
}

bl::link_config both_ways(const bl::direction_config& d, std::uint64_t seed = bl::default_seed) {
    bl::link_config c;
    c.to_server = d;
    c.to_client = d;
    c.seed = seed;
    c.ring_bytes = 8 << 20;
    return c;
}


TEST_CASE("link flags: rates, durations, probabilities and queue limits parse as written", "[link]") {
    CHECK(bl::parse_rate("100mbit") == 100'000'000);
    CHECK(bl::parse_rate("1gbit") == 1'000'000'000);
    CHECK(bl::parse_rate("500kbit") == 500'000);
    CHECK(bl::parse_rate("2.5Gbit") == 2'500'000'000);
    CHECK(bl::parse_rate("0") == 0);
    CHECK_THROWS(bl::parse_rate("100mbps"));  // tc's mbps is megabytes: refused
    CHECK_THROWS(bl::parse_rate("100"));
    CHECK(bl::parse_duration("50ms") == 50 * ms_ns);
    CHECK(bl::parse_duration("250us") == 250'000);
    CHECK(bl::parse_duration("1.5s") == 1'500 * ms_ns);
    CHECK(bl::parse_duration("0") == 0);
    CHECK_THROWS(bl::parse_duration("50"));
    CHECK(bl::parse_probability("1%") == Approx(0.01));
    CHECK(bl::parse_probability("0.1%") == Approx(0.001));
    CHECK(bl::parse_probability("0.02") == Approx(0.02));
    CHECK_THROWS(bl::parse_probability("150%"));

    // 100 Mbit/s x 50 ms = 625000 bytes; a queue of 1 BDP is that, never below 64 KiB.
    const auto q = bl::resolve_queue(bl::parse_queue("1bdp"), 100'000'000, 50 * ms_ns);
    CHECK(q.bytes == 625'000);
    CHECK(q.packets == 0);
    CHECK(bl::resolve_queue(bl::parse_queue("1bdp"), 100'000'000, 0).bytes == bl::min_default_queue_bytes);
    CHECK(bl::resolve_queue(bl::parse_queue("10ms"), 100'000'000, 50 * ms_ns).bytes == 125'000);
    CHECK(bl::resolve_queue(bl::parse_queue("100p"), 100'000'000, 50 * ms_ns).packets == 100);
    CHECK(bl::resolve_queue(bl::parse_queue("64K"), 100'000'000, 50 * ms_ns).bytes == 65536);

    bl::link_flags f;
    CHECK_FALSE(f.given);
    CHECK(f.set("--link-rtt", "50ms"));
    CHECK(f.set("--link-rate", "100mbit"));
    CHECK_FALSE(f.set("--bytes", "1M"));
    CHECK(f.given);
    const auto c = f.resolve();
    CHECK(c.to_server.delay_ns == 25 * ms_ns);
    CHECK(c.to_client.delay_ns == 25 * ms_ns);
    CHECK(c.to_server.queue.bytes == 625'000);
}

TEST_CASE("link model: with a fixed seed, no datagram leaves before its delay and serialization", "[link]") {
    bl::direction_config c;
    c.delay_ns = 25 * ms_ns;
    c.jitter_ns = 5 * ms_ns;
    c.rate_bps = 10'000'000;
    c.queue = {0, 0};  // no limit: every datagram goes through
    bl::direction_model m(c, 42);
    bl::rng arrivals(7);
    std::uint64_t now = 1'000 * ms_ns, last_departure = 0, last_release = 0;
    for (int i = 0; i < 20000; ++i) {
        now += arrivals.next() % (2 * ms_ns);  // 0..2 ms apart: sometimes faster than the rate
        const std::size_t size = 50 + arrivals.next() % 1400;
        const auto v = m.admit(now, size);
        REQUIRE(v.what == bl::verdict::fate::forward);
        const std::uint64_t serialization = size * 8 * 1'000'000'000ull / c.rate_bps;
        // It left the bottleneck no sooner than its own sending time after it came and after the
        // previous one left, and the link no sooner than the delay after that, nor later than the
        // delay plus the jitter (unless the one before it was later: FIFO).
        REQUIRE(v.departure_ns >= now + serialization);
        REQUIRE(v.departure_ns >= last_departure + serialization);
        REQUIRE(v.release_ns >= v.departure_ns + c.delay_ns);
        REQUIRE(v.release_ns >= now + c.delay_ns);
        REQUIRE(v.release_ns <= std::max(v.departure_ns + c.delay_ns + c.jitter_ns, last_release));
        REQUIRE(v.release_ns >= last_release);
        last_departure = v.departure_ns;
        last_release = v.release_ns;
    }
}

TEST_CASE("link model: the bottleneck sends at its rate", "[link]") {
    bl::direction_config c;
    c.rate_bps = 10'000'000;  // 1250-byte datagrams: one per ms
    c.queue = {0, 1000};
    bl::direction_model m(c, 1);
    std::uint64_t first = 0, last = 0;
    for (int i = 0; i < 500; ++i) {  // all at once
        const auto v = m.admit(0, 1250);
        REQUIRE(v.what == bl::verdict::fate::forward);
        if (i == 0) first = v.departure_ns;
        last = v.departure_ns;
    }
    CHECK(first == 1 * ms_ns);
    CHECK(last == 500 * ms_ns);  // exactly: no rounding lost over 500 datagrams
}

TEST_CASE("link model: the loss fraction is near the configured probability, and fixed by the seed", "[link]") {
    for (const double p : {0.001, 0.01, 0.1}) {
        bl::direction_config c;
        c.loss = p;
        bl::direction_model m(c, bl::default_seed);
        const int n = 200000;
        int lost = 0;
        for (int i = 0; i < n; ++i) lost += m.admit(static_cast<std::uint64_t>(i) * 1000, 1200).what == bl::verdict::fate::lost;
        const double frac = static_cast<double>(lost) / n;
        const double sigma = std::sqrt(p * (1 - p) / n);
        INFO("p " << p << " lost " << lost << " of " << n);
        CHECK(std::abs(frac - p) <= 4 * sigma);
    }
    // The same seed, the same fates; another seed, others.
    auto fates = [](std::uint64_t seed) {
        bl::direction_config c;
        c.loss = 0.2;
        bl::direction_model m(c, seed);
        std::vector<bool> v;
        for (int i = 0; i < 1000; ++i) v.push_back(m.admit(0, 100).what == bl::verdict::fate::lost);
        return v;
    };
    CHECK(fates(5) == fates(5));
    CHECK(fates(5) != fates(6));
}

TEST_CASE("link model: a queue limit drops what overruns it", "[link]") {
    bl::direction_config c;
    c.rate_bps = 1'000'000;  // 1000-byte datagrams take 8 ms each
    SECTION("in packets") { c.queue = {0, 10}; }
    SECTION("in bytes") { c.queue = {10'000, 0}; }
    bl::direction_model m(c, 3);
    auto burst = [&](std::uint64_t at, int n) {
        int forwarded = 0;
        for (int i = 0; i < n; ++i) forwarded += m.admit(at, 1000).what == bl::verdict::fate::forward;
        return forwarded;
    };
    CHECK(burst(0, 100) == 10);         // 10 fit (the one being sent counts), 90 are tail-dropped
    CHECK(burst(4 * ms_ns, 5) == 0);    // still full: the first leaves at 8 ms
    CHECK(burst(24 * ms_ns, 5) == 3);   // three have left by 24 ms
    CHECK(burst(500 * ms_ns, 20) == 10);  // drained: room for 10 again
    CHECK(m.backlog_bytes(500 * ms_ns) == Approx(10'000));
    CHECK(m.backlog_bytes(580 * ms_ns) == Approx(0));

    // A sender at twice the rate for a long time: half its datagrams get through, at the rate.
    bl::direction_config d;
    d.rate_bps = 1'000'000;
    d.queue = {20'000, 0};
    bl::direction_model slow(d, 4);
    int forwarded = 0;
    std::uint64_t last_departure = 0;
    for (int i = 0; i < 10000; ++i) {
        const auto v = slow.admit(static_cast<std::uint64_t>(i) * 4 * ms_ns, 1000);  // 1000 B every 4 ms = 2 Mbit/s
        if (v.what == bl::verdict::fate::forward) {
            ++forwarded;
            last_departure = v.departure_ns;
        }
    }
    CHECK(forwarded >= 4990);
    CHECK(forwarded <= 5030);
    CHECK(last_departure >= static_cast<std::uint64_t>(forwarded) * 8 * ms_ns);
}

TEST_CASE("link model: order is kept without reordering, with or without jitter, and reordering holds some back", "[link]") {
    bl::direction_config c;
    c.delay_ns = 10 * ms_ns;
    c.rate_bps = 100'000'000;
    c.queue = {0, 0};
    SECTION("no jitter") {}
    SECTION("jitter") { c.jitter_ns = 20 * ms_ns; }
    SECTION("reorder") {
        c.reorder = 0.05;
        c.reorder_gap_ns = 2 * ms_ns;
    }
    bl::direction_model m(c, 11);
    std::uint64_t last_inline = 0, last_late = 0;
    int reordered = 0;
    const int n = 50000;
    for (int i = 0; i < n; ++i) {
        const auto v = m.admit(static_cast<std::uint64_t>(i) * 50'000, 1200);
        REQUIRE(v.what == bl::verdict::fate::forward);
        if (v.reordered) {
            ++reordered;
            // Its place in line is no earlier than the last in-line release; it leaves a gap later.
            REQUIRE(v.release_ns >= last_inline + c.reorder_gap_ns);
            REQUIRE(v.release_ns >= last_late);
            last_late = v.release_ns;
        } else {
            REQUIRE(v.release_ns >= last_inline);
            last_inline = v.release_ns;
        }
    }
    if (c.reorder == 0) {
        CHECK(reordered == 0);
    } else {
        CHECK(std::abs(reordered - 0.05 * n) <= 4 * std::sqrt(0.05 * 0.95 * n));
    }
}

TEST_CASE("packet ring: first in, first out, contents intact across wrap-around, refuses when full", "[link]") {
    bl::packet_ring ring(4096);
    bl::rng sizes(9);
    std::uint32_t next_in = 0, next_out = 0;
    std::vector<std::byte> buf(1500);
    int refused = 0;
    for (int round = 0; round < 2000; ++round) {
        // Push a few of random size (some refused when full), pop a few.
        const int pushes = static_cast<int>(sizes.next() % 4);
        for (int i = 0; i < pushes; ++i) {
            const std::size_t n = 4 + sizes.next() % 700;
            std::memcpy(buf.data(), &next_in, 4);
            for (std::size_t k = 4; k < n; ++k) buf[k] = static_cast<std::byte>(next_in + k);
            if (ring.push(next_in, static_cast<std::uint16_t>(next_in % 7), buf.data(), n)) ++next_in;
            else ++refused;
        }
        const int pops = static_cast<int>(sizes.next() % 4);
        for (int i = 0; i < pops && !ring.empty(); ++i) {
            const auto h = ring.front();
            REQUIRE(h.release_ns == next_out);
            REQUIRE(h.flow == next_out % 7);
            const std::byte* d = ring.front_data();
            std::uint32_t seq = 0;
            std::memcpy(&seq, d, 4);
            REQUIRE(seq == next_out);
            for (std::size_t k = 4; k < h.size; ++k) REQUIRE(d[k] == static_cast<std::byte>(next_out + k));
            ring.pop();
            ++next_out;
        }
        REQUIRE(ring.size() == next_in - next_out);
    }
    CHECK(next_out > 1000);
    CHECK(refused > 0);  // it did fill up, and said so
    CHECK_FALSE(ring.push(0, 0, buf.data(), 5000));  // bigger than the ring
}

TEST_CASE("link emulator: delay is never shorter than configured, both ways, and order is kept", "[link]") {
    udp_socket server, client;
    bl::direction_config d = plain(20 * ms_ns);
    SECTION("delay only") {}
    SECTION("delay, rate and jitter") {
        d.rate_bps = 50'000'000;
        d.queue = {1 << 20, 0};
        d.jitter_ns = 5 * ms_ns;
    }
    bl::link_emulator link(both_ways(d), server.address());
    const auto to_link = bl::loopback(AF_INET, link.port());
    const std::uint32_t n = 300;
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto p = probe(i, 1200);
        client.send_to(to_link, p.data(), p.size());
    }
    const auto up = relay_until(link, server, n);
    REQUIRE(up.size() == n);
    for (std::uint32_t i = 0; i < n; ++i) {
        INFO("datagram " << i);
        REQUIRE(seq_of(up[i]) == i);  // in order
        REQUIRE(up[i].kernel_ns >= sent_ns_of(up[i]) + d.delay_ns);
        REQUIRE(up[i].data.size() == 1200);
    }
    // The server answers each to the address it came from (the emulator's upstream socket); the
    // answers come back to the client through the other direction.
    for (const auto& dg : up) {
        auto answer = dg.data;
        const std::uint64_t t = realtime_ns();
        std::memcpy(answer.data() + 4, &t, 8);
        server.send_to(dg.from, answer.data(), answer.size());
    }
    const auto down = relay_until(link, client, n);
    REQUIRE(down.size() == n);
    for (std::uint32_t i = 0; i < n; ++i) {
        REQUIRE(seq_of(down[i]) == i);
        REQUIRE(down[i].kernel_ns >= sent_ns_of(down[i]) + d.delay_ns);
        REQUIRE(bl::address_port(down[i].from) == link.port());
    }
    CHECK(link.flows() == 1);
    for (auto dir : {bl::link_emulator::to_server, bl::link_emulator::to_client}) {
        const auto& c = link.counters(dir);
        CHECK(c.received == n);
        CHECK(c.forwarded == n);
        CHECK(c.bytes_forwarded == n * 1200ull);
        CHECK(c.lost + c.queue_drops + c.reordered + c.overflow + c.send_errors + c.kernel_drops == 0);
        CHECK(c.lateness.count() == n);
    }
}

TEST_CASE("link emulator: random loss follows the seed, datagram by datagram", "[link]") {
    udp_socket server, client;
    bl::direction_config d = plain(1 * ms_ns);
    d.loss = 0.1;
    const std::uint64_t seed = GENERATE(as<std::uint64_t>{}, 1, 2, 3);
    bl::link_emulator link(both_ways(d, seed), server.address());
    const auto to_link = bl::loopback(AF_INET, link.port());
    // Which datagrams the model loses with this direction's seed: loss does not depend on time.
    bl::direction_model model(d, bl::link_emulator::direction_seed(seed, bl::link_emulator::to_server));
    const std::uint32_t n = 2000;
    std::set<std::uint32_t> expected;
    for (std::uint32_t i = 0; i < n; ++i)
        if (model.admit(0, 200).what == bl::verdict::fate::forward) expected.insert(i);
    // Sent in groups, relayed in between, so that no socket buffer can overflow.
    std::vector<udp_socket::datagram> got;
    for (std::uint32_t i = 0; i < n; i += 100) {
        const auto before = link.counters(bl::link_emulator::to_server).received;
        for (std::uint32_t k = i; k < i + 100; ++k) {
            const auto p = probe(k, 200);
            client.send_to(to_link, p.data(), p.size());
        }
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (link.counters(bl::link_emulator::to_server).received < before + 100 && std::chrono::steady_clock::now() < deadline)
            link.step(5ms);
    }
    const auto& c = link.counters(bl::link_emulator::to_server);
    REQUIRE(c.received == n);
    got = relay_until(link, server, expected.size());
    std::set<std::uint32_t> seqs;
    for (const auto& dg : got) seqs.insert(seq_of(dg));
    CHECK(seqs == expected);
    CHECK(c.lost == n - expected.size());
    CHECK(c.forwarded == expected.size());
    CHECK(c.kernel_drops == 0);
    // Near the probability too (4 sigma over 2000 datagrams).
    CHECK(std::abs(static_cast<double>(c.lost) - 0.1 * n) <= 4 * std::sqrt(0.1 * 0.9 * n));
}

TEST_CASE("link emulator: a burst that overruns the queue is tail-dropped", "[link]") {
    udp_socket server, client;
    bl::direction_config d;
    d.rate_bps = 1'000'000;  // 1000 bytes: 8 ms each
    d.queue = {0, 5};
    bl::link_emulator link(both_ways(d), server.address());
    const auto to_link = bl::loopback(AF_INET, link.port());
    const std::uint32_t n = 50;
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto p = probe(i, 1000);
        client.send_to(to_link, p.data(), p.size());
    }
    // Relay until all 50 came in and nothing is held any more.
    const auto& c = link.counters(bl::link_emulator::to_server);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while ((c.received < n || link.held(bl::link_emulator::to_server) > 0) && std::chrono::steady_clock::now() < deadline)
        link.step(5ms);
    REQUIRE(c.received == n);
    REQUIRE(link.held(bl::link_emulator::to_server) == 0);
    CHECK(c.forwarded + c.queue_drops == n);
    // All 50 were in the emulator's socket before its first read, so they arrived together: the
    // first is sent at once and 4 wait behind it; the other 45 find the queue full.
    CHECK(c.forwarded == 5);
    CHECK(c.queue_drops == 45);
    const auto got = relay_until(link, server, c.forwarded, 2000ms);
    CHECK(got.size() == c.forwarded);
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(seq_of(got[i]) == i);  // the first ones fit; the tail was dropped
}

TEST_CASE("link emulator: run() on its own thread serves several clients and stops when asked", "[link]") {
    udp_socket server, a, b;
    bl::link_emulator link(both_ways(plain(2 * ms_ns)), server.address());
    const auto to_link = bl::loopback(AF_INET, link.port());
    std::thread relay([&] { link.run(30s); });
    struct stop_and_join {  // also when a REQUIRE below fails
        bl::link_emulator& l;
        std::thread& t;
        ~stop_and_join() {
            if (t.joinable()) {
                l.stop();
                t.join();
            }
        }
    } guard{link, relay};
    const auto pa = probe(1, 100), pb = probe(2, 100);
    a.send_to(to_link, pa.data(), pa.size());
    b.send_to(to_link, pb.data(), pb.size());
    std::set<std::uint16_t> upstream_ports;
    for (int i = 0; i < 2; ++i) {
        udp_socket::datagram dg;
        REQUIRE(server.receive(dg, 5000ms));
        upstream_ports.insert(bl::address_port(dg.from));
        server.send_to(dg.from, dg.data.data(), dg.data.size());  // echo
    }
    CHECK(upstream_ports.size() == 2);  // one upstream socket per client
    udp_socket::datagram ea, eb;
    REQUIRE(a.receive(ea, 5000ms));
    REQUIRE(b.receive(eb, 5000ms));
    CHECK(seq_of(ea) == 1);  // each echo went back to its own client
    CHECK(seq_of(eb) == 2);
    link.stop();
    relay.join();
    CHECK(link.flows() == 2);
    CHECK(link.counters(bl::link_emulator::to_server).forwarded == 2);
    CHECK(link.counters(bl::link_emulator::to_client).forwarded == 2);
}

TEST_CASE("link emulator: 256 clients at once, each its own flow, each answer back to its own client, and one more is refused", "[link][clients]") {
    // h3co_bench clients --clients 256: every client socket is a flow of its own (an upstream
    // socket toward the server), and the server's answers must go back to the right one.
    constexpr std::size_t n = 256;
    udp_socket server;
    auto cfg = both_ways(plain(1 * ms_ns));
    cfg.max_flows = n;
    bl::link_emulator link(cfg, server.address());
    const auto to_link = bl::loopback(AF_INET, link.port());
    std::vector<std::unique_ptr<udp_socket>> clients;
    for (std::size_t i = 0; i < n + 1; ++i) clients.push_back(std::make_unique<udp_socket>());
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto p = probe(i, 200);
        clients[i]->send_to(to_link, p.data(), p.size());
    }
    const auto up = relay_until(link, server, n);
    REQUIRE(up.size() == n);
    std::set<std::uint16_t> upstream_ports;
    std::set<std::uint32_t> seqs;
    for (const auto& dg : up) {
        upstream_ports.insert(bl::address_port(dg.from));
        seqs.insert(seq_of(dg));
        server.send_to(dg.from, dg.data.data(), dg.data.size());  // echo through the flow it came on
    }
    CHECK(upstream_ports.size() == n);  // one upstream socket per client
    CHECK(seqs.size() == n);
    // Every client gets exactly its own datagram back.
    std::vector<int> got(n, 0);
    std::size_t total = 0, wrong = 0;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (total < n && std::chrono::steady_clock::now() < deadline) {
        link.step(5ms);
        for (std::uint32_t i = 0; i < n; ++i) {
            udp_socket::datagram d;
            while (clients[i]->try_receive(d)) {
                ++total;
                if (seq_of(d) == i) ++got[i];
                else ++wrong;
            }
        }
    }
    CHECK(total == n);
    CHECK(wrong == 0);
    CHECK(std::count(got.begin(), got.end(), 1) == static_cast<long>(n));
    CHECK(link.flows() == n);
    // The 257th client address is beyond max_flows: counted, not relayed, nothing else disturbed.
    const auto extra = probe(9999, 200);
    clients[n]->send_to(to_link, extra.data(), extra.size());
    for (int i = 0; i < 200 && link.counters(bl::link_emulator::to_server).no_flow == 0; ++i) link.step(5ms);
    CHECK(link.counters(bl::link_emulator::to_server).no_flow == 1);
    CHECK(link.counters(bl::link_emulator::to_server).forwarded == n);
    CHECK(link.flows() == n);
}

TEST_CASE("lateness histogram: percentiles are the holding bucket's upper edge, never above the maximum", "[link]") {
    bl::lateness_histogram h;
    CHECK(std::isnan(h.percentile_us(50)));
    for (std::uint64_t us = 1; us <= 100; ++us) h.add(us * 1000 + 500);  // 1.5 us .. 100.5 us
    CHECK(h.count() == 100);
    CHECK(h.percentile_us(50) == Approx(51));   // the 50th value, 50.5 us, is in [50, 51)
    CHECK(h.percentile_us(99) == Approx(100));  // 99.5 us, in [99, 100)
    CHECK(h.percentile_us(100) == Approx(100.5));  // capped at the maximum, 100.5 us
    h.add(2'400'000);  // 2.4 ms: 1 ms buckets
    CHECK(h.percentile_us(100) == Approx(2400));
    CHECK(h.max_us() == Approx(2400));
}

TEST_CASE("link emulator: holding a datagram due later does not hold back one due sooner", "[link]") {
    // To the server without delay, to the client 500 ms. While the emulator holds a datagram for
    // the client, datagrams for the server must still go at once, not when the held one is due.
    udp_socket server, client;
    bl::link_config cfg = both_ways(plain(0));
    cfg.to_client = plain(500 * ms_ns);
    bl::link_emulator link(cfg, server.address());
    const auto to_link = bl::loopback(AF_INET, link.port());
    std::thread relay([&] { link.run(30s); });
    struct stop_and_join {
        bl::link_emulator& l;
        std::thread& t;
        ~stop_and_join() {
            if (t.joinable()) {
                l.stop();
                t.join();
            }
        }
    } guard{link, relay};

    const auto a = probe(0, 100);
    client.send_to(to_link, a.data(), a.size());
    udp_socket::datagram got_a;
    REQUIRE(server.receive(got_a, 5000ms));
    const auto b = probe(1000, 100);
    server.send_to(got_a.from, b.data(), b.size());  // held 500 ms on its way to the client
    // Ten datagrams for the server over the next 200 ms (the waits only pace them): each goes
    // straight through, all long before the one held for the client.
    std::vector<udp_socket::datagram> ups;
    for (std::uint32_t i = 1; i <= 10; ++i) {
        const auto c = probe(i, 100);
        client.send_to(to_link, c.data(), c.size());
        udp_socket::datagram d;
        REQUIRE(server.receive(d, 5000ms));
        ups.push_back(d);
        udp_socket::datagram none;
        client.receive(none, 20ms);
    }
    udp_socket::datagram got_b;
    REQUIRE(client.receive(got_b, 5000ms));
    REQUIRE(seq_of(got_b) == 1000);
    REQUIRE(got_b.kernel_ns >= sent_ns_of(got_b) + 500 * ms_ns);
    for (const auto& d : ups) {
        INFO("datagram " << seq_of(d));
        CHECK(d.kernel_ns < got_b.kernel_ns);
    }
}

TEST_CASE("link emulator: relays over IPv6 loopback too", "[link]") {
    udp_socket server(AF_INET6), client(AF_INET6);
    bl::link_emulator link(both_ways(plain(1 * ms_ns)), server.address());
    const auto to_link = bl::loopback(AF_INET6, link.port());
    for (std::uint32_t i = 0; i < 20; ++i) {
        const auto p = probe(i, 300);
        client.send_to(to_link, p.data(), p.size());
    }
    const auto up = relay_until(link, server, 20);
    REQUIRE(up.size() == 20);
    for (const auto& dg : up) {
        REQUIRE(dg.from.ss_family == AF_INET6);
        server.send_to(dg.from, dg.data.data(), dg.data.size());
    }
    const auto down = relay_until(link, client, 20);
    REQUIRE(down.size() == 20);
    for (std::uint32_t i = 0; i < 20; ++i) {
        CHECK(seq_of(up[i]) == i);
        CHECK(seq_of(down[i]) == i);
    }
    CHECK_THROWS_AS(bl::link_emulator(both_ways(plain()), bl::parse_endpoint("192.0.2.1:443")), std::invalid_argument);  // loopback only
}

}  // namespace link_emulator_test
