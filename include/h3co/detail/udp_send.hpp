// Sending a batch of equal-sized QUIC packets to one peer with as few system calls as the kernel
// allows: one sendmsg with UDP_SEGMENT (GSO) when available, else one send per packet; each with
// the ECN codepoint ngtcp2 chose, where the kernel takes it.
#pragma once

#include <asio/socket_base.hpp>

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

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103  // linux/udp.h; glibc's netinet/udp.h lacks it on older systems
#endif

namespace h3co::detail {

/// Result of send_segments: how many bytes of the batch left, and whether the socket is full.
struct send_result {
    std::size_t sent = 0;
    bool would_block = false;
};

/// What to switch off for good when the kernel refuses it (anything but EAGAIN).
struct send_features {
    bool gso = true;  ///< UDP_SEGMENT: many datagrams per sendmsg
    bool ecn = true;  ///< the ECN bits ngtcp2 asks for, as IP_TOS / IPV6_TCLASS per send
};

namespace udp_detail {

inline bool is_ipv4(const sockaddr* peer) {
    if (peer->sa_family == AF_INET) return true;
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(peer);
    return peer->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr);  // dual-stack socket
}

/// One sendmsg of `len` bytes, as datagrams of `segment` bytes when `segment` < len (GSO), with
/// the ECN codepoint `ecn` (0: none). Returns the errno, or 0.
inline int send_once(int fd, const sockaddr* to, socklen_t to_len, const sockaddr* peer, const std::uint8_t* data,
                     std::size_t len, std::size_t segment, std::uint8_t ecn) {
    iovec iov{const_cast<std::uint8_t*>(data), len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint16_t)) + CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_name = const_cast<sockaddr*>(to);
    msg.msg_namelen = to ? to_len : 0;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
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
    for (;;) {
        if (::sendmsg(fd, &msg, 0) >= 0) return 0;
        if (errno != EINTR) return errno;
    }
}

}  // namespace udp_detail

/// Sends `len` bytes as datagrams of `segment` bytes each (the last may be shorter) to `to`
/// (nullptr on a connected socket), whose address is `peer`, marked with the ECN codepoint `ecn`
/// (0: not ECN-capable). What the kernel refuses is switched off in `features` for good.
inline send_result send_segments(int fd, const sockaddr* to, socklen_t to_len, const sockaddr* peer,
                                 const std::uint8_t* data, std::size_t len, std::size_t segment, std::uint8_t ecn,
                                 send_features& features) {
    send_result result;
    if (!features.ecn) ecn = 0;
    const auto blocked = [](int err) { return err == EAGAIN || err == EWOULDBLOCK; };
    if (features.gso && len > segment) {
        int err = udp_detail::send_once(fd, to, to_len, peer, data, len, segment, ecn);
        if (err != 0 && !blocked(err) && ecn != 0) {  // no ECN here: drop the mark, keep GSO
            features.ecn = false;
            ecn = 0;
            err = udp_detail::send_once(fd, to, to_len, peer, data, len, segment, 0);
        }
        if (err == 0) return {len, false};
        if (blocked(err)) return {0, true};
        features.gso = false;  // EIO/EINVAL/...: no GSO here; fall through to one send per packet
    }
    while (result.sent < len) {
        const std::size_t n = std::min(segment, len - result.sent);
        int err = udp_detail::send_once(fd, to, to_len, peer, data + result.sent, n, n, ecn);
        if (err != 0 && !blocked(err) && ecn != 0) {
            features.ecn = false;
            ecn = 0;
            err = udp_detail::send_once(fd, to, to_len, peer, data + result.sent, n, n, 0);
        }
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
