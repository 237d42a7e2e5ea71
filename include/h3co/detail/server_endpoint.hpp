// The server's stateless side: which connection a datagram belongs to, and what to do with one
// that belongs to none: drop it, answer it without keeping state (Retry, stateless reset, version
// negotiation, CONNECTION_CLOSE), or let it open a connection. Sans-I/O: it gets the datagram,
// the server's load and the time, and returns a decision; the I/O layer (io/server_core.hpp)
// sends what it says. No socket, no clock, no ngtcp2 type in its interface.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/detail/connection_id.hpp>
#include <h3co/server_options.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <sys/socket.h>

namespace h3co::detail {

/// How busy the server is, as admission decisions need it.
struct endpoint_load {
    std::size_t handshakes = 0;    ///< connections whose handshake is in progress
    std::size_t connections = 0;   ///< all connections, handshaking ones included
    std::size_t from_address = 0;  ///< connections from the datagram's source address (address_key)
    bool shutting_down = false;    ///< no new connections at all
};

/// What to do with a datagram that belongs to no known connection.
enum class stateless_action {
    drop,    ///< ignore it
    reply,   ///< send reply() back to where it came from, and keep nothing
    accept,  ///< start a connection with it (see admission())
};

/// What the endpoint learned about a client Initial it lets open a connection.
struct server_admission {
    /// The token that proved the client's address (a Retry or a NEW_TOKEN token; it points into
    /// the datagram). Empty: the address is not validated yet.
    std::span<const std::uint8_t> token;
    /// After a Retry: the destination connection ID of the client's very first Initial (empty
    /// otherwise). The server's transport parameters must name it, and the Retry's.
    std::span<const std::uint8_t> original_dcid;
};

class server_endpoint {
public:
    H3CO_DECL explicit server_endpoint(const server_options& options = {});

    /// The destination connection ID of a QUIC packet, as a routing key in `key`; a short header's
    /// is `short_cid_length` octets (the length of the IDs the server issues). False for garbage.
    /// Unknown versions have a key too: on_unknown() answers them.
    H3CO_DECL static bool destination_id(const std::uint8_t* data, std::size_t len, std::string& key,
                                         std::size_t short_cid_length = server_cid_length);

    /// The connection IDs the server issues: `length` octets each (what short headers carry),
    /// `make` writes a Retry's (QUIC-LB ones route the client's next Initial back here). By
    /// default random ones of server_cid_length.
    void set_connection_ids(std::size_t length, std::function<void(std::uint8_t*)> make) {
        cid_length_ = length;
        make_cid_ = std::move(make);
    }
    std::size_t cid_length() const noexcept { return cid_length_; }
    /// True for a client Initial that may start a connection, as far as its header tells
    /// (on_unknown() decides, with the limits and the token).
    H3CO_DECL static bool acceptable_initial(const std::uint8_t* data, std::size_t len);
    /// What per-address limits count `from` by: the IPv4 address (also when IPv4-mapped), or the
    /// /64 prefix of an IPv6 address.
    H3CO_DECL static std::string address_key(const sockaddr* from, socklen_t from_len);

    /// Decides about a datagram whose connection ID routes nowhere. `now`: steady-clock
    /// nanoseconds (rate limits); `wall_now`: system-clock nanoseconds (token timestamps, which
    /// other servers sharing the secret must read alike). After `reply`, reply() holds the
    /// packet; after `accept`, admission() says what was validated (valid until the next call).
    H3CO_DECL stateless_action on_unknown(const std::uint8_t* data, std::size_t len, const sockaddr* from,
                                          socklen_t from_len, const endpoint_load& load, std::uint64_t now,
                                          std::uint64_t wall_now);

    std::span<const std::uint8_t> reply() const noexcept { return {reply_.data(), reply_len_}; }
    const server_admission& admission() const noexcept { return admission_; }

    /// A token for the client at `to` to present in its next connection (NEW_TOKEN); empty when
    /// server_options::send_address_tokens is off.
    H3CO_DECL std::vector<std::uint8_t> address_token(const sockaddr* to, socklen_t to_len, std::uint64_t wall_now);

    /// The server's secret: stateless reset tokens and address validation tokens derive from it.
    std::span<const std::uint8_t> secret() const noexcept { return secret_; }
    /// Whether QUIC version 2 is spoken (connection_options::quic_versions). Off, a version 2
    /// Initial gets a Version Negotiation listing version 1 only. On with ngtcp2 0.12: throws
    /// std::system_error(error::not_supported).
    H3CO_DECL void speak_quic_v2(bool on);

    /// What the endpoint did (its share of server_stats).
    server_stats& stats() noexcept { return stats_; }
    const server_stats& stats() const noexcept { return stats_; }

private:
    H3CO_DECL bool take_reply_budget(std::uint64_t now);
    H3CO_DECL stateless_action version_negotiation(const std::uint8_t* data, std::size_t len, std::uint64_t now);
    H3CO_DECL stateless_action stateless_reset(const std::uint8_t* data, std::size_t len, std::uint64_t now);
    H3CO_DECL stateless_action admit(const std::uint8_t* data, std::size_t len, const sockaddr* from,
                                     socklen_t from_len, const endpoint_load& load, std::uint64_t now,
                                     std::uint64_t wall_now);

    server_options options_;
    std::size_t cid_length_ = server_cid_length;
    std::function<void(std::uint8_t*)> make_cid_;  ///< see set_connection_ids()
    std::vector<std::uint8_t> secret_;
    bool quic_v2_ = false;
    std::array<std::uint8_t, 1500> reply_{};  ///< the one stateless reply being sent
    std::size_t reply_len_ = 0;
    std::array<std::uint8_t, 20> original_dcid_{};
    server_admission admission_;
    double reply_budget_ = 0;           ///< token bucket of stateless replies
    std::uint64_t reply_budget_at_ = 0;  ///< when it was last refilled
    server_stats stats_;
};

}  // namespace h3co::detail

#if defined(H3CO_HEADER_ONLY)
#include <h3co/detail/impl/server_endpoint.ipp>
#endif
