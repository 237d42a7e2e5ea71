// server_endpoint (see detail/server_endpoint.hpp).
#pragma once

#include <h3co/detail/server_endpoint.hpp>
#include <h3co/detail/tls_context.hpp>

#include <ngtcp2/ngtcp2.h>

namespace h3co::detail {

H3CO_DECL server_endpoint::server_endpoint() { random_bytes(secret_.data(), secret_.size()); }

H3CO_DECL bool server_endpoint::destination_id(const std::uint8_t* data, std::size_t len, std::string& key) {
    // ngtcp2 asserts on an empty datagram (found by the server_datagram fuzz target; UDP allows
    // empty datagrams, though udp_receive.hpp passes none on).
    if (len == 0) return false;
    ngtcp2_version_cid vc;
    if (ngtcp2_pkt_decode_version_cid(&vc, data, len, server_cid_length) != 0) return false;
    key = cid_key(vc.dcid, vc.dcidlen);
    return true;
}

H3CO_DECL bool server_endpoint::acceptable_initial(const std::uint8_t* data, std::size_t len) {
    ngtcp2_pkt_hd hd;
    return ngtcp2_accept(&hd, data, len) == 0;
}

}  // namespace h3co::detail
