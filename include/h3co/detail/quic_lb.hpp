// QUIC-LB connection IDs: the format a connection-ID-aware load balancer decodes to find the
// server a packet belongs to, unencrypted or encrypted (single-pass AES-128-ECB when server ID
// and nonce make 16 octets, the four-pass Feistel network otherwise). Written from the editor's
// copy of draft-ietf-quic-load-balancers after -21 (github.com/quicwg/load-balancers at b869d03,
// May 2026: three config rotation bits, 0b111 unroutable; sections "First CID octet", "Server
// Actions", "Load Balancer Actions", "Connection ID Entropy" and "Load Balancer Test Vectors").
// Sans-I/O: bytes in, bytes out. AES is BoringSSL's.
//
//   QUIC-LB Connection ID {
//     First Octet { Config Rotation (3), CID Len or Random Bits (5) },
//     Server ID (8..),   // configured length, at least 1 octet
//     Nonce (32..),      // configured length, at least 4 octets; server ID + nonce <= 19 octets
//   }                    // with a key, server ID + nonce travel encrypted
#pragma once

#include <openssl/aes.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

namespace h3co::detail::quic_lb {

/// Config rotation codepoint of a server with no configuration: its CIDs are unroutable.
inline constexpr std::uint8_t unroutable_config = 0b111;

/// One QUIC-LB configuration, as a server (or a load balancer) holds it.
struct config {
    std::uint8_t config_rotation = 0;      ///< 0..6
    std::vector<std::uint8_t> server_id;   ///< this server's ID, at least 1 octet
    std::size_t nonce_length = 4;          ///< at least 4 octets
    bool encode_length = true;  ///< the first octet's low 5 bits give the length after it (else random)
    std::optional<std::array<std::uint8_t, 16>> key;  ///< AES-128 key: encrypted CIDs; none: plaintext
};
using plaintext_config = config;  ///< a config without key

/// Whether `c` is a configuration the draft allows.
inline bool valid(const config& c) noexcept {
    return c.config_rotation < unroutable_config && !c.server_id.empty() && c.nonce_length >= 4 &&
           c.server_id.size() + c.nonce_length <= 19;
}

/// Length of the connection IDs `c` makes: the first octet, the server ID and the nonce.
inline std::size_t cid_length(const config& c) noexcept { return 1 + c.server_id.size() + c.nonce_length; }

namespace lb_detail {

/// expand(length, pass, input): the half, zero padding, then the length and the pass number in
/// the last two octets (the draft's layout since -19).
inline std::array<std::uint8_t, 16> expand(std::size_t length, std::uint8_t pass, const std::uint8_t* half,
                                           std::size_t half_len) noexcept {
    std::array<std::uint8_t, 16> block{};
    std::memcpy(block.data(), half, half_len);
    block[14] = static_cast<std::uint8_t>(length);
    block[15] = pass;
    return block;
}

/// `target` ^= the first half_len octets of AES(expand(length, pass, source)); then, for odd
/// lengths, the nibble that belongs to the other half is cleared (`left`: target is a left half,
/// whose last low nibble goes; else a right half, whose first high nibble goes).
inline void feistel_round(const AES_KEY& key, std::size_t length, std::uint8_t pass, const std::uint8_t* source,
                          std::uint8_t* target, std::size_t half_len, bool left) noexcept {
    const auto in = expand(length, pass, source, half_len);
    std::array<std::uint8_t, 16> out;
    AES_encrypt(in.data(), out.data(), &key);
    for (std::size_t i = 0; i < half_len; ++i) target[i] ^= out[i];
    if (length % 2 == 1) {
        if (left)
            target[half_len - 1] &= 0xf0;
        else
            target[0] &= 0x0f;
    }
}

/// Splits `block` (length octets) into halves of (length + 1) / 2; for odd lengths the middle
/// octet's high nibble goes left and its low nibble right.
inline void split(const std::uint8_t* block, std::size_t length, std::uint8_t* left, std::uint8_t* right) noexcept {
    const std::size_t half = (length + 1) / 2;
    std::memcpy(left, block, half);
    std::memcpy(right, block + length - half, half);
    if (length % 2 == 1) {
        left[half - 1] &= 0xf0;
        right[0] &= 0x0f;
    }
}

/// The inverse of split(): the halves, their cleared nibbles dropped, back into `block`.
inline void join(const std::uint8_t* left, const std::uint8_t* right, std::size_t length, std::uint8_t* block) noexcept {
    const std::size_t half = (length + 1) / 2;
    std::memcpy(block, left, half);
    if (length % 2 == 1) {
        block[half - 1] = static_cast<std::uint8_t>(left[half - 1] | right[0]);
        std::memcpy(block + half, right + 1, half - 1);
    } else {
        std::memcpy(block + half, right, half);
    }
}

}  // namespace lb_detail

/// A configuration with its AES key schedules, ready to encrypt and decrypt connection IDs.
class codec {
public:
    /// `c` must be valid().
    explicit codec(config c) : c_(std::move(c)) {
        if (c_.key) {
            AES_set_encrypt_key(c_.key->data(), 128, &enc_);
            AES_set_decrypt_key(c_.key->data(), 128, &dec_);
        }
    }

    const config& settings() const noexcept { return c_; }
    std::size_t length() const noexcept { return cid_length(c_); }

    /// Writes into `out` (length() octets) the connection ID with `nonce` (nonce_length octets:
    /// never the same twice under one key). `random_bits` fills the first octet's low 5 bits when
    /// the configuration does not encode the length. False (nothing written) for wrong sizes.
    bool encode(std::span<const std::uint8_t> nonce, std::span<std::uint8_t> out, std::uint8_t random_bits = 0) const noexcept {
        if (!valid(c_) || nonce.size() != c_.nonce_length || out.size() != length()) return false;
        const auto low = c_.encode_length ? static_cast<std::uint8_t>(out.size() - 1) : random_bits;
        out[0] = static_cast<std::uint8_t>(c_.config_rotation << 5 | (low & 0x1f));
        std::memcpy(out.data() + 1, c_.server_id.data(), c_.server_id.size());
        std::memcpy(out.data() + 1 + c_.server_id.size(), nonce.data(), nonce.size());
        if (c_.key) encrypt(out.data() + 1, out.size() - 1);
        return true;
    }

    /// The plaintext server ID and nonce of `cid` (what a load balancer with this configuration
    /// reads), into `out` (length() - 1 octets). False for a CID too short or of another
    /// configuration (its config rotation bits differ).
    bool decode(std::span<const std::uint8_t> cid, std::span<std::uint8_t> out) const noexcept {
        const std::size_t n = length() - 1;
        if (cid.size() < length() || out.size() != n || (cid[0] >> 5) != c_.config_rotation) return false;
        std::memcpy(out.data(), cid.data() + 1, n);
        if (c_.key) decrypt(out.data(), n);
        return true;
    }

private:
    void encrypt(std::uint8_t* block, std::size_t length) const noexcept {
        if (length == 16) return AES_encrypt(block, block, &enc_);  // single pass: one AES block
        using namespace lb_detail;
        const std::size_t half = (length + 1) / 2;
        std::array<std::uint8_t, 10> left, right;
        split(block, length, left.data(), right.data());
        feistel_round(enc_, length, 1, left.data(), right.data(), half, false);
        feistel_round(enc_, length, 2, right.data(), left.data(), half, true);
        feistel_round(enc_, length, 3, left.data(), right.data(), half, false);
        feistel_round(enc_, length, 4, right.data(), left.data(), half, true);
        join(left.data(), right.data(), length, block);
    }

    void decrypt(std::uint8_t* block, std::size_t length) const noexcept {
        if (length == 16) return AES_decrypt(block, block, &dec_);
        using namespace lb_detail;
        // The rounds again in reverse order: each only XORs, so each undoes itself. A load
        // balancer may stop after three when the server ID fits in the left half; a server
        // needs the nonce too.
        const std::size_t half = (length + 1) / 2;
        std::array<std::uint8_t, 10> left, right;
        split(block, length, left.data(), right.data());
        feistel_round(enc_, length, 4, right.data(), left.data(), half, true);
        feistel_round(enc_, length, 3, left.data(), right.data(), half, false);
        feistel_round(enc_, length, 2, right.data(), left.data(), half, true);
        feistel_round(enc_, length, 1, left.data(), right.data(), half, false);
        join(left.data(), right.data(), length, block);
    }

    config c_;
    AES_KEY enc_{};
    AES_KEY dec_{};
};

/// Writes into `out` (cid_length(c) octets) the connection ID with `nonce`: see codec::encode.
inline bool encode(const config& c, std::span<const std::uint8_t> nonce, std::span<std::uint8_t> out,
                   std::uint8_t random_bits = 0) noexcept {
    if (!valid(c)) return false;
    return codec(c).encode(nonce, out, random_bits);
}

/// What a load balancer without a key reads from a routable connection ID.
struct decoded {
    std::uint8_t config_rotation = 0;
    std::span<const std::uint8_t> server_id;  ///< points into the connection ID
    std::span<const std::uint8_t> nonce;      ///< the rest (server use)
};

/// Decodes unencrypted `cid` as a load balancer configured with server IDs of
/// `server_id_length` octets. Nothing for an unroutable one: config rotation 0b111, or too short
/// for a server ID and a 4-octet nonce.
inline std::optional<decoded> decode(std::span<const std::uint8_t> cid, std::size_t server_id_length) noexcept {
    if (cid.empty() || server_id_length == 0) return std::nullopt;
    const auto rotation = static_cast<std::uint8_t>(cid[0] >> 5);
    if (rotation == unroutable_config || cid.size() < 1 + server_id_length + 4) return std::nullopt;
    return decoded{rotation, cid.subspan(1, server_id_length), cid.subspan(1 + server_id_length)};
}

}  // namespace h3co::detail::quic_lb
