// Real certificate verification: the wrong CA and the wrong host name each fail the handshake with
// a named error, never a connection that silently trusts the peer.
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <openssl/ssl.h>


namespace tls_test {

std::error_code connect_error(asio::io_context& io, const std::string& host, std::uint16_t port, const h3co::client_tls& tls) {
    return test::run(io, [&]() -> asio::awaitable<std::error_code> {
        auto [ec, conn] = co_await h3co::connect(test::executor(io), host, port, tls, tuple);
        co_return ec;
    }());
}


TEST_CASE("tls: a server certificate from an unknown CA is rejected", "[tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    const auto port = server.listen("127.0.0.1", 0).port();
    h3co::client_tls tls;
    tls.ca_file = test::cert("other-ca.pem");
    const auto ec = connect_error(io, "127.0.0.1", port, tls);
    CHECK(ec == h3co::tls_error::unknown_issuer);
    CHECK(ec.category() == h3co::tls_category());
    CHECK_THAT(ec.message(), Catch::Contains("certificate verification failed"));
}

TEST_CASE("tls: a certificate for another host name is rejected", "[tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io),
                        h3co::server_tls::from_pem_files(test::cert("wronghost.pem"), test::cert("wronghost.key")));
    const auto port = server.listen("127.0.0.1", 0).port();
    CHECK(connect_error(io, "localhost", port, test::trusting_test_ca()) == h3co::tls_error::hostname_mismatch);
    CHECK(connect_error(io, "127.0.0.1", port, test::trusting_test_ca()) == h3co::tls_error::ip_address_mismatch);
}

TEST_CASE("tls: the right CA and name connect, by name and by IP literal", "[tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    const auto port = server.listen("::", 0).port();
    CHECK_FALSE(connect_error(io, "localhost", port, test::trusting_test_ca()));
    CHECK_FALSE(connect_error(io, "127.0.0.1", port, test::trusting_test_ca()));
    CHECK_FALSE(connect_error(io, "::1", port, test::trusting_test_ca()));
    // Skipping verification exists, loudly named, and accepts even the wrong CA.
    CHECK_FALSE(connect_error(io, "127.0.0.1", port, h3co::client_tls::insecure_no_certificate_verification()));
}

TEST_CASE("tls: nobody listening is refused quickly, not a hang", "[tls]") {
    asio::io_context io;
    std::uint16_t port = 0;
    {
        asio::ip::udp::socket probe(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = probe.local_endpoint().port();
    }
    const auto started = std::chrono::steady_clock::now();
    const auto ec = connect_error(io, "127.0.0.1", port, test::trusting_test_ca());
    CHECK(ec == asio::error::connection_refused);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
}

TEST_CASE("tls: a bad CA file is a configuration error thrown at the call", "[tls]") {
    asio::io_context io;
    h3co::client_tls tls;
    tls.ca_file = "/nonexistent/ca.pem";
    CHECK_THROWS_AS(h3co::client(test::executor(io), tls), std::runtime_error);
    CHECK_THROWS_AS(h3co::server(test::executor(io), h3co::server_tls::from_pem_files("/nonexistent.pem", "/nonexistent.key")),
                    std::runtime_error);
}

TEST_CASE("tls: a QUIC server that does not speak HTTP/3 is an ALPN mismatch", "[tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    // Make the server a QUIC server for "hq-interop" only, as if it spoke another application protocol.
    SSL_CTX_set_alpn_select_cb(
        server.native_tls_handle(),
        [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen, void*) {
            static constexpr unsigned char hq[] = {10, 'h', 'q', '-', 'i', 'n', 't', 'e', 'r', 'o', 'p'};
            unsigned char* selected = nullptr;
            if (SSL_select_next_proto(&selected, outlen, hq, sizeof hq, in, inlen) != OPENSSL_NPN_NEGOTIATED)
                return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
            *out = selected;
            return SSL_TLSEXT_ERR_OK;
        },
        nullptr);
    const auto port = server.listen("127.0.0.1", 0).port();
    const auto ec = connect_error(io, "127.0.0.1", port, test::trusting_test_ca());
    CHECK(ec == h3co::error::alpn_mismatch);
    CHECK_THAT(ec.message(), Catch::Contains("ALPN"));
}

}  // namespace tls_test
