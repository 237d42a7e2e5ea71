// TLS configuration for clients and servers. Plain values: the TLS library stays in detail/.
#pragma once

#include <string>

namespace h3co {

/// How a client authenticates the server. By default the server's certificate is verified against
/// the system trust store and the host name (or IP address) of the URL.
struct client_tls {
    /// PEM file of trusted CA certificates; empty means the system trust store.
    std::string ca_file;
    /// Name to verify and send as SNI instead of the connect host (empty: the connect host).
    std::string server_name;
    /// Write TLS secrets in NSS key-log format here (for Wireshark); empty: off.
    std::string keylog_file;

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

/// A server's identity: certificate chain and private key, both PEM.
struct server_tls {
    std::string certificate_chain_file;  ///< PEM file: the server's certificate, then intermediates
    std::string private_key_file;        ///< PEM file: the certificate's private key
    std::string keylog_file;             ///< write TLS secrets in NSS key-log format here; empty: off

    /// The two PEM files, without key logging. They are loaded by the basic_server constructor,
    /// which throws std::runtime_error if one cannot be read or the key does not match.
    static server_tls from_pem_files(std::string certificate_chain, std::string private_key) {
        server_tls t;
        t.certificate_chain_file = std::move(certificate_chain);
        t.private_key_file = std::move(private_key);
        return t;
    }
};

}  // namespace h3co
