// QUIC-LB connection IDs, unencrypted (plaintext) mode: the format a connection-ID-aware load
// balancer decodes to find the server a packet belongs to. Written from the editor's copy of
// draft-ietf-quic-load-balancers (github.com/quicwg/load-balancers, after -19: three config
// rotation bits, 0b111 unroutable; sections "First CID octet" and "Load Balancer Test Vectors",
// "Unencrypted CIDs"). Sans-I/O: bytes in, bytes out. Not used by the server yet (its connection IDs carry a worker byte only, see
// io/reuseport.hpp); the encrypted modes are not here.
//
//   QUIC-LB Connection ID {
//     First Octet { Config Rotation (3), CID Len or Random Bits (5) },
//     Server ID (8..),   // configured length, at least 1 octet
//     Nonce (32..),      // configured length, at least 4 octets; server ID + nonce <= 19 octets
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace h3co::detail::quic_lb {

/// Config rotation codepoint of a server with no configuration: its CIDs are unroutable.
inline constexpr std::uint8_t unroutable_config = 0b111;

/// One unencrypted QUIC-LB configuration, as a server holds it.
struct plaintext_config {
    std::uint8_t config_rotation = 0;      ///< 0..6
    std::vector<std::uint8_t> server_id;   ///< this server's ID, at least 1 octet
    std::size_t nonce_length = 4;          ///< at least 4 octets
    bool encode_length = true;  ///< the first octet's low 5 bits give the length after it (else random)
};

/// Whether `c` is a configuration the draft allows.
inline bool valid(const plaintext_config& c) noexcept {
    return c.config_rotation < unroutable_config && !c.server_id.empty() && c.nonce_length >= 4 &&
           c.server_id.size() + c.nonce_length <= 19;
}

/// Length of the connection IDs `c` makes: the first octet, the server ID and the nonce.
inline std::size_t cid_length(const plaintext_config& c) noexcept { return 1 + c.server_id.size() + c.nonce_length; }

/// Writes into `out` (cid_length(c) octets) the connection ID with `nonce` (nonce_length octets:
/// unique per connection ID, e.g. random or a counter). `random_bits` fills the first octet's
/// low 5 bits when the configuration does not encode the length. False (nothing written) for an
/// invalid configuration or wrong sizes.
inline bool encode(const plaintext_config& c, std::span<const std::uint8_t> nonce, std::span<std::uint8_t> out,
                   std::uint8_t random_bits = 0) noexcept {
    if (!valid(c) || nonce.size() != c.nonce_length || out.size() != cid_length(c)) return false;
    const auto low = c.encode_length ? static_cast<std::uint8_t>(out.size() - 1) : random_bits;
    out[0] = static_cast<std::uint8_t>(c.config_rotation << 5 | (low & 0x1f));
    std::size_t at = 1;
    for (auto b : c.server_id) out[at++] = b;
    for (auto b : nonce) out[at++] = b;
    return true;
}

/// What a load balancer reads from a routable connection ID.
struct decoded {
    std::uint8_t config_rotation = 0;
    std::span<const std::uint8_t> server_id;  ///< points into the connection ID
    std::span<const std::uint8_t> nonce;      ///< the rest (server use)
};

/// Decodes `cid` as a load balancer configured with server IDs of `server_id_length` octets.
/// Nothing for an unroutable one: config rotation 0b111, or too short for a server ID and a
/// 4-octet nonce.
inline std::optional<decoded> decode(std::span<const std::uint8_t> cid, std::size_t server_id_length) noexcept {
    if (cid.empty() || server_id_length == 0) return std::nullopt;
    const auto rotation = static_cast<std::uint8_t>(cid[0] >> 5);
    if (rotation == unroutable_config || cid.size() < 1 + server_id_length + 4) return std::nullopt;
    return decoded{rotation, cid.subspan(1, server_id_length), cid.subspan(1 + server_id_length)};
}

}  // namespace h3co::detail::quic_lb
