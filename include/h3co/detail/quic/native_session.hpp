// The C libraries' state for one connection, behind session's opaque native_ pointer. Included only
// by the engine's implementation files, never by a public header.
#pragma once

#include <h3co/detail/network_path.hpp>
#include <h3co/detail/quic/compat.hpp>
#include <h3co/detail/quic/tls_session.hpp>
#include <h3co/detail/session.hpp>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

namespace h3co::detail {

struct native_session {
    ngtcp2_conn* conn = nullptr;
    nghttp3_conn* h3 = nullptr;
    compat::ccerr ccerr{};                  ///< what we close with
    ngtcp2_crypto_conn_ref conn_ref{};      ///< how the crypto helper finds `conn` from the SSL object
    std::shared_ptr<tls_context> tls_ctx;
    std::unique_ptr<tls_session> tls;
    std::vector<std::uint8_t> static_secret;  ///< server: derives stateless reset tokens
    std::FILE* qlog = nullptr;
    compat::pmtud_probe_sizes pmtud_probes;  ///< ngtcp2 >= 1.4: probe sizes above 1452 (transport_config)

    native_session() { compat::ccerr_default(ccerr); }
    native_session(const native_session&) = delete;
    native_session& operator=(const native_session&) = delete;
    ~native_session() {
        if (h3) nghttp3_conn_del(h3);
        if (conn) ngtcp2_conn_del(conn);
        if (qlog) std::fclose(qlog);
    }
};

/// `p` in ngtcp2's terms; points into `p`, which must outlive the result.
inline ngtcp2_path ngtcp2_path_of(const network_path& p) noexcept {
    ngtcp2_path out{};
    out.local.addr = reinterpret_cast<ngtcp2_sockaddr*>(const_cast<sockaddr_storage*>(&p.local));
    out.local.addrlen = static_cast<ngtcp2_socklen>(p.local_len);
    out.remote.addr = reinterpret_cast<ngtcp2_sockaddr*>(const_cast<sockaddr_storage*>(&p.remote));
    out.remote.addrlen = static_cast<ngtcp2_socklen>(p.remote_len);
    return out;
}

/// ngtcp2's `p` as a network_path (a copy).
inline network_path network_path_of(const ngtcp2_path& p) noexcept {
    return network_path(reinterpret_cast<const sockaddr*>(p.local.addr), static_cast<socklen_t>(p.local.addrlen),
                        reinterpret_cast<const sockaddr*>(p.remote.addr), static_cast<socklen_t>(p.remote.addrlen));
}

}  // namespace h3co::detail
