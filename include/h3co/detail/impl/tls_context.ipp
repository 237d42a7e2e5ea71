// tls_context (see detail/tls_context.hpp): every BoringSSL call that sets up a context.
#pragma once

#include <h3co/detail/quic/boringssl.hpp>
#include <h3co/detail/quic/compat.hpp>
#include <h3co/detail/tls_context.hpp>
#include <h3co/error.hpp>

#include <openssl/aead.h>
#include <openssl/hkdf.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_boringssl.h>

#include <arpa/inet.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

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

/// Where a server's SSL_CTX keeps its tls_context, for the early (ClientHello) callback.
inline int context_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

/// Where a client SSL keeps its ticket_slot, for the new-session callback.
inline int ticket_slot_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

/// One period's ticket keys: a public name (to find the keys again), an HMAC and an AES-256 key.
struct ticket_keys {
    std::array<std::uint8_t, SSL_TICKET_KEY_NAME_LEN> name{};
    std::array<std::uint8_t, 32> hmac{};
    std::array<std::uint8_t, 32> aes{};
};

inline bool derive_ticket_keys(const std::vector<std::uint8_t>& secret, std::uint64_t period, ticket_keys& out) {
    static constexpr std::string_view salt = "h3co session ticket keys v1";
    std::uint8_t info[8];
    for (int i = 0; i < 8; ++i) info[i] = static_cast<std::uint8_t>(period >> (56 - 8 * i));
    std::uint8_t okm[sizeof(ticket_keys::name) + sizeof(ticket_keys::hmac) + sizeof(ticket_keys::aes)];
    if (HKDF(okm, sizeof okm, EVP_sha256(), secret.data(), secret.size(), reinterpret_cast<const std::uint8_t*>(salt.data()),
             salt.size(), info, sizeof info) != 1)
        return false;
    std::memcpy(out.name.data(), okm, out.name.size());
    std::memcpy(out.hmac.data(), okm + out.name.size(), out.hmac.size());
    std::memcpy(out.aes.data(), okm + out.name.size() + out.hmac.size(), out.aes.size());
    OPENSSL_cleanse(okm, sizeof okm);
    return true;
}

inline std::uint64_t ticket_period_now() {
    const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    return seconds > 0 ? static_cast<std::uint64_t>(seconds) / ticket_period_seconds : 0;
}

inline constexpr std::uint16_t chacha20_poly1305_sha256 = 0x1303;

/// The PEM text to load: `pem` when given, else the contents of `file`; `what` names it in errors.
inline std::string pem_text(const std::string& file, const std::string& pem, const std::string& what) {
    if (!pem.empty()) return pem;
    if (file.empty()) throw std::runtime_error("no " + what + " given (neither a file nor PEM text)");
    std::ifstream in(file, std::ios::binary);
    std::ostringstream out;
    if (!in || !(out << in.rdbuf())) throw std::runtime_error("cannot read " + what + " file " + file);
    return out.str();
}

/// Every certificate in `text`; throws unless there is at least one and nothing malformed.
inline std::vector<bssl::UniquePtr<X509>> parse_certificates(const std::string& text, const std::string& what) {
    ERR_clear_error();
    bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(text.data(), text.size()));
    if (!bio) throw std::runtime_error("cannot load " + what + ": out of memory");
    std::vector<bssl::UniquePtr<X509>> out;
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
    const auto err = ERR_peek_last_error();
    // The loop ends on "no start line" after the last block; anything else is a broken block.
    const bool clean_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
    if (out.empty() || !clean_end)
        throw std::runtime_error("cannot load " + what + ": " +
                                 (out.empty() && clean_end ? std::string("no PEM certificate in it") : last_tls_error()));
    ERR_clear_error();
    return out;
}

inline bssl::UniquePtr<EVP_PKEY> parse_private_key(const std::string& text, const std::string& what) {
    ERR_clear_error();
    bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(text.data(), text.size()));
    bssl::UniquePtr<EVP_PKEY> key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!key) throw std::runtime_error("cannot load " + what + ": " + last_tls_error());
    return key;
}

/// Certificate chain (leaf first) and key into `ctx`; throws naming what failed.
inline void use_identity(SSL_CTX* ctx, const std::string& chain_file, const std::string& chain_pem,
                         const std::string& key_file, const std::string& key_pem, const std::string& who) {
    const auto chain_what = who + " certificate chain" + (chain_pem.empty() ? " " + chain_file : std::string(" (PEM text)"));
    const auto key_what = who + " private key" + (key_pem.empty() ? " " + key_file : std::string(" (PEM text)"));
    const auto certs = parse_certificates(pem_text(chain_file, chain_pem, who + " certificate chain"), chain_what);
    if (SSL_CTX_use_certificate(ctx, certs.front().get()) != 1)
        throw std::runtime_error("cannot use " + chain_what + ": " + last_tls_error());
    for (std::size_t i = 1; i < certs.size(); ++i)
        if (SSL_CTX_add1_chain_cert(ctx, certs[i].get()) != 1)
            throw std::runtime_error("cannot use " + chain_what + ": " + last_tls_error());
    const auto key = parse_private_key(pem_text(key_file, key_pem, who + " private key"), key_what);
    if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        throw std::runtime_error(key_what + " does not match the certificate: " + last_tls_error());
}

inline void add_trusted(SSL_CTX* ctx, const std::string& text, const std::string& what) {
    for (const auto& cert : parse_certificates(text, what))
        if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert.get()) != 1)
            throw std::runtime_error("cannot trust " + what + ": " + last_tls_error());
}

inline std::vector<std::uint8_t> der_of(X509* x) {
    const int len = i2d_X509(x, nullptr);
    if (len <= 0) return {};
    std::vector<std::uint8_t> out(static_cast<std::size_t>(len));
    std::uint8_t* p = out.data();
    i2d_X509(x, &p);
    return out;
}

inline std::string asn1_text(const ASN1_STRING* s) {
    return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s))};
}

inline certificate_info describe(X509* x) {
    certificate_info info;
    if (!x) return info;
    info.der = der_of(x);
    if (bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem())); bio) {
        X509_NAME_print_ex(bio.get(), X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
        const std::uint8_t* data = nullptr;
        std::size_t len = 0;
        if (BIO_mem_contents(bio.get(), &data, &len)) info.subject.assign(reinterpret_cast<const char*>(data), len);
    }
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
    for (std::size_t i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
        switch (n->type) {
        case GEN_DNS: info.subject_alt_names.push_back("DNS:" + asn1_text(n->d.dNSName)); break;
        case GEN_URI: info.subject_alt_names.push_back("URI:" + asn1_text(n->d.uniformResourceIdentifier)); break;
        case GEN_EMAIL: info.subject_alt_names.push_back("email:" + asn1_text(n->d.rfc822Name)); break;
        case GEN_IPADD: {
            const auto bytes = asn1_text(n->d.iPAddress);
            char text[INET6_ADDRSTRLEN] = {};
            const int family = bytes.size() == 4 ? AF_INET : bytes.size() == 16 ? AF_INET6 : 0;
            if (family && inet_ntop(family, bytes.data(), text, sizeof text))
                info.subject_alt_names.push_back(std::string("IP:") + text);
            break;
        }
        default: break;
        }
    }
    if (names) GENERAL_NAMES_free(names);
    return info;
}

/// `name` (from SNI) matches `pattern`: equal without case, or "*.rest" for one label before rest.
inline bool name_matches(std::string_view pattern, std::string_view name) {
    auto equal = [](std::string_view a, std::string_view b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
                return false;
        return true;
    };
    if (pattern.starts_with("*.")) {
        const auto dot = name.find('.');
        return dot != std::string_view::npos && dot > 0 && equal(pattern.substr(1), name.substr(dot));
    }
    return equal(pattern, name);
}

/// Everything a server SSL_CTX needs but its certificate: QUIC, ALPN h3, client certificates.
inline void configure_server(SSL_CTX* raw, const server_tls& config) {
    if (ngtcp2_crypto_boringssl_configure_server_context(raw) != 0)
        throw std::runtime_error("cannot configure TLS server context for QUIC");
    SSL_CTX_set_alpn_select_cb(raw, &select_h3, nullptr);
    if (config.client_auth == client_certificates::none) return;
    add_trusted(raw, pem_text(config.client_ca_file, config.client_ca_pem, "client CA (client_ca_file or client_ca_pem)"),
                "client CA" + (config.client_ca_pem.empty() ? " " + config.client_ca_file : std::string(" (PEM text)")));
    int mode = SSL_VERIFY_PEER;
    if (config.client_auth == client_certificates::required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(raw, mode, nullptr);
}

}  // namespace tls_setup

H3CO_DECL tls_context::tls_context(ssl_ctx_st* ctx) : ctx_(ctx) {
    if (!ctx_) throw std::runtime_error("SSL_CTX_new failed: " + last_tls_error());
}

H3CO_DECL tls_context::~tls_context() {
    for (auto& id : identities_) SSL_CTX_free(id.ctx);
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
        if (!config.ca_pem.empty()) {
            tls_setup::add_trusted(raw, config.ca_pem, "CA certificates (PEM text)");
        } else if (!config.ca_file.empty()) {
            if (SSL_CTX_load_verify_locations(raw, config.ca_file.c_str(), nullptr) != 1)
                throw std::runtime_error("cannot load CA file " + config.ca_file + ": " + last_tls_error());
        } else {
            tls_setup::load_system_trust_store(raw);
        }
        if (config.verify_hook) {
            ctx->verify_hook_ = config.verify_hook;
            SSL_CTX_set_cert_verify_callback(
                raw, [](X509_STORE_CTX* store, void* arg) { return verify_chain(store, arg); }, ctx.get());
        }
    } else {
        SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
    }
    const bool has_identity = !config.certificate_chain_file.empty() || !config.certificate_chain_pem.empty() ||
                              !config.private_key_file.empty() || !config.private_key_pem.empty();
    if (has_identity)
        tls_setup::use_identity(raw, config.certificate_chain_file, config.certificate_chain_pem,
                                config.private_key_file, config.private_key_pem, "client");
    // Tickets go to the connection's session_cache (keep_ticket), not to BoringSSL's own cache.
    SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(raw, [](SSL* ssl, SSL_SESSION* session) { return keep_ticket(ssl, session); });
    ctx->ciphers_ = config.ciphers;
    ctx->server_name_ = config.server_name;
    ctx->set_keylog(config.keylog_file);
    return ctx;
}

H3CO_DECL std::shared_ptr<tls_context> tls_context::make_server(const server_tls& config) {
    auto ctx = std::shared_ptr<tls_context>(new tls_context(SSL_CTX_new(TLS_method())));
    SSL_CTX* raw = ctx->ctx_;
    tls_setup::configure_server(raw, config);
    tls_setup::use_identity(raw, config.certificate_chain_file, config.certificate_chain_pem, config.private_key_file,
                            config.private_key_pem, "server");
    ctx->set_keylog(config.keylog_file);
    for (std::size_t i = 0; i < config.additional_identities.size(); ++i) {
        const auto& id = config.additional_identities[i];
        if (id.names.empty())
            throw std::runtime_error("server_tls::additional_identities[" + std::to_string(i) + "] has no names");
        ctx->identities_.push_back({id.names, SSL_CTX_new(TLS_method())});
        SSL_CTX* other = ctx->identities_.back().ctx;
        if (!other) throw std::runtime_error("SSL_CTX_new failed: " + last_tls_error());
        tls_setup::configure_server(other, config);
        tls_setup::use_identity(other, id.certificate_chain_file, id.certificate_chain_pem, id.private_key_file,
                                id.private_key_pem, "identity " + id.names.front());
        share_keylog(other, ctx->keylog_);
    }
    ctx->ciphers_ = config.ciphers;
    if (!ctx->identities_.empty() || ctx->ciphers_ != tls_ciphers::library_default) {
        SSL_CTX_set_ex_data(raw, tls_setup::context_index(), ctx.get());
        SSL_CTX_set_select_certificate_cb(raw, [](const SSL_CLIENT_HELLO* hello) {
            return static_cast<ssl_select_cert_result_t>(select_certificate(hello));
        });
    }
    return ctx;
}

H3CO_DECL int tls_context::select_certificate(const void* client_hello) {
    const auto* hello = static_cast<const SSL_CLIENT_HELLO*>(client_hello);
    SSL* ssl = hello->ssl;
    const auto* self = static_cast<const tls_context*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_setup::context_index()));
    if (!self) return ssl_select_cert_success;
    if (self->ciphers_ == tls_ciphers::chacha20_poly1305_only) {
        // BoringSSL cannot be told which TLS 1.3 suites to take. Its server follows the client's
        // order when it has AES hardware, and takes ChaCha20 whenever offered otherwise: refuse
        // the clients it would give another suite.
        bool offered = false;
        std::uint16_t first = 0;
        for (std::size_t i = 0; i + 1 < hello->cipher_suites_len; i += 2) {
            const auto suite = static_cast<std::uint16_t>(hello->cipher_suites[i] << 8 | hello->cipher_suites[i + 1]);
            if (suite < 0x1301 || suite > 0x1305) continue;  // not a TLS 1.3 suite
            if (first == 0) first = suite;
            offered = offered || suite == tls_setup::chacha20_poly1305_sha256;
        }
        if (!offered || (first != tls_setup::chacha20_poly1305_sha256 && EVP_has_aes_hardware()))
            return ssl_select_cert_error;
    }
    if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
        for (const auto& id : self->identities_)
            for (const auto& pattern : id.names)
                if (tls_setup::name_matches(pattern, name)) {
                    SSL_set_SSL_CTX(ssl, id.ctx);
                    return ssl_select_cert_success;
                }
    }
    return ssl_select_cert_success;
}

H3CO_DECL int tls_context::verify_chain(void* store_ctx, void* arg) {
    auto* store = static_cast<X509_STORE_CTX*>(store_ctx);
    const auto* self = static_cast<const tls_context*>(arg);
    if (X509_verify_cert(store) != 1) return 0;  // the normal verification comes first
    std::vector<std::vector<std::uint8_t>> chain;
    if (STACK_OF(X509)* verified = X509_STORE_CTX_get0_chain(store))
        for (std::size_t i = 0; i < sk_X509_num(verified); ++i) chain.push_back(tls_setup::der_of(sk_X509_value(verified, i)));
    const auto leaf = tls_setup::der_of(X509_STORE_CTX_get0_cert(store));
    bool accepted = false;
    try {
        accepted = self->verify_hook_(std::span<const std::uint8_t>(leaf), chain);
    } catch (...) {
        accepted = false;  // an exception must not cross BoringSSL's C frames
    }
    if (accepted) return 1;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

H3CO_DECL certificate_info tls_context::peer_certificate(const ssl_st* ssl) {
    bssl::UniquePtr<X509> cert(ssl ? SSL_get_peer_certificate(ssl) : nullptr);
    return tls_setup::describe(cert.get());
}

H3CO_DECL std::string tls_context::cipher_name(const ssl_st* ssl) {
    const SSL_CIPHER* cipher = ssl ? SSL_get_current_cipher(ssl) : nullptr;
    return cipher ? SSL_CIPHER_standard_name(cipher) : "";
}

H3CO_DECL std::error_code tls_context::check_negotiated(const ssl_st* ssl) const {
    if (ciphers_ != tls_ciphers::chacha20_poly1305_only) return {};
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    if (!cipher || SSL_CIPHER_get_protocol_id(cipher) != tls_setup::chacha20_poly1305_sha256)
        return make_error_code(error::cipher_not_allowed);
    return {};
}

H3CO_DECL std::vector<std::uint8_t> tls_context::resume_from(ssl_st* ssl, ticket_slot& slot, bool early_data) {
    SSL_set_ex_data(ssl, tls_setup::ticket_slot_index(), &slot);
    // Newest first; a ticket that does not parse (a damaged import) or has expired is dropped
    // and the next one tried: at worst, a full handshake.
    for (auto t = slot.cache->take(slot.authority); t; t = slot.cache->take(slot.authority)) {
        bssl::UniquePtr<SSL_SESSION> session(
            SSL_SESSION_from_bytes(t->session.data(), t->session.size(), SSL_get_SSL_CTX(ssl)));
        if (!session) {
            ERR_clear_error();
            continue;
        }
        const auto now = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
        if (!SSL_SESSION_is_resumable(session.get()) ||
            SSL_SESSION_get_time(session.get()) + SSL_SESSION_get_timeout(session.get()) <= now)
            continue;
        // A resumed handshake verifies no certificate: offer a ticket only if the certificate it
        // was issued under is valid for the name this connection verifies (a ticket filed under
        // the wrong authority, by mistake or by a tampered cache file, is not used).
        if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) {
            X509* leaf = SSL_SESSION_get0_peer(session.get());
            const bool valid = leaf && (slot.name_is_ip ? X509_check_ip_asc(leaf, slot.name.c_str(), 0) == 1
                                                        : X509_check_host(leaf, slot.name.data(), slot.name.size(), 0,
                                                                          nullptr) == 1);
            if (!valid) continue;
        }
        if (SSL_set_session(ssl, session.get()) != 1) {
            ERR_clear_error();
            continue;
        }
        if (!early_data || !SSL_SESSION_early_data_capable(session.get()) || t->transport_parameters.empty()) return {};
        SSL_set_early_data_enabled(ssl, 1);
        return std::move(t->transport_parameters);
    }
    return {};
}

H3CO_DECL bool tls_context::early_data_accepted(const ssl_st* ssl) { return ssl && SSL_early_data_accepted(ssl) == 1; }

H3CO_DECL bool tls_context::early_data_offered(const ssl_st* ssl) {
    if (!ssl) return false;
    // BoringSSL looks at the client's offer only after its own conditions (early data enabled, a
    // resumable ticket that allows it): only the reasons decided after that say it was offered.
    switch (SSL_get_early_data_reason(ssl)) {
    case ssl_early_data_accepted:
    case ssl_early_data_hello_retry_request:
    case ssl_early_data_alpn_mismatch:
    case ssl_early_data_channel_id:
    case ssl_early_data_ticket_age_skew:
    case ssl_early_data_quic_parameter_mismatch:
    case ssl_early_data_alps_mismatch: return true;
    default: return false;
    }
}

H3CO_DECL void tls_context::set_early_data_context(ssl_st* ssl, std::span<const std::uint8_t> context) {
    SSL_set_quic_early_data_context(ssl, context.data(), context.size());
}

H3CO_DECL bool tls_context::resumed(const ssl_st* ssl) { return ssl && SSL_session_reused(ssl) == 1; }

H3CO_DECL int tls_context::keep_ticket(ssl_st* ssl, void* raw_session) {
    auto* session = static_cast<SSL_SESSION*>(raw_session);
    auto* slot = static_cast<ticket_slot*>(SSL_get_ex_data(ssl, tls_setup::ticket_slot_index()));
    if (!slot || !slot->cache || !SSL_SESSION_is_resumable(session)) return 0;
    std::uint8_t* data = nullptr;
    std::size_t len = 0;
    if (SSL_SESSION_to_bytes(session, &data, &len) != 1) {
        ERR_clear_error();
        return 0;
    }
    session_cache::ticket t;
    t.session.assign(data, data + len);
    OPENSSL_free(data);
    // The ticket comes after the handshake: the server's transport parameters are known.
    if (auto* ref = static_cast<ngtcp2_crypto_conn_ref*>(SSL_get_app_data(ssl)))
        if (ngtcp2_conn* conn = ref->get_conn(ref)) {
            std::array<std::uint8_t, 512> params;
            const auto n = compat::encode_0rtt_params(conn, params.data(), params.size());
            if (n > 0) t.transport_parameters.assign(params.data(), params.data() + n);
        }
    try {
        slot->cache->store(slot->authority, std::move(t));
    } catch (...) {  // out of memory: the ticket is lost, not the connection
    }
    return 0;  // BoringSSL keeps ownership of `session`
}

H3CO_DECL void tls_context::use_ticket_secret(std::span<const std::uint8_t> secret, bool early_data) {
    ticket_secret_.assign(secret.begin(), secret.end());
    auto install = [this, early_data](SSL_CTX* raw) {
        // Tickets then carry BoringSSL's QUIC early-data limit; each connection's
        // set_early_data_context decides which tickets' 0-RTT it accepts.
        SSL_CTX_set_early_data_enabled(raw, early_data ? 1 : 0);
        SSL_CTX_set_ex_data(raw, tls_setup::context_index(), this);
        SSL_CTX_set_tlsext_ticket_key_cb(raw, [](SSL* ssl, std::uint8_t* name, std::uint8_t* iv, EVP_CIPHER_CTX* cipher,
                                                 HMAC_CTX* hmac, int encrypt) {
            return ticket_key(ssl, name, iv, cipher, hmac, encrypt);
        });
        // A client should not offer a ticket older than the keys that open it surely live (one
        // full period after the one it was issued in).
        SSL_CTX_set_session_psk_dhe_timeout(raw, static_cast<std::uint32_t>(ticket_period_seconds));
    };
    install(ctx_);
    for (auto& id : identities_) install(id.ctx);
}

H3CO_DECL int tls_context::ticket_key(ssl_st* ssl, std::uint8_t* name, std::uint8_t* iv, void* cipher_ctx,
                                      void* hmac_ctx, int encrypt) {
    auto* cipher = static_cast<EVP_CIPHER_CTX*>(cipher_ctx);
    auto* hmac = static_cast<HMAC_CTX*>(hmac_ctx);
    const auto* self = static_cast<const tls_context*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_setup::context_index()));
    if (!self || self->ticket_secret_.empty()) return encrypt ? -1 : 0;
    const std::uint64_t now = tls_setup::ticket_period_now();
    tls_setup::ticket_keys keys;
    struct wipe {
        tls_setup::ticket_keys& k;
        ~wipe() { OPENSSL_cleanse(&k, sizeof k); }
    } wiped{keys};
    if (encrypt) {
        if (!tls_setup::derive_ticket_keys(self->ticket_secret_, now, keys)) return -1;
        std::memcpy(name, keys.name.data(), keys.name.size());
        if (RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_256_cbc())) != 1 ||
            EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, keys.aes.data(), iv) != 1 ||
            HMAC_Init_ex(hmac, keys.hmac.data(), keys.hmac.size(), EVP_sha256(), nullptr) != 1)
            return -1;
        return 1;
    }
    // The previous period's tickets still open (renewed: 2), and the next period's, so that servers
    // whose clocks differ a little across a period boundary accept each other's tickets.
    for (const std::uint64_t period : {now, now - 1, now + 1}) {
        if (!tls_setup::derive_ticket_keys(self->ticket_secret_, period, keys)) return 0;
        if (std::memcmp(name, keys.name.data(), keys.name.size()) != 0) continue;
        if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, keys.aes.data(), iv) != 1 ||
            HMAC_Init_ex(hmac, keys.hmac.data(), keys.hmac.size(), EVP_sha256(), nullptr) != 1)
            return 0;
        return period == now - 1 ? 2 : 1;
    }
    return 0;  // another secret, or too old: a full handshake
}

H3CO_DECL void tls_context::set_keylog(const std::string& path) {
    if (path.empty()) return;
    keylog_ = std::fopen(path.c_str(), "a");
    if (!keylog_) throw std::runtime_error("cannot open key-log file " + path);
    share_keylog(ctx_, keylog_);
}

H3CO_DECL void tls_context::share_keylog(ssl_ctx_st* ctx, std::FILE* file) {
    if (!file) return;
    SSL_CTX_set_ex_data(ctx, tls_setup::keylog_index(), file);
    SSL_CTX_set_keylog_callback(ctx, [](const SSL* ssl, const char* line) {
        auto* out = static_cast<std::FILE*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_setup::keylog_index()));
        if (!out) return;
        std::fputs(line, out);
        std::fputc('\n', out);
        std::fflush(out);
    });
}

H3CO_DECL void random_bytes(std::uint8_t* dest, std::size_t len) {
    if (RAND_bytes(dest, len) != 1) throw std::runtime_error("RAND_bytes failed");
}

}  // namespace h3co::detail
