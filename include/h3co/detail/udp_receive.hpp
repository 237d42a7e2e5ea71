// Receiving QUIC packets with as few system calls as the kernel allows: with UDP GRO a single
// recvmsg returns a run of equal-sized datagrams from one sender glued together (on loopback, a
// whole GSO send arrives as one), plus the segment size to split them by, and their ECN bits.
#pragma once

#include <asio/error.hpp>

#include <algorithm>
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

#ifndef UDP_GRO
#define UDP_GRO 104  // linux/udp.h; glibc's netinet/udp.h lacks it on older systems
#endif

namespace h3co::detail {

/// Asks the kernel to coalesce datagrams (Linux 5.0+). False where it refuses: then every
/// receive returns one datagram, which receive_datagrams handles the same way.
inline bool enable_udp_gro(int fd) noexcept {
    const int on = 1;
    return ::setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
}

/// Asks for each datagram's ECN bits (IP_RECVTOS / IPV6_RECVTCLASS; a dual-stack IPv6 socket
/// needs both). False where the kernel refuses: datagrams then count as not ECN-capable.
inline bool enable_ecn_receive(int fd, bool ipv6) noexcept {
    const int on = 1;
    bool ok = ::setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &on, sizeof on) == 0;
    if (ipv6) ok = ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &on, sizeof on) == 0 && ok;
    return ok;
}

/// What one receive_datagrams call got: `len` bytes holding datagrams of `segment` bytes each
/// (the last may be shorter) from one sender, all with the ECN codepoint `ecn`.
struct received_datagrams {
    std::size_t len = 0;
    std::size_t segment = 0;
    std::uint8_t ecn = 0;
};

/// One non-blocking recvmsg into `buf`. The sender goes to `from`, which has room for `from_len`
/// bytes and is set to the address's size (`from` may be null on a connected socket). Fails with
/// asio::error::would_block when the queue is empty.
inline received_datagrams receive_datagrams(int fd, std::uint8_t* buf, std::size_t capacity, sockaddr* from,
                                            socklen_t& from_len, std::error_code& ec) noexcept {
    iovec iov{buf, capacity};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int)) * 2] = {};
    msghdr msg{};
    msg.msg_name = from;
    msg.msg_namelen = from ? from_len : 0;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        // Asio's own system category, so that callers compare with asio::error values.
        ec = (errno == EAGAIN || errno == EWOULDBLOCK) ? std::error_code(asio::error::would_block)
                                                       : std::error_code(errno, asio::error::get_system_category());
        return {};
    }
    ec.clear();
    from_len = msg.msg_namelen;
    received_datagrams got{static_cast<std::size_t>(n), static_cast<std::size_t>(n)};
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
            int segment = 0;
            std::memcpy(&segment, CMSG_DATA(cm), sizeof segment);
            if (segment > 0) got.segment = static_cast<std::size_t>(segment);
        } else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TOS) {
            std::uint8_t tos = 0;  // one byte for IPv4
            std::memcpy(&tos, CMSG_DATA(cm), sizeof tos);
            got.ecn = tos & 0x3;
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_TCLASS) {
            int tclass = 0;
            std::memcpy(&tclass, CMSG_DATA(cm), sizeof tclass);
            got.ecn = static_cast<std::uint8_t>(tclass & 0x3);
        }
    }
    return got;
}

/// Calls `f(data, len)` for each datagram of a batch.
template <class F>
void for_each_datagram(const std::uint8_t* buf, received_datagrams got, F&& f) {
    for (std::size_t off = 0; off < got.len; off += got.segment) f(buf + off, std::min(got.segment, got.len - off));
}

}  // namespace h3co::detail
