// server_endpoint (see detail/server_endpoint.hpp).
#pragma once

#include <h3co/detail/server_endpoint.hpp>
#include <h3co/detail/quic/compat.hpp>
#include <h3co/detail/tls_context.hpp>
#include <h3co/error.hpp>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <system_error>

namespace h3co::detail {

namespace endpoint_detail {

/// The token of a client Initial (ngtcp2 0.12 keeps it as an ngtcp2_vec, 1.x as pointer + length).
inline std::span<const std::uint8_t> token_of(const ngtcp2_pkt_hd& hd) noexcept {
#if NGTCP2_VERSION_NUM >= 0x010000
    return {hd.token, hd.tokenlen};
#else
    return {hd.token.base, hd.token.len};
#endif
}

inline std::uint64_t ns_of(std::chrono::seconds s) noexcept {
    return static_cast<std::uint64_t>(s.count()) * NGTCP2_SECONDS;
}

/// RFC 9000 §10.3: a stateless reset is at least 21 bytes (5 unpredictable, a 16-byte token), and
/// up to 43 it looks like any short-header packet.
inline constexpr std::size_t min_stateless_reset = NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN;
inline constexpr std::size_t max_stateless_reset = 43;

}  // namespace endpoint_detail

H3CO_DECL server_endpoint::server_endpoint(const server_options& options)
    : options_(options), reply_budget_(static_cast<double>(options.stateless_replies_per_second)) {
    if (options.secret.empty()) {
        secret_.resize(32);
        random_bytes(secret_.data(), secret_.size());
    } else {
        secret_.assign(options.secret.begin(), options.secret.end());
    }
}

H3CO_DECL void server_endpoint::speak_quic_v2(bool on) {
    if (on && !compat::quic_v2_supported)
        throw std::system_error(make_error_code(error::not_supported), "QUIC version 2 needs ngtcp2 1.x");
    quic_v2_ = on;
}

H3CO_DECL bool server_endpoint::destination_id(const std::uint8_t* data, std::size_t len, std::string& key,
                                               std::size_t short_cid_length) {
    // ngtcp2 asserts on an empty datagram (found by the server_datagram fuzz target; UDP allows
    // empty datagrams, though udp_receive.hpp passes none on).
    if (len == 0) return false;
    ngtcp2_version_cid vc;
    const int rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, short_cid_length);
    if (rv != 0 && rv != NGTCP2_ERR_VERSION_NEGOTIATION) return false;
    key = cid_key(vc.dcid, vc.dcidlen);
    return true;
}

H3CO_DECL bool server_endpoint::acceptable_initial(const std::uint8_t* data, std::size_t len) {
    ngtcp2_pkt_hd hd;
    return len > 0 && ngtcp2_accept(&hd, data, len) == 0;
}

H3CO_DECL std::string server_endpoint::address_key(const sockaddr* from, socklen_t from_len) {
    if (from->sa_family == AF_INET && from_len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
        const auto& a = reinterpret_cast<const sockaddr_in*>(from)->sin_addr;
        return std::string(reinterpret_cast<const char*>(&a), sizeof a);
    }
    if (from->sa_family == AF_INET6 && from_len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
        const auto& a = reinterpret_cast<const sockaddr_in6*>(from)->sin6_addr;
        // An IPv4 client of a dual-stack socket: the same key as on an IPv4 socket.
        if (IN6_IS_ADDR_V4MAPPED(&a)) return std::string(reinterpret_cast<const char*>(a.s6_addr) + 12, 4);
        return std::string(reinterpret_cast<const char*>(a.s6_addr), 8);  // the /64 prefix
    }
    return {};
}

H3CO_DECL bool server_endpoint::take_reply_budget(std::uint64_t now) {
    const double rate = static_cast<double>(options_.stateless_replies_per_second);
    if (now > reply_budget_at_) {
        reply_budget_ = std::min(rate, reply_budget_ + rate * static_cast<double>(now - reply_budget_at_) / 1e9);
        reply_budget_at_ = now;
    }
    if (reply_budget_ < 1) {
        ++stats_.stateless_replies_limited;
        return false;
    }
    reply_budget_ -= 1;
    return true;
}

H3CO_DECL stateless_action server_endpoint::on_unknown(const std::uint8_t* data, std::size_t len, const sockaddr* from,
                                                       socklen_t from_len, const endpoint_load& load,
                                                       std::uint64_t now, std::uint64_t wall_now) {
    reply_len_ = 0;
    admission_ = {};
    if (len == 0) return stateless_action::drop;
    ngtcp2_version_cid vc;
    const int rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, cid_length_);
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION || (rv == 0 && vc.version == compat::quic_v2 && !quic_v2_))
        return version_negotiation(data, len, now);
    if (rv != 0) return stateless_action::drop;
    // A short header: a packet for a connection we no longer (or never) had. Long headers that
    // are no acceptable Initial (0-RTT before its Initial, Handshake, a version negotiation) are
    // dropped, as RFC 9000 §10.3 allows.
    if ((data[0] & 0x80) == 0) return stateless_reset(data, len, now);
    if (load.shutting_down) return stateless_action::drop;
    return admit(data, len, from, from_len, load, now, wall_now);
}

H3CO_DECL stateless_action server_endpoint::version_negotiation(const std::uint8_t* data, std::size_t len,
                                                                std::uint64_t now) {
    // ngtcp2 reports an unknown version only for datagrams big enough to open a connection
    // (1200 bytes, RFC 9000 §5.2.2); the answer echoes the two connection IDs and one version.
    // A version 2 Initial counts as unknown while version 2 is off; ngtcp2 1.x knows it, so it
    // does not report it, and its Initial must be big enough as any other.
    ngtcp2_version_cid vc;
    const int rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, cid_length_);
    const bool unwanted_v2 = rv == 0 && vc.version == compat::quic_v2 && !quic_v2_ && len >= 1200;
    if (rv != NGTCP2_ERR_VERSION_NEGOTIATION && !unwanted_v2) return stateless_action::drop;
    if (!take_reply_budget(now)) return stateless_action::drop;
    // The versions we speak, preferred first (RFC 9368 §2.1: the Offered Versions).
    static constexpr std::uint32_t v1_only[] = {NGTCP2_PROTO_VER_V1};
    const std::span<const std::uint32_t> versions =
        quic_v2_ ? std::span<const std::uint32_t>(compat::v2_then_v1) : std::span<const std::uint32_t>(v1_only);
    std::uint8_t unused;
    random_bytes(&unused, 1);
    const auto n = ngtcp2_pkt_write_version_negotiation(reply_.data(), std::min(reply_.size(), len - 1), unused,
                                                        vc.scid, vc.scidlen, vc.dcid, vc.dcidlen, versions.data(),
                                                        versions.size());
    if (n <= 0) return stateless_action::drop;
    reply_len_ = static_cast<std::size_t>(n);
    ++stats_.version_negotiations_sent;
    return stateless_action::reply;
}

H3CO_DECL stateless_action server_endpoint::stateless_reset(const std::uint8_t* data, std::size_t len,
                                                            std::uint64_t now) {
    using namespace endpoint_detail;
    // Smaller than what came (so that two endpoints can never reset each other in a loop, and the
    // server never amplifies), which rules out answering packets of 21 bytes or less.
    if (len <= min_stateless_reset || len < 1 + cid_length_) return stateless_action::drop;
    if (!take_reply_budget(now)) return stateless_action::drop;
    ngtcp2_cid cid;
    ngtcp2_cid_init(&cid, data + 1, cid_length_);
    std::array<std::uint8_t, NGTCP2_STATELESS_RESET_TOKENLEN> token;
    if (ngtcp2_crypto_generate_stateless_reset_token(token.data(), secret_.data(), secret_.size(), &cid) != 0)
        return stateless_action::drop;
    const std::size_t out_len = std::min(len - 1, max_stateless_reset);
    std::array<std::uint8_t, max_stateless_reset> unpredictable;
    const std::size_t rand_len = out_len - NGTCP2_STATELESS_RESET_TOKENLEN;
    random_bytes(unpredictable.data(), rand_len);
    const auto n =
        ngtcp2_pkt_write_stateless_reset(reply_.data(), out_len, token.data(), unpredictable.data(), rand_len);
    if (n <= 0) return stateless_action::drop;
    reply_len_ = static_cast<std::size_t>(n);
    ++stats_.stateless_resets_sent;
    return stateless_action::reply;
}

H3CO_DECL stateless_action server_endpoint::admit(const std::uint8_t* data, std::size_t len, const sockaddr* from,
                                                  socklen_t from_len, const endpoint_load& load, std::uint64_t now,
                                                  std::uint64_t wall_now) {
    using namespace endpoint_detail;
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, data, len) != 0) return stateless_action::drop;  // too small, 0-RTT first, ...
    const auto* addr = reinterpret_cast<const ngtcp2_sockaddr*>(from);
    const auto addr_len = static_cast<ngtcp2_socklen>(from_len);
    // A stateless CONNECTION_CLOSE in an Initial packet, under the keys the client's Initial used.
    const auto close_with = [&](std::uint64_t code) {
        if (!take_reply_budget(now)) return stateless_action::drop;
        const auto n = ngtcp2_crypto_write_connection_close(reply_.data(), std::min(reply_.size(), len), hd.version,
                                                            &hd.scid, &hd.dcid, code, nullptr, 0);
        if (n <= 0) return stateless_action::drop;
        reply_len_ = static_cast<std::size_t>(n);
        return stateless_action::reply;
    };

    // ---- the token: a Retry's proves the address (or is refused), a NEW_TOKEN's may -------------
    const auto token = token_of(hd);
    bool validated = false;
    if (!token.empty() && token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
        ngtcp2_cid odcid;
        if (ngtcp2_crypto_verify_retry_token(&odcid, token.data(), token.size(), secret_.data(), secret_.size(),
                                             hd.version, addr, addr_len, &hd.dcid,
                                             ns_of(options_.retry_token_lifetime), wall_now) != 0) {
            // RFC 9000 §8.1.2: forged, expired or for another address. The client learns why.
            ++stats_.invalid_tokens;
            return close_with(NGTCP2_INVALID_TOKEN);
        }
        std::copy_n(odcid.data, odcid.datalen, original_dcid_.begin());
        admission_.original_dcid = {original_dcid_.data(), odcid.datalen};
        ++stats_.retry_tokens_accepted;
        validated = true;
    } else if (!token.empty() && token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_REGULAR) {
        if (hd.dcid.datalen < NGTCP2_MIN_INITIAL_DCIDLEN)  // only after a Retry may the client's be short
            return stateless_action::drop;
        if (ngtcp2_crypto_verify_regular_token(token.data(), token.size(), secret_.data(), secret_.size(), addr,
                                               addr_len, ns_of(options_.address_token_lifetime), wall_now) == 0) {
            ++stats_.address_tokens_accepted;
            validated = true;
        } else {
            ++stats_.stale_address_tokens;  // old, or from another address: as if there were none
        }
    }
    if (validated) admission_.token = token;

    // ---- limits ----------------------------------------------------------------------------
    const auto& o = options_;
    const bool address_full = o.max_connections_per_address != 0 && load.from_address >= o.max_connections_per_address;
    const bool busy = (o.retry_threshold != 0 && load.handshakes >= o.retry_threshold) || address_full;
    const bool retry = !validated && (o.address_validation == address_validation::always ||
                                      (o.address_validation == address_validation::when_busy && busy));
    if (retry) {
        ngtcp2_cid retry_scid;
        retry_scid.datalen = cid_length_;
        if (make_cid_)
            make_cid_(retry_scid.data);
        else
            random_bytes(retry_scid.data, retry_scid.datalen);
        std::array<std::uint8_t, NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN> retry_token;
        const auto token_len = ngtcp2_crypto_generate_retry_token(retry_token.data(), secret_.data(), secret_.size(),
                                                                  hd.version, addr, addr_len, &retry_scid, &hd.dcid,
                                                                  wall_now);
        if (token_len <= 0) return stateless_action::drop;
        // Always smaller than the Initial (>= 1200 bytes) that asked for it.
        const auto n = ngtcp2_crypto_write_retry(reply_.data(), std::min(reply_.size(), len), hd.version, &hd.scid,
                                                 &retry_scid, &hd.dcid, retry_token.data(),
                                                 static_cast<std::size_t>(token_len));
        if (n <= 0) return stateless_action::drop;
        reply_len_ = static_cast<std::size_t>(n);
        ++stats_.retries_sent;
        return stateless_action::reply;
    }
    if (o.max_handshakes != 0 && load.handshakes >= o.max_handshakes) {
        ++stats_.handshakes_dropped;
        return stateless_action::drop;
    }
    if ((o.max_connections != 0 && load.connections >= o.max_connections) || address_full) {
        ++stats_.connections_refused;
        return close_with(NGTCP2_CONNECTION_REFUSED);
    }
    ++stats_.connections_accepted;
    return stateless_action::accept;
}

H3CO_DECL std::vector<std::uint8_t> server_endpoint::address_token(const sockaddr* to, socklen_t to_len,
                                                                   std::uint64_t wall_now) {
    std::vector<std::uint8_t> token;
    if (!options_.send_address_tokens) return token;
    token.resize(NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN);
    const auto n = ngtcp2_crypto_generate_regular_token(token.data(), secret_.data(), secret_.size(),
                                                        reinterpret_cast<const ngtcp2_sockaddr*>(to),
                                                        static_cast<ngtcp2_socklen>(to_len), wall_now);
    token.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    if (n > 0) ++stats_.address_tokens_sent;
    return token;
}

}  // namespace h3co::detail
