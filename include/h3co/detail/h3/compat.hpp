// What differs between nghttp3 0.8 and nghttp3 1.x for h3co, behind one set of names (ngtcp2's
// differences are in detail/quic/compat.hpp). Included only by the engine's implementation files.
#pragma once

#include <nghttp3/nghttp3.h>
#include <nghttp3/version.h>

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

}  // namespace h3co::detail::h3_compat
