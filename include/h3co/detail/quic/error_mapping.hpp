// From what ngtcp2 reports to h3co's error codes: a peer's CONNECTION_CLOSE, a failed handshake.
// Included only by the engine's implementation files.
#pragma once

#include <h3co/detail/quic/compat.hpp>
#include <h3co/detail/quic/tls_session.hpp>
#include <h3co/error.hpp>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

#include <string>
#include <system_error>

namespace h3co::detail {

/// TLS alert 120, no_application_protocol: the peer does not speak h3.
inline constexpr std::uint8_t tls_alert_no_application_protocol = 120;

/// TLS alert 116, certificate_required: a TLS 1.3 server wanted a client certificate.
inline constexpr std::uint8_t tls_alert_certificate_required = 116;

/// Why a handshake failed, from the TLS alert ngtcp2 saw.
inline std::error_code handshake_error(std::uint8_t alert) {
    if (alert == tls_alert_no_application_protocol) return make_error_code(error::alpn_mismatch);
    if (alert == tls_alert_certificate_required) return make_error_code(error::client_certificate_required);
    return make_error_code(error::handshake_failed);
}

/// Client: a server's alert about the client certificate (mutual TLS) as a named error; none for
/// other alerts. A server verifies nothing else, so these alerts can only be about ours.
inline std::error_code client_certificate_alert(std::uint8_t alert) {
    switch (alert) {
    case tls_alert_certificate_required: return make_error_code(error::client_certificate_required);
    case 42:  // bad_certificate
    case 43:  // unsupported_certificate
    case 44:  // certificate_revoked
    case 45:  // certificate_expired
    case 46:  // certificate_unknown
    case 48:  // unknown_ca
    case 49:  // access_denied
        return make_error_code(error::client_certificate_rejected);
    default: return {};
    }
}

/// The peer's CONNECTION_CLOSE as an error code (a clean close is error::connection_closed); its
/// reason phrase goes to `reason`.
inline std::error_code peer_close_error(ngtcp2_conn* conn, const tls_session& tls, bool established,
                                        std::string& reason) {
    const compat::ccerr ccerr = compat::peer_ccerr(conn);
    reason.assign(reinterpret_cast<const char*>(ccerr.reason), ccerr.reasonlen);
    if (compat::ccerr_is_transport(ccerr)) {
        if (ccerr.error_code == NGTCP2_NO_ERROR) return make_error_code(error::connection_closed);
        if (!established && tls.verify_error()) return tls.verify_error();
        if (ccerr.error_code == NGTCP2_CRYPTO_ERROR + tls_alert_no_application_protocol)
            return make_error_code(error::alpn_mismatch);
        if (!SSL_is_server(tls.native()) && ccerr.error_code >= NGTCP2_CRYPTO_ERROR &&
            ccerr.error_code <= NGTCP2_CRYPTO_ERROR + 0xff)
            if (auto ec = client_certificate_alert(static_cast<std::uint8_t>(ccerr.error_code - NGTCP2_CRYPTO_ERROR)))
                return ec;
        return make_quic_error_code(ccerr.error_code);
    }
    if (compat::ccerr_is_application(ccerr)) {
        if (ccerr.error_code == NGHTTP3_H3_NO_ERROR) return make_error_code(error::connection_closed);
        return make_h3_error_code(ccerr.error_code);
    }
    return make_error_code(error::connection_closed);
}

}  // namespace h3co::detail
