// The server's stateless side: which connection a datagram belongs to, and whether a datagram
// for no known connection may open one. No socket, no ngtcp2 type in its interface.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/detail/connection_id.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace h3co::detail {

class server_endpoint {
public:
    H3CO_DECL server_endpoint();

    /// The destination connection ID of a QUIC packet, as a routing key in `key`. False for
    /// garbage, or a version whose header we cannot parse (ignored, as RFC 9000 allows).
    H3CO_DECL static bool destination_id(const std::uint8_t* data, std::size_t len, std::string& key);
    /// True for a client Initial that may start a connection.
    H3CO_DECL static bool acceptable_initial(const std::uint8_t* data, std::size_t len);

    /// The server's secret: stateless reset tokens derive from it.
    std::span<const std::uint8_t> secret() const noexcept { return secret_; }

private:
    std::array<std::uint8_t, 32> secret_;
};

}  // namespace h3co::detail

#if defined(H3CO_HEADER_ONLY)
#include <h3co/detail/impl/server_endpoint.ipp>
#endif
