// Sending a batch of equal-sized QUIC packets to one peer with as few system calls as the kernel
// allows: one sendmsg with UDP_SEGMENT (GSO) when available, else one send per packet.
#pragma once

#include <asio/socket_base.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <system_error>

#include <netinet/in.h>
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

/// Sends `len` bytes as datagrams of `segment` bytes each (the last may be shorter) to `to`
/// (nullptr on a connected socket). `use_gso` is cleared for good if the kernel refuses GSO.
inline send_result send_segments(int fd, const sockaddr* to, socklen_t to_len, const std::uint8_t* data, std::size_t len,
                                 std::size_t segment, bool& use_gso) {
    send_result result;
    if (use_gso && len > segment) {
        iovec iov{const_cast<std::uint8_t*>(data), len};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint16_t))] = {};
        msghdr msg{};
        msg.msg_name = const_cast<sockaddr*>(to);
        msg.msg_namelen = to ? to_len : 0;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
        const auto seg16 = static_cast<std::uint16_t>(segment);
        std::memcpy(CMSG_DATA(cm), &seg16, sizeof seg16);
        for (;;) {
            const ssize_t n = ::sendmsg(fd, &msg, 0);
            if (n >= 0) {
                result.sent = len;
                return result;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                result.would_block = true;
                return result;
            }
            break;  // EIO/EINVAL/...: no GSO here; fall through to one send per packet
        }
        use_gso = false;
    }
    while (result.sent < len) {
        const std::size_t n = std::min(segment, len - result.sent);
        const ssize_t rv = to ? ::sendto(fd, data + result.sent, n, 0, to, to_len) : ::send(fd, data + result.sent, n, 0);
        if (rv < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                result.would_block = true;
                return result;
            }
            // Other errors (e.g. ICMP-reported refusal on a connected socket) drop this packet;
            // QUIC's loss recovery or the receive path deals with the cause.
        }
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
