// What a connection's TLS handshake settled (peer certificate, cipher suite), read for the public
// handles. Kept apart from session.ipp: only TLS queries.
#pragma once

#include <h3co/detail/quic/native_session.hpp>
#include <h3co/detail/session.hpp>

namespace h3co::detail {

H3CO_DECL certificate_info session::peer_certificate() const {
    return native_ && native_->tls ? native_->tls->peer_certificate() : certificate_info{};
}

H3CO_DECL std::string session::tls_cipher() const {
    return native_ && native_->tls ? native_->tls->cipher_name() : std::string{};
}

}  // namespace h3co::detail
