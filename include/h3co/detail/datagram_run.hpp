// The unit of sending: packets for one peer that leave in one message.
#pragma once

#include <cstddef>
#include <cstdint>

#include <sys/socket.h>

namespace h3co::detail {

/// Packets for one peer that leave in one message: `len` bytes as datagrams of `segment` bytes
/// (the last may be shorter; a single datagram when len == segment), with one ECN codepoint.
struct datagram_run {
    const std::uint8_t* data = nullptr;
    std::size_t len = 0;
    std::size_t segment = 0;
    std::uint8_t ecn = 0;
    sockaddr_storage to{};  ///< the peer
    socklen_t to_len = 0;
    /// Which of the endpoint's sockets sends it: 0, its only one; a migrating client's packets name
    /// the old or the new socket (session::socket_for).
    std::uint32_t socket = 0;

    const sockaddr* peer() const noexcept { return reinterpret_cast<const sockaddr*>(&to); }
};

}  // namespace h3co::detail
