// BoringSSL's headers, and the check that they are BoringSSL's: OpenSSL 3 installs the same names.
#pragma once

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#ifndef OPENSSL_IS_BORINGSSL
#error "h3co needs BoringSSL headers (put /usr/include/android before the system include path)"
#endif

#include <string>

namespace h3co::detail {

/// The last BoringSSL error as text (and the error queue cleared).
inline std::string last_tls_error() {
    char buf[256];
    const auto code = ERR_get_error();
    if (code == 0) return "unknown TLS error";
    ERR_error_string_n(code, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

}  // namespace h3co::detail
