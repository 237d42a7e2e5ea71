// TLS configuration made concrete: a BoringSSL context built from h3co's client_tls / server_tls,
// shared by a client's or a server's connections. Declared without any BoringSSL type, so that the
// public headers need none; every BoringSSL call in h3co is in impl/tls_context.ipp and
// quic/tls_session.hpp.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/session_cache.hpp>
#include <h3co/tls.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

struct ssl_ctx_st;  // BoringSSL's SSL_CTX
struct ssl_st;      // BoringSSL's SSL

namespace h3co::detail {

/// A client connection's place in its session cache: where its new tickets go, under which
/// authority. Owned by the connection's tls_session; found from the SSL through ex_data.
struct ticket_slot {
    std::shared_ptr<session_cache> cache;
    std::string authority;  ///< "name:port", name being the one the certificate is verified against
    std::string name;       ///< that name: a ticket is offered only if its certificate is valid for it
    bool name_is_ip = false;
};

/// Server session tickets: keys derive from the server's secret per 12-hour period (see
/// use_ticket_secret); a ticket of the period before or after the current one is accepted too.
inline constexpr std::uint64_t ticket_period_seconds = 12 * 3600;

class tls_context {
public:
    /// Throws std::runtime_error when a file or PEM text cannot be loaded.
    H3CO_DECL static std::shared_ptr<tls_context> make_client(const client_tls& config);
    /// Throws std::runtime_error when a file or PEM text cannot be loaded or a key does not match.
    H3CO_DECL static std::shared_ptr<tls_context> make_server(const server_tls& config);

    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;
    H3CO_DECL ~tls_context();

    /// The SSL_CTX.
    ssl_ctx_st* native() const noexcept { return ctx_; }
    const std::string& server_name_override() const noexcept { return server_name_; }

    /// The certificate the peer of `ssl` presented (empty if none), copied out.
    H3CO_DECL static certificate_info peer_certificate(const ssl_st* ssl);
    /// The IANA name of the cipher suite `ssl` negotiated ("" before the handshake).
    H3CO_DECL static std::string cipher_name(const ssl_st* ssl);
    /// After the handshake of `ssl`: error::cipher_not_allowed if its cipher suite breaks this
    /// context's tls_ciphers; else no error.
    H3CO_DECL std::error_code check_negotiated(const ssl_st* ssl) const;

    /// Client: new tickets for `ssl` go to `slot`'s cache (slot outlives ssl), and its newest
    /// ticket for the authority, if any and if it parses, is offered. A damaged ticket is dropped.
    /// With `early_data`, and if that ticket allows early data and came with the server's transport
    /// parameters: 0-RTT is enabled on `ssl` and those parameters are returned (else nothing).
    H3CO_DECL static std::vector<std::uint8_t> resume_from(ssl_st* ssl, ticket_slot& slot, bool early_data);
    /// Client: whether the server accepted the early data `ssl` offered.
    H3CO_DECL static bool early_data_accepted(const ssl_st* ssl);
    /// Server, after the ClientHello: whether the client offered early data.
    H3CO_DECL static bool early_data_offered(const ssl_st* ssl);
    /// Server: 0-RTT on `ssl` is allowed only under tickets issued with the same `context` (the
    /// limits the early data relies on), as BoringSSL requires of QUIC servers.
    H3CO_DECL static void set_early_data_context(ssl_st* ssl, std::span<const std::uint8_t> context);
    /// Whether the handshake of `ssl` resumed a session.
    H3CO_DECL static bool resumed(const ssl_st* ssl);
    /// Server: session tickets are sealed with keys derived from `secret` (server_options::secret)
    /// with HKDF-SHA256, one key set per ticket_period_seconds of the system clock, so servers
    /// sharing the secret resume each other's clients. Call before the context serves handshakes.
    /// With `early_data` (server_options::early_data), tickets allow 0-RTT and it is accepted.
    H3CO_DECL void use_ticket_secret(std::span<const std::uint8_t> secret, bool early_data = false);

private:
    H3CO_DECL explicit tls_context(ssl_ctx_st* ctx);
    H3CO_DECL void set_keylog(const std::string& path);
    H3CO_DECL static void share_keylog(ssl_ctx_st* ctx, std::FILE* file);
    H3CO_DECL static int select_certificate(const void* client_hello);
    H3CO_DECL static int verify_chain(void* store_ctx, void* arg);
    H3CO_DECL static int keep_ticket(ssl_st* ssl, void* session);
    H3CO_DECL static int ticket_key(ssl_st* ssl, std::uint8_t* name, std::uint8_t* iv, void* cipher, void* hmac,
                                    int encrypt);

    /// A further server identity (SNI): its own SSL_CTX, configured like the main one.
    struct named_identity {
        std::vector<std::string> names;
        ssl_ctx_st* ctx = nullptr;
    };

    ssl_ctx_st* ctx_;
    std::FILE* keylog_ = nullptr;
    std::string server_name_;
    verify_hook_function verify_hook_;
    tls_ciphers ciphers_ = tls_ciphers::library_default;
    std::vector<named_identity> identities_;
    std::vector<std::uint8_t> ticket_secret_;  ///< server: what ticket keys derive from
};

/// Fills `dest` with cryptographically secure random bytes (connection IDs, tokens, secrets).
H3CO_DECL void random_bytes(std::uint8_t* dest, std::size_t len);

}  // namespace h3co::detail

#if defined(H3CO_HEADER_ONLY)
#include <h3co/detail/impl/tls_context.ipp>
#endif
