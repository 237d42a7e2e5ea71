// TLS configuration for clients and servers. Plain values: the TLS library stays in detail/.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace h3co {

/// A certificate as h3co reports it: copied out of the TLS state, so it stays valid after the
/// connection ends. Empty (der empty) when the peer sent none.
struct certificate_info {
    /// The subject's distinguished name, RFC 2253 form ("CN=h3co test client,O=h3co tests").
    std::string subject;
    /// The subjectAltName entries, each prefixed by its kind: "DNS:name", "IP:127.0.0.1",
    /// "URI:spiffe://...", "email:user@host".
    std::vector<std::string> subject_alt_names;
    /// The certificate, DER-encoded.
    std::vector<std::uint8_t> der;

    /// True when no certificate was presented.
    bool empty() const noexcept { return der.empty(); }
};

/// TLS 1.3 cipher suites a side accepts.
enum class tls_ciphers {
    /// What the TLS library offers and prefers (AES-GCM and ChaCha20-Poly1305).
    library_default,
    /// TLS_CHACHA20_POLY1305_SHA256 only (the interop runner's "chacha20" case). BoringSSL cannot
    /// restrict what it offers in TLS 1.3, so h3co enforces it on the outcome: a client fails the
    /// handshake (error::cipher_not_allowed) when the server picks another suite; a server
    /// refuses a client whose preferred suite is not ChaCha20-Poly1305 (it follows the client's
    /// order). Two h3co peers on hardware with AES therefore do not agree on it.
    chacha20_poly1305_only,
};

/// Called by a verifying client after the normal verification of the server's certificate passed:
/// `leaf` is the server's certificate (DER), `chain` the verified chain from the leaf up to the
/// trusted root (DER each, the leaf first). Return false to refuse the server: the handshake fails
/// with tls_error::rejected_by_verify_hook. Runs inside the handshake, on the connection's
/// executor; it must not block. An exception counts as false.
using verify_hook_function =
    std::function<bool(std::span<const std::uint8_t> leaf, const std::vector<std::vector<std::uint8_t>>& chain)>;

/// How a client authenticates the server, and itself if the server asks. By default the server's
/// certificate is verified against the system trust store and the host name (or IP address) of the
/// URL. Every PEM input may be a file or the PEM text itself (the *_pem members; when both are
/// set, the text is used). Loading errors throw std::runtime_error from the client's or connect()'s
/// constructor/call, naming what failed.
struct client_tls {
    /// PEM file of trusted CA certificates; empty (and ca_pem empty) means the system trust store.
    std::string ca_file;
    /// PEM text of trusted CA certificates (one or more), instead of ca_file.
    std::string ca_pem;
    /// Name to verify and send as SNI instead of the connect host (empty: the connect host).
    std::string server_name;
    /// Write TLS secrets in NSS key-log format here (for Wireshark); empty: off.
    std::string keylog_file;

    // ---- mutual TLS: the client's own identity, sent when the server asks for one ----
    std::string certificate_chain_file;  ///< PEM file: the client certificate, then intermediates
    std::string certificate_chain_pem;   ///< the same as PEM text
    std::string private_key_file;        ///< PEM file: its private key
    std::string private_key_pem;         ///< the same as PEM text

    /// Extra check after normal verification (SPKI pinning, a policy); empty: none. Not called
    /// with insecure_no_certificate_verification().
    verify_hook_function verify_hook;
    /// Which TLS 1.3 cipher suites the client accepts.
    tls_ciphers ciphers = tls_ciphers::library_default;

    /// Only for talking to test servers you control: accepts any certificate, from anyone.
    static client_tls insecure_no_certificate_verification() {
        client_tls t;
        t.verify_peer_ = false;
        return t;
    }
    /// False only for insecure_no_certificate_verification().
    bool verifies_peer() const noexcept { return verify_peer_; }

private:
    bool verify_peer_ = true;
};

/// Whether a server asks clients for a certificate (mutual TLS).
enum class client_certificates {
    none,      ///< no CertificateRequest; peer_certificate() is always empty
    optional,  ///< asked for; a client without one is served, one that fails verification is refused
    required,  ///< a client without a valid certificate is refused (error::client_certificate_required
               ///< or a tls_error on the server; the client sees error::client_certificate_required
               ///< or error::client_certificate_rejected)
};

/// A further server identity, chosen when the client's SNI names one of `names` (see
/// server_tls::additional_identities). PEM file or text, as in server_tls.
struct server_identity {
    /// Host names this identity serves, exact ("a.example") or one wildcard label ("*.example");
    /// compared without case.
    std::vector<std::string> names;
    std::string certificate_chain_file;  ///< PEM file: certificate, then intermediates
    std::string certificate_chain_pem;   ///< the same as PEM text
    std::string private_key_file;        ///< PEM file: its private key
    std::string private_key_pem;         ///< the same as PEM text
};

/// A server's identity: certificate chain and private key, PEM files or PEM text (the *_pem
/// members win when set), and how it treats client certificates. Loaded by the basic_server
/// constructor and basic_server::reload_tls(), which throw std::runtime_error naming what could
/// not be read or does not match.
struct server_tls {
    std::string certificate_chain_file;  ///< PEM file: the server's certificate, then intermediates
    std::string private_key_file;        ///< PEM file: the certificate's private key
    std::string keylog_file;             ///< write TLS secrets in NSS key-log format here; empty: off
    std::string certificate_chain_pem;   ///< PEM text of the chain, instead of certificate_chain_file
    std::string private_key_pem;         ///< PEM text of the key, instead of private_key_file

    // ---- mutual TLS ----
    /// Whether clients are asked for a certificate, verified against client_ca_file/client_ca_pem.
    client_certificates client_auth = client_certificates::none;
    std::string client_ca_file;  ///< PEM file of the CAs that issue client certificates
    std::string client_ca_pem;   ///< the same as PEM text

    /// More certificates, chosen by the client's SNI; the identity above serves every other name
    /// (and clients that send no SNI, such as those connecting to an IP address).
    std::vector<server_identity> additional_identities;
    /// Which TLS 1.3 cipher suites the server accepts.
    tls_ciphers ciphers = tls_ciphers::library_default;

    /// The two PEM files, without key logging. They are loaded by the basic_server constructor,
    /// which throws std::runtime_error if one cannot be read or the key does not match.
    static server_tls from_pem_files(std::string certificate_chain, std::string private_key) {
        server_tls t;
        t.certificate_chain_file = std::move(certificate_chain);
        t.private_key_file = std::move(private_key);
        return t;
    }
    /// The same from PEM text in memory (say, from a secrets store).
    static server_tls from_pem(std::string certificate_chain, std::string private_key) {
        server_tls t;
        t.certificate_chain_pem = std::move(certificate_chain);
        t.private_key_pem = std::move(private_key);
        return t;
    }
};

}  // namespace h3co
