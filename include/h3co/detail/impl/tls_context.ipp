// tls_context (see detail/tls_context.hpp): every BoringSSL call that sets up a context.
#pragma once

#include <h3co/detail/quic/boringssl.hpp>
#include <h3co/detail/tls_context.hpp>

#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_boringssl.h>

#include <cstring>
#include <stdexcept>

namespace h3co::detail {

namespace tls_setup {

inline void load_system_trust_store(SSL_CTX* ctx) {
    // Android's BoringSSL has no compiled-in default path that matches Debian's layout.
    static constexpr const char* bundles[] = {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"};
    for (const char* bundle : bundles)
        if (SSL_CTX_load_verify_locations(ctx, bundle, nullptr) == 1) return;
    ERR_clear_error();
    SSL_CTX_set_default_verify_paths(ctx);
}

/// Server ALPN: "h3" or nothing (no_application_protocol).
inline int select_h3(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                     void*) {
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
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

inline int keylog_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

}  // namespace tls_setup

H3CO_DECL tls_context::tls_context(ssl_ctx_st* ctx) : ctx_(ctx) {
    if (!ctx_) throw std::runtime_error("SSL_CTX_new failed: " + last_tls_error());
}

H3CO_DECL tls_context::~tls_context() {
    SSL_CTX_free(ctx_);
    if (keylog_) std::fclose(keylog_);
}

H3CO_DECL std::shared_ptr<tls_context> tls_context::make_client(const client_tls& config) {
    auto ctx = std::shared_ptr<tls_context>(new tls_context(SSL_CTX_new(TLS_method())));
    SSL_CTX* raw = ctx->ctx_;
    if (ngtcp2_crypto_boringssl_configure_client_context(raw) != 0)
        throw std::runtime_error("cannot configure TLS client context for QUIC");
    if (config.verifies_peer()) {
        SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
        if (!config.ca_file.empty()) {
            if (SSL_CTX_load_verify_locations(raw, config.ca_file.c_str(), nullptr) != 1)
                throw std::runtime_error("cannot load CA file " + config.ca_file + ": " + last_tls_error());
        } else {
            tls_setup::load_system_trust_store(raw);
        }
    } else {
        SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
    }
    ctx->server_name_ = config.server_name;
    ctx->set_keylog(config.keylog_file);
    return ctx;
}

H3CO_DECL std::shared_ptr<tls_context> tls_context::make_server(const server_tls& config) {
    auto ctx = std::shared_ptr<tls_context>(new tls_context(SSL_CTX_new(TLS_method())));
    SSL_CTX* raw = ctx->ctx_;
    if (ngtcp2_crypto_boringssl_configure_server_context(raw) != 0)
        throw std::runtime_error("cannot configure TLS server context for QUIC");
    if (SSL_CTX_use_certificate_chain_file(raw, config.certificate_chain_file.c_str()) != 1)
        throw std::runtime_error("cannot load certificate chain " + config.certificate_chain_file + ": " +
                                 last_tls_error());
    if (SSL_CTX_use_PrivateKey_file(raw, config.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error("cannot load private key " + config.private_key_file + ": " + last_tls_error());
    if (SSL_CTX_check_private_key(raw) != 1)
        throw std::runtime_error("private key does not match the certificate: " + last_tls_error());
    SSL_CTX_set_alpn_select_cb(raw, &tls_setup::select_h3, nullptr);
    ctx->set_keylog(config.keylog_file);
    return ctx;
}

H3CO_DECL void tls_context::set_keylog(const std::string& path) {
    if (path.empty()) return;
    keylog_ = std::fopen(path.c_str(), "a");
    if (!keylog_) throw std::runtime_error("cannot open key-log file " + path);
    SSL_CTX_set_ex_data(ctx_, tls_setup::keylog_index(), keylog_);
    SSL_CTX_set_keylog_callback(ctx_, [](const SSL* ssl, const char* line) {
        auto* file = static_cast<std::FILE*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_setup::keylog_index()));
        if (!file) return;
        std::fputs(line, file);
        std::fputc('\n', file);
        std::fflush(file);
    });
}

H3CO_DECL void random_bytes(std::uint8_t* dest, std::size_t len) {
    if (RAND_bytes(dest, len) != 1) throw std::runtime_error("RAND_bytes failed");
}

}  // namespace h3co::detail
