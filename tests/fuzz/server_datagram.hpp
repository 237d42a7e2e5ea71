// Fuzz target for the server's datagram entry: one UDP payload as it arrives at the listening
// socket. Datagrams in, decisions out, in the order server_core takes them:
//   1. the stateless decisions (detail/server_endpoint.hpp): the routing key (destination
//      connection ID) and whether the datagram may open a connection (ngtcp2_accept). Address
//      validation (Retry tokens) belongs here too once it exists: add its decision to
//      stateless_decisions() and the target covers it;
//   2. a new connection, as server_core makes one: a server session accepts the datagram as its
//      first Initial and reads it, then writes what it answers;
//   3. an established connection reading it (its destination connection ID rewritten to that
//      connection's, so that it is routed there), then flushing.
#pragma once

#include "../support/session_pair.hpp"
#include "fuzz_check.hpp"
#include "h3_exchange.hpp"

#include <h3co/detail/connection_id.hpp>
#include <h3co/detail/server_endpoint.hpp>

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace h3co_fuzz {

/// What the server's stateless side decides about one datagram.
struct datagram_decision {
    bool routable = false;    ///< it has a destination connection ID to route by
    std::string key;          ///< that ID
    bool may_open = false;    ///< a client Initial that may start a connection
};

inline datagram_decision stateless_decisions(const std::uint8_t* data, std::size_t size) {
    datagram_decision d;
    d.routable = h3co::detail::server_endpoint::destination_id(data, size, d.key);
    d.may_open = h3co::detail::server_endpoint::acceptable_initial(data, size);
    return d;
}

inline h3co::detail::network_path loopback_path(std::uint16_t local_port, std::uint16_t remote_port) {
    sockaddr_in local{}, remote{};
    local.sin_family = remote.sin_family = AF_INET;
    local.sin_addr.s_addr = remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    local.sin_port = htons(local_port);
    remote.sin_port = htons(remote_port);
    return h3co::detail::network_path(reinterpret_cast<const sockaddr*>(&local), sizeof local,
                                      reinterpret_cast<const sockaddr*>(&remote), sizeof remote);
}

/// Step 2: a fresh server session accepts the datagram and answers it. Returns the packets it wrote.
inline std::size_t accept_datagram(const std::uint8_t* data, std::size_t size, std::uint64_t now) {
    static const auto tls = test::sans_io::server_tls_for(H3CO_TEST_CERT_DIR);
    static const std::array<std::uint8_t, 32> secret{1, 2, 3};
    auto s = std::make_shared<test::sans_io::endpoint>(h3co::detail::session_role::server, fuzz_limits(), tls);
    std::array<std::uint8_t, h3co::detail::server_cid_length> scid{};
    scid[0] = 0x5c;
    const auto path = loopback_path(443, 50000);
    try {
        s->start_server(path, {data, size}, scid, secret, now);
    } catch (const std::system_error&) {
        return 0;  // the libraries refused it: server_core drops it
    }
    s->read_packet(path, data, size, 0, now);
    std::size_t packets = 0;
    if (!s->terminated()) {
        s->before_flush();
        h3co::detail::flush_round round;
        while (s->write_packets(now, round)) s->outbox().clear();
        s->end_flush(now, round);
        packets = round.packets;
    }
    s->outbox().clear();
    return packets;
}

inline kept_pair& datagram_pair() {
    static kept_pair kept([] {
        pair_config c;
        c.client_options = fuzz_options();
        c.server_options = fuzz_limits();
        return c;
    }());
    return kept;
}

/// Step 3: the established server reads the datagram, addressed to it.
inline void deliver_to_established(const std::uint8_t* data, std::size_t size) {
    auto& kept = datagram_pair();
    auto& p = kept.get();
    const auto& ids = p.server()->connection_ids;
    std::vector<std::uint8_t> bytes(data, data + size);
    const std::size_t cid_len = h3co::detail::server_cid_length;
    std::size_t at = 0;
    if (!bytes.empty() && (bytes[0] & 0x80) == 0 && bytes.size() > 1 + cid_len)
        at = 1;  // short header: the ID follows the first byte
    else if (!bytes.empty() && (bytes[0] & 0x80) != 0 && bytes.size() > 6 + cid_len && bytes[5] == cid_len)
        at = 6;  // long header: version, then the ID's length and the ID
    if (at != 0 && !ids.empty()) {
        const std::string& cid = *ids.begin();
        std::copy(cid.begin(), cid.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at));
    }
    const std::size_t before = p.to_server.delivered + p.unroutable;
    p.inject_to_server(std::move(bytes));
    p.run_until([&] { return p.to_server.delivered + p.unroutable > before; }, 100 * ms, 1'000);
    // Let its answers (if any) go and come back once.
    p.run_until([] { return false; }, 20 * ms, 1'000);
    if (!kept.alive()) kept.discard();
}

inline int server_datagram(const std::uint8_t* data, std::size_t size) {
    if (size > 65'527) return -1;  // larger than any UDP payload
    const auto d = stateless_decisions(data, size);
    if (d.may_open && !d.routable) model_mismatch("a datagram that may open a connection has a routing key");
    if (d.may_open) accept_datagram(data, size, 1'000 * ms);
    deliver_to_established(data, size);
    return 0;
}

}  // namespace h3co_fuzz
