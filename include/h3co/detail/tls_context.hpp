// BoringSSL behind a narrow interface: contexts from h3co's TLS config, one SSL object per connection.
// Every BoringSSL call in h3co is in this file.
#pragma once

#include <h3co/error.hpp>
#include <h3co/tls.hpp>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#ifndef OPENSSL_IS_BORINGSSL
#error "h3co needs BoringSSL headers (put /usr/include/android before the system include path)"
#endif

#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_boringssl.h>

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace h3co::detail {

inline constexpr unsigned char h3_alpn[] = {2, 'h', '3'};

inline std::string last_tls_error() {
    char buf[256];
    const auto code = ERR_get_error();
    if (code == 0) return "unknown TLS error";
    ERR_error_string_n(code, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

/// Fills `dest` with cryptographically secure random bytes (connection IDs, reset tokens).
inline void random_bytes(std::uint8_t* dest, std::size_t len) {
    if (RAND_bytes(dest, len) != 1) throw std::runtime_error("RAND_bytes failed");
}

inline bool is_ip_literal(std::string_view host) {
    std::string h(host);
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

/// A shared SSL_CTX; each connection makes its own SSL from it.
class tls_context {
public:
    static std::shared_ptr<tls_context> make_client(const client_tls& config) {
        auto ctx = std::shared_ptr<tls_context>(new tls_context(SSL_CTX_new(TLS_method())));
        if (ngtcp2_crypto_boringssl_configure_client_context(ctx->ctx_.get()) != 0)
            throw std::runtime_error("cannot configure TLS client context for QUIC");
        if (config.verifies_peer()) {
            SSL_CTX_set_verify(ctx->ctx_.get(), SSL_VERIFY_PEER, nullptr);
            if (!config.ca_file.empty()) {
                if (SSL_CTX_load_verify_locations(ctx->ctx_.get(), config.ca_file.c_str(), nullptr) != 1)
                    throw std::runtime_error("cannot load CA file " + config.ca_file + ": " + last_tls_error());
            } else {
                load_system_trust_store(ctx->ctx_.get());
            }
        } else {
            SSL_CTX_set_verify(ctx->ctx_.get(), SSL_VERIFY_NONE, nullptr);
        }
        ctx->server_name_ = config.server_name;
        ctx->set_keylog(config.keylog_file);
        return ctx;
    }

    static std::shared_ptr<tls_context> make_server(const server_tls& config) {
        auto ctx = std::shared_ptr<tls_context>(new tls_context(SSL_CTX_new(TLS_method())));
        SSL_CTX* raw = ctx->ctx_.get();
        if (ngtcp2_crypto_boringssl_configure_server_context(raw) != 0)
            throw std::runtime_error("cannot configure TLS server context for QUIC");
        if (SSL_CTX_use_certificate_chain_file(raw, config.certificate_chain_file.c_str()) != 1)
            throw std::runtime_error("cannot load certificate chain " + config.certificate_chain_file + ": " +
                                     last_tls_error());
        if (SSL_CTX_use_PrivateKey_file(raw, config.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
            throw std::runtime_error("cannot load private key " + config.private_key_file + ": " + last_tls_error());
        if (SSL_CTX_check_private_key(raw) != 1)
            throw std::runtime_error("private key does not match the certificate: " + last_tls_error());
        SSL_CTX_set_alpn_select_cb(raw, &select_h3, nullptr);
        ctx->set_keylog(config.keylog_file);
        return ctx;
    }

    SSL_CTX* native() const noexcept { return ctx_.get(); }
    const std::string& server_name_override() const noexcept { return server_name_; }

private:
    explicit tls_context(SSL_CTX* ctx) : ctx_(ctx) {
        if (!ctx_) throw std::runtime_error("SSL_CTX_new failed: " + last_tls_error());
    }

    static void load_system_trust_store(SSL_CTX* ctx) {
        // Android's BoringSSL has no compiled-in default path that matches Debian's layout.
        static constexpr const char* bundles[] = {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"};
        for (const char* bundle : bundles)
            if (SSL_CTX_load_verify_locations(ctx, bundle, nullptr) == 1) return;
        ERR_clear_error();
        SSL_CTX_set_default_verify_paths(ctx);
    }

    static int select_h3(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                         unsigned inlen, void*) {
        for (unsigned i = 0; i < inlen;) {
            const unsigned len = in[i];
            if (i + 1 + len > inlen) break;
            if (len == 2 && std::memcmp(in + i + 1, "h3", 2) == 0) {
                *out = in + i + 1;
                *outlen = 2;
                return SSL_TLSEXT_ERR_OK;
            }
            i += 1 + len;
        }
        return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
    }

    void set_keylog(const std::string& path) {
        if (path.empty()) return;
        keylog_.reset(std::fopen(path.c_str(), "a"));
        if (!keylog_) throw std::runtime_error("cannot open key-log file " + path);
        SSL_CTX_set_ex_data(ctx_.get(), keylog_index(), keylog_.get());
        SSL_CTX_set_keylog_callback(ctx_.get(), [](const SSL* ssl, const char* line) {
            auto* file = static_cast<std::FILE*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keylog_index()));
            if (!file) return;
            std::fputs(line, file);
            std::fputc('\n', file);
            std::fflush(file);
        });
    }

    static int keylog_index() {
        static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
        return index;
    }

    struct ctx_free {
        void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
    };
    struct file_close {
        void operator()(std::FILE* f) const noexcept { std::fclose(f); }
    };
    std::unique_ptr<SSL_CTX, ctx_free> ctx_;
    std::unique_ptr<std::FILE, file_close> keylog_;
    std::string server_name_;
};

/// One connection's TLS state, tied to its ngtcp2_conn through the crypto helper's conn_ref.
class tls_session {
public:
    tls_session(std::shared_ptr<tls_context> ctx, ngtcp2_crypto_conn_ref* conn_ref)
        : ctx_(std::move(ctx)), ssl_(SSL_new(ctx_->native())) {
        if (!ssl_) throw std::runtime_error("SSL_new failed: " + last_tls_error());
        SSL_set_app_data(ssl_.get(), conn_ref);
    }

    /// Client side: ALPN h3, SNI for names only (never for IP literals), and the identity to verify.
    void setup_client(std::string_view host) {
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
    }

    void setup_server() { SSL_set_accept_state(ssl_.get()); }

    SSL* native() const noexcept { return ssl_.get(); }

    bool negotiated_h3() const noexcept {
        const unsigned char* proto = nullptr;
        unsigned len = 0;
        SSL_get0_alpn_selected(ssl_.get(), &proto, &len);
        return len == 2 && std::memcmp(proto, "h3", 2) == 0;
    }

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
    std::unique_ptr<SSL, ssl_free> ssl_;
};

}  // namespace h3co::detail
