// One connection's TLS state, tied to its ngtcp2_conn through the crypto helper's conn_ref.
// Included only by the engine's implementation files.
#pragma once

#include <h3co/detail/quic/boringssl.hpp>
#include <h3co/detail/tls_context.hpp>
#include <h3co/error.hpp>

#include <ngtcp2/ngtcp2_crypto.h>

#include <arpa/inet.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>
#include <span>

namespace h3co::detail {

inline constexpr unsigned char h3_alpn[] = {2, 'h', '3'};

inline bool is_ip_literal(std::string_view host) {
    std::string h(host);
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

class tls_session {
public:
    tls_session(std::shared_ptr<tls_context> ctx, ngtcp2_crypto_conn_ref* conn_ref)
        : ctx_(std::move(ctx)), ssl_(SSL_new(ctx_->native())) {
        if (!ssl_) throw std::runtime_error("SSL_new failed: " + last_tls_error());
        SSL_set_app_data(ssl_.get(), conn_ref);
    }

    /// Client side: ALPN h3, SNI for names only (never for IP literals), and the identity to verify.
    /// With a `cache`: tickets for "name:port" are kept there, and the newest offered (resumption).
    /// Returns the server's transport parameters for 0-RTT when `early_data` and the ticket allow it.
    std::vector<std::uint8_t> setup_client(std::string_view host, std::uint16_t port,
                                           std::shared_ptr<session_cache> cache, bool early_data) {
        SSL* ssl = ssl_.get();
        SSL_set_connect_state(ssl);
        SSL_set_alpn_protos(ssl, h3_alpn, sizeof h3_alpn);
        const std::string name(ctx_->server_name_override().empty() ? host : ctx_->server_name_override());
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        if (is_ip_literal(name)) {
            X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
        } else {
            SSL_set_tlsext_host_name(ssl, name.c_str());
            X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
        }
        if (cache) {
            // Keyed by the verified name: a ticket never stands in for verifying another name.
            slot_.cache = std::move(cache);
            slot_.authority = name + ":" + std::to_string(port);
            slot_.name = name;
            slot_.name_is_ip = is_ip_literal(name);
            return tls_context::resume_from(ssl, slot_, early_data);
        }
        return {};
    }

    /// Server: `early_data_context` names the limits 0-RTT relies on (set_early_data_context).
    void setup_server(std::span<const std::uint8_t> early_data_context) {
        SSL_set_accept_state(ssl_.get());
        tls_context::set_early_data_context(ssl_.get(), early_data_context);
    }
    /// Whether early data was accepted (client: by the server; server: from the client).
    bool early_data_accepted() const { return tls_context::early_data_accepted(ssl_.get()); }
    /// Client: no 0-RTT after all (the ticket's transport parameters did not decode).
    void disable_early_data() { SSL_set_early_data_enabled(ssl_.get(), 0); }
    /// Server: whether the client offered early data.
    bool early_data_offered() const { return tls_context::early_data_offered(ssl_.get()); }

    SSL* native() const noexcept { return ssl_.get(); }

    bool negotiated_h3() const noexcept {
        const unsigned char* proto = nullptr;
        unsigned len = 0;
        SSL_get0_alpn_selected(ssl_.get(), &proto, &len);
        return len == 2 && std::memcmp(proto, "h3", 2) == 0;
    }

    /// After the handshake: the context's policy (tls_ciphers) broken by what was negotiated.
    std::error_code policy_error() const { return ctx_->check_negotiated(ssl_.get()); }
    /// The peer's certificate (empty if none), copied out.
    certificate_info peer_certificate() const { return tls_context::peer_certificate(ssl_.get()); }
    /// The negotiated cipher suite's IANA name ("" before the handshake).
    std::string cipher_name() const { return tls_context::cipher_name(ssl_.get()); }
    /// Whether the handshake resumed a session (a ticket from an earlier connection).
    bool resumed() const { return tls_context::resumed(ssl_.get()); }

    /// The certificate verification failure, if that is why the handshake failed.
    std::error_code verify_error() const noexcept {
        const long result = SSL_get_verify_result(ssl_.get());
        // INVALID_CALL: the handshake failed before any certificate was verified.
        if (result == X509_V_OK || result == X509_V_ERR_INVALID_CALL) return {};
        return {static_cast<int>(result), tls_category()};
    }

private:
    struct ssl_free {
        void operator()(SSL* s) const noexcept { SSL_free(s); }
    };
    std::shared_ptr<tls_context> ctx_;
    ticket_slot slot_;  ///< before ssl_: the SSL points to it until freed
    std::unique_ptr<SSL, ssl_free> ssl_;
};

}  // namespace h3co::detail
