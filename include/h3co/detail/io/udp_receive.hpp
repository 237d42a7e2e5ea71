// Receiving QUIC packets with as few system calls as the kernel allows: with UDP GRO a single
// message holds a run of equal-sized datagrams from one sender glued together (on loopback, a
// whole GSO send arrives as one), plus the segment size to split them by, and their ECN bits;
// with recvmmsg one system call returns several such messages, from any senders.
#pragma once

#include <asio/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
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

namespace udp_detail {

/// Room for the control messages a receive may carry: GRO's segment size and the ECN bits.
inline constexpr std::size_t receive_control_size = CMSG_SPACE(sizeof(int)) * 2;

inline std::error_code last_receive_error() noexcept {
    // Asio's own system category, so that callers compare with asio::error values.
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? std::error_code(asio::error::would_block)
                                                     : std::error_code(errno, asio::error::get_system_category());
}

/// Reads GRO's segment size and the ECN bits of a message of `len` bytes.
inline received_datagrams parse_received(msghdr& msg, std::size_t len) noexcept {
    received_datagrams got{len, len};
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

}  // namespace udp_detail

/// One non-blocking recvmsg into `buf`. The sender goes to `from`, which has room for `from_len`
/// bytes and is set to the address's size (`from` may be null on a connected socket). Fails with
/// asio::error::would_block when the queue is empty.
inline received_datagrams receive_datagrams(int fd, std::uint8_t* buf, std::size_t capacity, sockaddr* from,
                                            socklen_t& from_len, std::error_code& ec) noexcept {
    iovec iov{buf, capacity};
    alignas(cmsghdr) char control[udp_detail::receive_control_size] = {};
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
        ec = udp_detail::last_receive_error();
        return {};
    }
    ec.clear();
    from_len = msg.msg_namelen;
    return udp_detail::parse_received(msg, static_cast<std::size_t>(n));
}

/// Calls `f(data, len)` for each datagram of a batch.
template <class F>
void for_each_datagram(const std::uint8_t* buf, received_datagrams got, F&& f) {
    for (std::size_t off = 0; off < got.len; off += got.segment) f(buf + off, std::min(got.segment, got.len - off));
}

/// A datagram as received: where its bytes are, who sent it (null on a connected socket) and its
/// ECN codepoint.
struct received_datagram {
    const std::uint8_t* data;
    std::size_t len;
    const sockaddr* from;
    socklen_t from_len;
    std::uint8_t ecn;
};

/// Receives up to `messages` runs of datagrams per system call: recvmmsg when messages > 1, from
/// any senders, else recvmsg. Each message has room for a whole GRO run (64 KiB); the buffers are
/// allocated once, so receiving never allocates.
class datagram_receiver {
public:
    static constexpr std::size_t message_capacity = 65536;
    static constexpr std::size_t max_messages = 64;

    explicit datagram_receiver(std::size_t messages)
        : messages_(std::clamp<std::size_t>(messages, 1, max_messages)),
          buffers_(std::make_unique_for_overwrite<std::uint8_t[]>(messages_ * message_capacity)),
          slots_(std::make_unique<slot[]>(messages_)) {}

    std::size_t messages() const noexcept { return messages_; }

    /// One non-blocking system call; calls `f(const received_datagram&)` for each datagram got, in
    /// order. Returns the number of messages (runs) got; 0 with `ec` set on failure
    /// (asio::error::would_block when the queue is empty).
    template <class F>
    std::size_t receive(int fd, F&& f, std::error_code& ec) {
        if (messages_ == 1) {
            socklen_t from_len = sizeof(sockaddr_storage);
            auto* from = reinterpret_cast<sockaddr*>(&slots_[0].from);
            const auto got = receive_datagrams(fd, buffers_.get(), message_capacity, from, from_len, ec);
            if (ec) return 0;
            deliver(buffers_.get(), got, from, from_len, f);
            return 1;
        }
        mmsghdr msgs[max_messages];
        for (std::size_t i = 0; i < messages_; ++i) {
            slot& s = slots_[i];
            s.iov = iovec{buffers_.get() + i * message_capacity, message_capacity};
            msgs[i] = mmsghdr{};
            msgs[i].msg_hdr.msg_name = &s.from;
            msgs[i].msg_hdr.msg_namelen = sizeof s.from;
            msgs[i].msg_hdr.msg_iov = &s.iov;
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_control = s.control;
            msgs[i].msg_hdr.msg_controllen = sizeof s.control;
        }
        int n;
        do {
            n = ::recvmmsg(fd, msgs, static_cast<unsigned>(messages_), MSG_DONTWAIT, nullptr);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            ec = udp_detail::last_receive_error();
            return 0;
        }
        ec.clear();
        for (int i = 0; i < n; ++i) {
            auto& hdr = msgs[i].msg_hdr;
            const auto got = udp_detail::parse_received(hdr, msgs[i].msg_len);
            // A connected socket leaves no address (msg_namelen 0): report none.
            const auto* from = hdr.msg_namelen ? reinterpret_cast<const sockaddr*>(&slots_[i].from) : nullptr;
            deliver(buffers_.get() + static_cast<std::size_t>(i) * message_capacity, got, from, hdr.msg_namelen, f);
        }
        return static_cast<std::size_t>(n);
    }

private:
    struct slot {
        sockaddr_storage from;
        iovec iov;
        alignas(cmsghdr) char control[udp_detail::receive_control_size];
    };

    template <class F>
    static void deliver(const std::uint8_t* buf, received_datagrams got, const sockaddr* from, socklen_t from_len,
                        F& f) {
        if (from_len == 0) from = nullptr;
        for_each_datagram(buf, got, [&](const std::uint8_t* data, std::size_t len) {
            f(received_datagram{data, len, from, from_len, got.ecn});
        });
    }

    std::size_t messages_;
    std::unique_ptr<std::uint8_t[]> buffers_;
    std::unique_ptr<slot[]> slots_;
};

}  // namespace h3co::detail
