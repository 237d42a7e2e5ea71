// A server on several workers: one UDP socket per worker, all bound to one address with
// SO_REUSEPORT; byte 1 of a connection ID names its worker (see server_core).
#pragma once

#include <cstddef>
#include <cstdint>

#include <sys/socket.h>

namespace h3co::detail {

/// Byte of a server-issued connection ID that holds the worker ID: after the first octet, where
/// QUIC-LB puts its config rotation bits and length.
inline constexpr std::size_t worker_id_offset = 1;

/// The worker that owns a datagram whose destination connection ID is `dcid`: the ID's worker
/// byte modulo `workers`. Server-issued IDs name their worker exactly; a client-chosen one (a
/// fresh Initial) picks one by its random byte, so every Initial of a handshake lands on one
/// worker whichever socket it reached.
inline std::size_t owner_worker(const std::uint8_t* dcid, std::size_t len, std::size_t workers) noexcept {
    return len > worker_id_offset ? dcid[worker_id_offset] % workers : 0;
}

/// SO_REUSEPORT on `fd`, before bind(): workers' sockets share the address.
inline bool enable_reuse_port(int fd) noexcept {
    const int on = 1;
    return ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0;
}

}  // namespace h3co::detail
