// Which ngtcp2 / nghttp3 stack h3co runs on, and what that stack lets h3co do (docs/design.md,
// "Versions"). h3co builds against ngtcp2 0.12 + nghttp3 0.8 (Debian 12) or ngtcp2 >= 1.11 +
// nghttp3 >= 1.8; a few features need the newer pair.
#pragma once

#include <h3co/detail/config.hpp>

#include <string>

namespace h3co {

/// The stack in use: the versions of the libraries loaded, and the features that depend on them.
struct stack_info {
    std::string ngtcp2_version;   ///< e.g. "1.11.0", as the loaded library reports it
    std::string nghttp3_version;  ///< e.g. "1.8.0"
    /// HTTP/3 datagrams (RFC 9297, connection_options::h3_datagrams): nghttp3 >= 1.0, whose
    /// SETTINGS carry SETTINGS_H3_DATAGRAM. Without it the datagram calls fail with
    /// error::not_supported.
    bool h3_datagrams = false;
    /// Path-MTU discovery above 1452 bytes, up to connection_options::max_udp_payload: ngtcp2 >= 1.4
    /// (settings.pmtud_probes). Without it ngtcp2's own probes stop at 1444.
    bool pmtud_above_1452 = false;
    /// Extended CONNECT (RFC 9220, request::protocol): both stacks.
    bool extended_connect = true;
};

/// The stack h3co was built with and runs on.
H3CO_DECL stack_info stack();

}  // namespace h3co

#if defined(H3CO_HEADER_ONLY)
#include <h3co/detail/impl/versions.ipp>
#endif
