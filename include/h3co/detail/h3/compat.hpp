// What differs between nghttp3 0.8 and nghttp3 1.x for h3co, behind one set of names (ngtcp2's
// differences are in detail/quic/compat.hpp). Included only by the engine's implementation files.
#pragma once

#include <nghttp3/nghttp3.h>
#include <nghttp3/version.h>

#include <cstdint>
#include <cstdio>

namespace h3co::detail::h3_compat {

/// nghttp3 1.x sends and checks SETTINGS_H3_DATAGRAM (RFC 9297) and reports the peer's SETTINGS
/// through the recv_settings callback; 0.8 has neither, so HTTP/3 datagrams cannot be negotiated.
inline constexpr bool h3_datagrams_supported = NGHTTP3_VERSION_NUM >= 0x010000;

/// Offers HTTP/3 datagrams in our SETTINGS (1.x; a no-op on 0.8).
inline void set_h3_datagram(nghttp3_settings& s, bool on) noexcept {
#if NGHTTP3_VERSION_NUM >= 0x010000
    s.h3_datagram = on ? 1 : 0;
#else
    (void)s, (void)on;
#endif
}

/// Installs `cb` as the callback for the peer's SETTINGS (1.x; 0.8 reports none, and its users read
/// the SETTINGS frame themselves: h3/peer_settings.hpp).
template <class Callback>
inline void set_recv_settings(nghttp3_callbacks& cb, Callback f) noexcept {
#if NGHTTP3_VERSION_NUM >= 0x010000
    cb.recv_settings = f;
#else
    (void)cb, (void)f;
#endif
}

/// Client: sends PRIORITY_UPDATE (RFC 9218) for request stream `stream_id`. 0.8 takes the priority
/// as a struct, 1.x as the serialized field value.
inline int set_client_priority(nghttp3_conn* conn, std::int64_t stream_id, std::uint32_t urgency, bool incremental) {
#if NGHTTP3_VERSION_NUM >= 0x010000
    char field[16];
    const int len = std::snprintf(field, sizeof field, incremental ? "u=%u, i" : "u=%u", urgency);
    return nghttp3_conn_set_client_stream_priority(conn, stream_id, reinterpret_cast<const std::uint8_t*>(field),
                                                   static_cast<std::size_t>(len));
#else
    nghttp3_pri pri{};
    pri.urgency = urgency;
    pri.inc = incremental ? 1 : 0;
    return nghttp3_conn_set_stream_priority(conn, stream_id, &pri);
#endif
}

}  // namespace h3co::detail::h3_compat
