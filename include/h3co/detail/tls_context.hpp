// TLS configuration made concrete: a BoringSSL context built from h3co's client_tls / server_tls,
// shared by a client's or a server's connections. Declared without any BoringSSL type, so that the
// public headers need none; every BoringSSL call in h3co is in impl/tls_context.ipp and
// quic/tls_session.hpp.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/tls.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

struct ssl_ctx_st;  // BoringSSL's SSL_CTX

namespace h3co::detail {

class tls_context {
public:
    /// Throws std::runtime_error when a file cannot be loaded.
    H3CO_DECL static std::shared_ptr<tls_context> make_client(const client_tls& config);
    /// Throws std::runtime_error when a file cannot be loaded or the key does not match.
    H3CO_DECL static std::shared_ptr<tls_context> make_server(const server_tls& config);

    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;
    H3CO_DECL ~tls_context();

    /// The SSL_CTX.
    ssl_ctx_st* native() const noexcept { return ctx_; }
    const std::string& server_name_override() const noexcept { return server_name_; }

private:
    H3CO_DECL explicit tls_context(ssl_ctx_st* ctx);
    H3CO_DECL void set_keylog(const std::string& path);

    ssl_ctx_st* ctx_;
    std::FILE* keylog_ = nullptr;
    std::string server_name_;
};

/// Fills `dest` with cryptographically secure random bytes (connection IDs, tokens, secrets).
H3CO_DECL void random_bytes(std::uint8_t* dest, std::size_t len);

}  // namespace h3co::detail

#if defined(H3CO_HEADER_ONLY)
#include <h3co/detail/impl/tls_context.ipp>
#endif
