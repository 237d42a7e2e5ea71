// Sending QUIC packets with as few system calls as the kernel allows: equal-sized packets to one
// peer as one message with UDP_SEGMENT (GSO), many such messages, to any peers, in one sendmmsg;
// each with the ECN codepoint ngtcp2 chose, where the kernel takes it. Without GSO or sendmmsg,
// one sendmsg per packet.
#pragma once

#include <h3co/detail/datagram_run.hpp>

#include <asio/socket_base.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <system_error>

#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103  // linux/udp.h; glibc's netinet/udp.h lacks it on older systems
#endif

namespace h3co::detail {

/// Result of send_segments: how many bytes of the batch left, and whether the socket is full.
struct send_result {
    std::size_t sent = 0;
    bool would_block = false;
};

/// What to switch off for good when the kernel says it cannot do it, and what the sends met.
struct send_features {
    bool gso = true;  ///< UDP_SEGMENT: many datagrams per sendmsg
    bool ecn = true;  ///< the ECN bits ngtcp2 asks for, as IP_TOS / IPV6_TCLASS per send
    std::uint64_t send_errors = 0;    ///< sends that failed with anything but EAGAIN (packets dropped or resent)
    std::uint64_t gso_fallbacks = 0;  ///< GSO switched off: the kernel or device cannot segment
    std::uint64_t ecn_fallbacks = 0;  ///< ECN marks switched off: the kernel refused the TOS cmsg
};

namespace udp_detail {

inline bool is_ipv4(const sockaddr* peer) {
    if (peer->sa_family == AF_INET) return true;
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(peer);
    return peer->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr);  // dual-stack socket
}

/// Room for the control messages a send may carry: GSO's segment size and the ECN bits.
inline constexpr std::size_t send_control_size = CMSG_SPACE(sizeof(std::uint16_t)) + CMSG_SPACE(sizeof(int));

/// Fills `msg` for one send of `len` bytes to `to` (null: connected socket), as datagrams of
/// `segment` bytes when `segment` < len (GSO), with the ECN codepoint `ecn` (0: none).
inline void prepare_message(msghdr& msg, iovec& iov, char* control, const sockaddr* to, socklen_t to_len,
                            const sockaddr* peer, const std::uint8_t* data, std::size_t len, std::size_t segment,
                            std::uint8_t ecn) {
    iov = iovec{const_cast<std::uint8_t*>(data), len};
    std::memset(control, 0, send_control_size);
    msg = msghdr{};
    msg.msg_name = const_cast<sockaddr*>(to);
    msg.msg_namelen = to ? to_len : 0;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = send_control_size;
    std::size_t used = 0;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    if (segment < len) {
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
        const auto seg16 = static_cast<std::uint16_t>(segment);
        std::memcpy(CMSG_DATA(cm), &seg16, sizeof seg16);
        used += CMSG_SPACE(sizeof(std::uint16_t));
        cm = CMSG_NXTHDR(&msg, cm);
    }
    if (ecn != 0) {
        const bool v4 = is_ipv4(peer);
        cm->cmsg_level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
        cm->cmsg_type = v4 ? IP_TOS : IPV6_TCLASS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        const int tos = ecn;
        std::memcpy(CMSG_DATA(cm), &tos, sizeof tos);
        used += CMSG_SPACE(sizeof(int));
    }
    msg.msg_controllen = used;
    if (used == 0) msg.msg_control = nullptr;
}

/// A test seam: when set, called with each message before it is sent; a non-zero return is taken
/// as the errno of that send, which then does not happen (a sendmmsg fails at its first message).
using send_fault_fn = int (*)(const msghdr&);
inline std::atomic<send_fault_fn> send_fault{nullptr};

inline int injected_fault(const msghdr& msg) {
    const auto fault = send_fault.load(std::memory_order_relaxed);
    return fault ? fault(msg) : 0;
}

/// Errors that say this kernel or device cannot segment (GSO): EIO where the device has no
/// checksum offload, EINVAL for a segment size or count it does not take (udp_send_skb). As
/// quinn-udp and quic-go read them.
inline bool gso_unsupported(int err) { return err == EIO || err == EINVAL; }

/// The error a refused IP_TOS / IPV6_TCLASS cmsg gives (ip_cmsg_send, ip6_datagram_send_ctl).
inline bool ecn_unsupported(int err) { return err == EINVAL; }

/// One sendmsg (see prepare_message). Returns the errno, or 0.
inline int send_once(int fd, const sockaddr* to, socklen_t to_len, const sockaddr* peer, const std::uint8_t* data,
                     std::size_t len, std::size_t segment, std::uint8_t ecn) {
    msghdr msg;
    iovec iov;
    alignas(cmsghdr) char control[send_control_size];
    prepare_message(msg, iov, control, to, to_len, peer, data, len, segment, ecn);
    if (const int err = injected_fault(msg)) return err;
    for (;;) {
        if (::sendmsg(fd, &msg, 0) >= 0) return 0;
        if (errno != EINTR) return errno;
    }
}

}  // namespace udp_detail

/// Sends `len` bytes as datagrams of `segment` bytes each (the last may be shorter) to `to`
/// (nullptr on a connected socket), whose address is `peer`, marked with the ECN codepoint `ecn`
/// (0: not ECN-capable). GSO or ECN is switched off in `features` for good only on the errors that
/// say the kernel cannot do it; other errors (EPERM from a firewall, ENETUNREACH, EMSGSIZE...)
/// concern this send alone and are counted.
inline send_result send_segments(int fd, const sockaddr* to, socklen_t to_len, const sockaddr* peer,
                                 const std::uint8_t* data, std::size_t len, std::size_t segment, std::uint8_t ecn,
                                 send_features& features) {
    send_result result;
    if (!features.ecn) ecn = 0;
    const auto blocked = [](int err) { return err == EAGAIN || err == EWOULDBLOCK; };
    // Sends once; on an error that may be the ECN cmsg's, again without it: if that one does not
    // fail the same way, the mark was the cause and ECN goes off.
    const auto send = [&](const std::uint8_t* at, std::size_t n, std::size_t seg) {
        int err = udp_detail::send_once(fd, to, to_len, peer, at, n, seg, ecn);
        if (err == 0 || blocked(err)) return err;
        ++features.send_errors;
        if (ecn != 0 && udp_detail::ecn_unsupported(err)) {
            const int plain = udp_detail::send_once(fd, to, to_len, peer, at, n, seg, 0);
            if (plain == 0 || !udp_detail::ecn_unsupported(plain)) {
                features.ecn = false;
                ++features.ecn_fallbacks;
                ecn = 0;
            }
            if (plain != 0 && !blocked(plain)) ++features.send_errors;
            err = plain;
        }
        return err;
    };
    if (features.gso && len > segment) {
        const int err = send(data, len, segment);
        if (err == 0) return {len, false};
        if (blocked(err)) return {0, true};
        if (udp_detail::gso_unsupported(err)) {  // no GSO here: one send per packet from now on
            features.gso = false;
            ++features.gso_fallbacks;
        }
        // Either way, this batch goes again packet by packet: an error that concerned one send
        // (an ICMP report pending on the socket) must not take the whole batch with it.
    }
    while (result.sent < len) {
        const std::size_t n = std::min(segment, len - result.sent);
        const int err = send(data + result.sent, n, n);
        if (blocked(err)) {
            result.would_block = true;
            return result;
        }
        // Other errors (e.g. ICMP-reported refusal on a connected socket) drop this packet;
        // QUIC's loss recovery or the receive path deals with the cause.
        result.sent += n;
    }
    return result;
}

/// Sends `runs` in order with as few system calls as the kernel allows: up to `max_messages` runs
/// per sendmmsg (each one GSO message; each packet its own message where GSO is off), one
/// sendmsg per run when max_messages is 1. `connected`: the socket has its peer fixed, so no
/// address goes with each message. What the kernel refuses is switched off in `features`.
/// Returns how many runs were sent entirely (a run partly sent is advanced in place); fewer than
/// `count` means the socket is full.
inline std::size_t send_runs(int fd, bool connected, datagram_run* runs, std::size_t count, std::size_t max_messages,
                             send_features& features) {
    constexpr std::size_t batch_limit = 64;
    std::size_t done = 0;
    // Sends runs[done] alone through send_segments, which finds out what the kernel refuses.
    const auto send_one = [&] {
        datagram_run& r = runs[done];
        const auto sent = send_segments(fd, connected ? nullptr : r.peer(), r.to_len, r.peer(), r.data, r.len,
                                        r.segment, r.ecn, features);
        r.data += sent.sent;
        r.len -= sent.sent;
        if (sent.would_block) return false;
        ++done;
        return true;
    };
    while (done < count) {
        if (runs[done].len == 0) {
            ++done;
            continue;
        }
        if (max_messages <= 1 || count - done == 1) {
            if (!send_one()) return done;
            continue;
        }
        mmsghdr msgs[batch_limit];
        iovec iovs[batch_limit];
        alignas(cmsghdr) char controls[batch_limit][udp_detail::send_control_size];
        std::size_t owner[batch_limit];
        const std::size_t limit = std::min(max_messages, batch_limit);
        std::size_t m = 0;
        for (std::size_t r = done, offset = 0; m < limit && r < count;) {
            const datagram_run& run = runs[r];
            const std::size_t piece = features.gso ? run.len - offset : std::min(run.segment, run.len - offset);
            if (piece > 0) {
                udp_detail::prepare_message(msgs[m].msg_hdr, iovs[m], controls[m], connected ? nullptr : run.peer(),
                                            run.to_len, run.peer(), run.data + offset, piece,
                                            std::min(run.segment, piece), features.ecn ? run.ecn : 0);
                msgs[m].msg_len = 0;
                owner[m++] = r;
            }
            offset += piece;
            if (offset == run.len) {
                ++r;
                offset = 0;
            }
        }
        int n;
        if (const int err = udp_detail::injected_fault(msgs[0].msg_hdr)) {
            n = -1;
            errno = err;
        } else {
            do {
                n = ::sendmmsg(fd, msgs, static_cast<unsigned>(m), 0);
            } while (n < 0 && errno == EINTR);
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return done;
            if (!send_one()) return done;  // the first message failed: find out why
            continue;
        }
        for (int k = 0; k < n; ++k) {
            datagram_run& run = runs[owner[k]];
            run.data += iovs[k].iov_len;
            run.len -= iovs[k].iov_len;
        }
        while (done < count && runs[done].len == 0) ++done;
    }
    return done;
}

/// Sets Don't Fragment on what the socket sends (RFC 9000 §14: QUIC packets are never fragmented
/// by IP): IP_PMTUDISC_PROBE / IPV6_PMTUDISC_PROBE set DF without applying the kernel's cached path
/// MTU, so path-MTU probes find the path's real limit; a packet too big for the local interface
/// fails with EMSGSIZE and is dropped like a lost one. A dual-stack IPv6 socket needs both. Best
/// effort: false where the kernel refuses.
inline bool apply_dont_fragment(int fd, bool ipv6) noexcept {
    bool ok = true;
#if defined(IP_MTU_DISCOVER) && defined(IP_PMTUDISC_PROBE)
    const int v4 = IP_PMTUDISC_PROBE;
    ok = ::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v4, sizeof v4) == 0 || ipv6;
#endif
#if defined(IPV6_MTU_DISCOVER) && defined(IPV6_PMTUDISC_PROBE)
    if (ipv6) {
        const int v6 = IPV6_PMTUDISC_PROBE;
        ok = ::setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v6, sizeof v6) == 0 && ok;
    }
#endif
    return ok;
}

/// Asks for bigger socket buffers: a burst of packets must fit in the receiver's buffer, or the
/// kernel drops it and congestion control backs off. Best effort: the kernel may cap the sizes.
template <class Socket>
void apply_socket_buffers(Socket& socket, std::size_t bytes) {
    if (bytes == 0) return;
    std::error_code ignored;
    socket.set_option(asio::socket_base::receive_buffer_size(static_cast<int>(bytes)), ignored);
    socket.set_option(asio::socket_base::send_buffer_size(static_cast<int>(bytes)), ignored);
}

}  // namespace h3co::detail
