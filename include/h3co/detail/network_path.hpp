// Where a packet comes from and goes to: a local and a remote socket address, as plain values, so
// that the engine's interface needs no ngtcp2 type.
#pragma once

#include <algorithm>
#include <cstring>

#include <sys/socket.h>

namespace h3co::detail {

struct network_path {
    sockaddr_storage local{};
    sockaddr_storage remote{};
    socklen_t local_len = 0;
    socklen_t remote_len = 0;

    network_path() = default;
    network_path(const sockaddr* local_addr, socklen_t local_size, const sockaddr* remote_addr, socklen_t remote_size)
        : local_len(std::min<socklen_t>(local_size, sizeof local)),
          remote_len(std::min<socklen_t>(remote_size, sizeof remote)) {
        std::memcpy(&local, local_addr, local_len);
        std::memcpy(&remote, remote_addr, remote_len);
    }

    const sockaddr* local_address() const noexcept { return reinterpret_cast<const sockaddr*>(&local); }
    const sockaddr* remote_address() const noexcept { return reinterpret_cast<const sockaddr*>(&remote); }
};

}  // namespace h3co::detail
