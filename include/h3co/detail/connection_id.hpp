// A QUIC connection ID as a plain value and as the key the server routes datagrams by.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace h3co::detail {

/// The routing key of a connection ID: its bytes.
inline std::string cid_key(const std::uint8_t* data, std::size_t len) {
    return std::string(reinterpret_cast<const char*>(data), len);
}

/// Length of the connection IDs a server issues (ngtcp2 allows up to 20).
inline constexpr std::size_t server_cid_length = 18;

}  // namespace h3co::detail
