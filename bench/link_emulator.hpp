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
// The model (what happens to each datagram: loss, bottleneck, delay, jitter, reordering) is in
// link_model.hpp, the --link-* flags in link_flags.hpp; this file is the sockets.
#pragma once

#include "link_flags.hpp"
#include "link_model.hpp"

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

}  // namespace bench::link
