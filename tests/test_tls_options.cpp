// TLS options for deployments: certificates and keys from PEM text, several certificates chosen by
// SNI, a client verification hook (SPKI pinning), and ChaCha20-Poly1305 only.
#include "support/child_process.hpp"
#include "support/peer_inputs.hpp"
#include "support/test_support.hpp"

#include <openssl/aead.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include <fstream>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;

namespace tls_options_test {

std::string file_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    REQUIRE(in.good());
    return out.str();
}

/// What one client saw: the first error, or the status and body of GET `path`, and the TLS facts.
struct outcome {
    std::error_code ec;
    int status = 0;
    std::string body;
    h3co::certificate_info server_certificate;
    std::string cipher;
};

asio::awaitable<outcome> fetch(std::string host, std::uint16_t port, h3co::client_tls tls, std::string path) {
    outcome out;
    try {
        const auto ex = co_await asio::this_coro::executor;
        h3co::connection_options options;
        options.handshake_timeout = 2000ms;
        auto conn = co_await h3co::connect(ex, host, port, tls, options);
        out.server_certificate = conn.peer_certificate();
        out.cipher = conn.tls_cipher();
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = path};
        co_await stream.send_header(req);
        co_await stream.finish();
        auto head = co_await stream.read_response();
        out.status = head.status;
        std::string body = co_await test::read_all(stream);
        out.body = std::move(body);
        conn.close();
    } catch (const std::system_error& e) {
        out.ec = e.code();
    }
    co_return out;
}

asio::awaitable<void> hello(h3co::server_request& req, h3co::response& res) {
    const auto cert = req.peer_certificate();
    const std::string text = "hello " + (cert.empty() ? std::string("anonymous") : cert.subject);
    co_await res.send_header(200);
    co_await res.write(asio::buffer(text));
}

// ---- PEM text ---------------------------------------------------------------------------------

TEST_CASE("tls options: a server and a client configured only from PEM text handshake with verification on",
          "[tls-options][tls]") {
    asio::io_context io;
    auto server_tls = h3co::server_tls::from_pem(file_text(test::cert("server-chain.pem")), file_text(test::cert("server.key")));
    server_tls.client_auth = h3co::client_certificates::required;
    server_tls.client_ca_pem = file_text(test::cert("ca.pem"));
    h3co::server server(test::executor(io), server_tls);
    server.handle("/hello", hello);
    const auto port = server.listen("127.0.0.1", 0).port();

    h3co::client_tls tls;
    tls.ca_pem = file_text(test::cert("ca.pem"));
    tls.certificate_chain_pem = file_text(test::cert("client.pem"));
    tls.private_key_pem = file_text(test::cert("client.key"));
    const auto got = test::run(io, fetch("localhost", port, tls, "/hello"));
    REQUIRE_FALSE(got.ec);
    CHECK(got.status == 200);
    CHECK(got.body == "hello CN=h3co test client,O=h3co tests");
    CHECK(got.server_certificate.subject == "CN=localhost");

    // Verification is really on: PEM text of another CA refuses the same server (whose chain ends
    // in the test CA, self-signed and not trusted here).
    h3co::client_tls stranger = tls;
    stranger.ca_pem = file_text(test::cert("other-ca.pem"));
    const auto refused = test::run(io, fetch("localhost", port, stranger, "/hello"));
    CHECK(refused.ec == h3co::tls_error::self_signed_certificate_in_chain);
}

TEST_CASE("tls options: malformed PEM is a std::runtime_error that says what failed", "[tls-options][tls]") {
    asio::io_context io;
    const std::string cert = file_text(test::cert("server.pem"));
    const std::string key = file_text(test::cert("server.key"));
    const std::string broken_cert =
        "-----BEGIN CERTIFICATE-----\nthis is not base64 at all!\n-----END CERTIFICATE-----\n";
    CHECK_THROWS_WITH(h3co::server(test::executor(io), h3co::server_tls::from_pem(broken_cert, key)),
                      Catch::Contains("server certificate chain (PEM text)"));
    CHECK_THROWS_WITH(h3co::server(test::executor(io), h3co::server_tls::from_pem("no pem here", key)),
                      Catch::Contains("no PEM certificate"));
    CHECK_THROWS_WITH(h3co::server(test::executor(io), h3co::server_tls::from_pem(cert, "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n")),
                      Catch::Contains("server private key (PEM text)"));
    CHECK_THROWS_WITH(h3co::server(test::executor(io), h3co::server_tls::from_pem(cert, file_text(test::cert("client.key")))),
                      Catch::Contains("does not match"));
    h3co::client_tls client_tls;
    client_tls.ca_pem = "garbage";
    CHECK_THROWS_WITH(h3co::client(test::executor(io), client_tls), Catch::Contains("CA certificates (PEM text)"));
    h3co::client_tls half;
    half.certificate_chain_pem = file_text(test::cert("client.pem"));  // and no key
    CHECK_THROWS_WITH(h3co::client(test::executor(io), half), Catch::Contains("client private key"));
}

// ---- SNI --------------------------------------------------------------------------------------

TEST_CASE("tls options: several certificates chosen by SNI, the first for other names and no SNI",
          "[tls-options][tls][sni]") {
    asio::io_context io;
    auto server_tls = test::server_identity();
    h3co::server_identity a;
    a.names = {"a.h3co.test"};
    a.certificate_chain_file = test::cert("sni-a.pem");
    a.private_key_file = test::cert("sni-a.key");
    h3co::server_identity b;
    b.names = {"B.H3CO.test", "*.b.h3co.test"};  // names compare without case; one wildcard label
    b.certificate_chain_pem = file_text(test::cert("sni-b.pem"));
    b.private_key_pem = file_text(test::cert("sni-b.key"));
    server_tls.additional_identities = {a, b};
    h3co::server server(test::executor(io), server_tls);
    server.handle("/hello", hello);
    const auto port = server.listen("127.0.0.1", 0).port();

    auto as = [](const std::string& name) {
        auto tls = test::trusting_test_ca();
        tls.server_name = name;  // SNI and the name verified; the address stays 127.0.0.1
        return tls;
    };
    const auto got_a = test::run(io, fetch("127.0.0.1", port, as("a.h3co.test"), "/hello"));
    REQUIRE_FALSE(got_a.ec);
    CHECK(got_a.status == 200);
    CHECK(got_a.server_certificate.subject == "CN=a.h3co.test");
    const auto got_b = test::run(io, fetch("127.0.0.1", port, as("b.h3co.test"), "/hello"));
    REQUIRE_FALSE(got_b.ec);
    CHECK(got_b.server_certificate.subject == "CN=b.h3co.test");
    CHECK(got_b.server_certificate.subject_alt_names == std::vector<std::string>{"DNS:b.h3co.test"});
    // A name no identity has, and an IP literal (no SNI), get the first identity.
    const auto got_default = test::run(io, fetch("localhost", port, test::trusting_test_ca(), "/hello"));
    REQUIRE_FALSE(got_default.ec);
    CHECK(got_default.server_certificate.subject == "CN=localhost");
    const auto got_ip = test::run(io, fetch("127.0.0.1", port, test::trusting_test_ca(), "/hello"));
    REQUIRE_FALSE(got_ip.ec);
    CHECK(got_ip.server_certificate.subject == "CN=localhost");
    // A wildcard name picks b's certificate, which then does not verify for that name: proof of
    // the choice, and that verification still runs.
    const auto got_wild = test::run(io, fetch("127.0.0.1", port, as("x.b.h3co.test"), "/hello"));
    CHECK(got_wild.ec == h3co::tls_error::hostname_mismatch);
}

// ---- verify hook ------------------------------------------------------------------------------

/// SHA-256 of the certificate's SubjectPublicKeyInfo (an HPKP-style pin).
std::string spki_sha256(std::span<const std::uint8_t> der) {
    const std::uint8_t* p = der.data();
    bssl::UniquePtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    REQUIRE(cert);
    std::uint8_t* spki = nullptr;
    const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &spki);
    REQUIRE(len > 0);
    std::uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(spki, static_cast<std::size_t>(len), digest);
    OPENSSL_free(spki);
    return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

std::vector<std::uint8_t> der_of_pem_file(const std::string& path) {
    const auto text = file_text(path);
    bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(text.data(), text.size()));
    bssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    REQUIRE(cert);
    std::uint8_t* der = nullptr;
    const int len = i2d_X509(cert.get(), &der);
    std::vector<std::uint8_t> out(der, der + len);
    OPENSSL_free(der);
    return out;
}

TEST_CASE("tls options: a verify hook pins the server's SPKI - a match passes, a mismatch is refused by name",
          "[tls-options][tls][verify-hook]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/hello", hello);
    const auto port = server.listen("127.0.0.1", 0).port();

    const auto server_der = der_of_pem_file(test::cert("server.pem"));
    const auto good_pin = spki_sha256(server_der);
    const auto bad_pin = spki_sha256(der_of_pem_file(test::cert("renewed.pem")));  // another key
    REQUIRE(good_pin != bad_pin);

    int calls = 0;
    std::size_t chain_length = 0;
    bool leaf_matches = false;
    auto pinned = [&](std::string pin) {
        auto tls = test::trusting_test_ca();
        tls.verify_hook = [&, pin](std::span<const std::uint8_t> leaf, const std::vector<std::vector<std::uint8_t>>& chain) {
            ++calls;
            chain_length = chain.size();
            leaf_matches = std::equal(leaf.begin(), leaf.end(), server_der.begin(), server_der.end()) && !chain.empty() &&
                           chain.front() == server_der;
            return spki_sha256(leaf) == pin;
        };
        return tls;
    };
    const auto ok = test::run(io, fetch("localhost", port, pinned(good_pin), "/hello"));
    REQUIRE_FALSE(ok.ec);
    CHECK(ok.status == 200);
    CHECK(calls == 1);
    CHECK(chain_length == 2);  // the leaf and the test CA
    CHECK(leaf_matches);

    const auto refused = test::run(io, fetch("localhost", port, pinned(bad_pin), "/hello"));
    CHECK(refused.ec == h3co::tls_error::rejected_by_verify_hook);
    CHECK_THAT(refused.ec.message(), Catch::Contains("verify_hook"));
    CHECK(calls == 2);

    // The hook runs only after the normal verification passed: a wrong CA fails before it.
    auto wrong_ca = pinned(good_pin);
    wrong_ca.ca_file = test::cert("other-ca.pem");
    const auto untrusted = test::run(io, fetch("localhost", port, wrong_ca, "/hello"));
    CHECK(untrusted.ec == h3co::tls_error::unknown_issuer);
    CHECK(calls == 2);

    // An exception from the hook refuses too, and does not escape.
    auto throwing = test::trusting_test_ca();
    throwing.verify_hook = [](std::span<const std::uint8_t>, const std::vector<std::vector<std::uint8_t>>&) -> bool {
        throw std::runtime_error("policy store down");
    };
    const auto thrown = test::run(io, fetch("localhost", port, throwing, "/hello"));
    CHECK(thrown.ec == h3co::tls_error::rejected_by_verify_hook);
}

// ---- ChaCha20-Poly1305 only -------------------------------------------------------------------

constexpr const char* chacha_only_gnutls = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305";

using test::free_udp_port;

TEST_CASE("tls options: chacha20 only - h3co client against gtlsserver --ciphers negotiates ChaCha20 and transfers a body",
          "[tls-options][tls][chacha20][interop]") {
    if (std::string(H3CO_GTLSSERVER).empty()) {
        WARN("gtlsserver not installed (ngtcp2-server): test skipped");
        return;
    }
    test::temp_dir dir;
    std::filesystem::create_directories(dir.path / "htdocs");
    std::string payload(200000, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>((i * 2654435761u) >> 11);
    {
        std::ofstream out(dir.path / "htdocs" / "file.bin", std::ios::binary);
        out << payload;
    }
    std::unique_ptr<test::child_process> peer;
    std::uint16_t port = 0;
    const auto log = dir.path / "gtlsserver.log";
    for (int attempt = 0; attempt < 5 && !peer; ++attempt) {
        port = free_udp_port();
        const std::vector<std::string> argv{H3CO_GTLSSERVER, "--no-quic-dump", "--no-http-dump", "-q",
                                            std::string("--ciphers=") + chacha_only_gnutls, "-d",
                                            (dir.path / "htdocs").string(), "127.0.0.1", std::to_string(port),
                                            test::cert("server.key"), test::cert("server.pem")};
        auto p = std::make_unique<test::child_process>(argv, log);
        REQUIRE(p->started());
        if (p->wait_for(150ms)) continue;  // exited at once: the port was taken, try another
        peer = std::move(p);
    }
    INFO("gtlsserver log:\n" << test::read_file(log));
    REQUIRE(peer);

    asio::io_context io;
    auto tls = test::trusting_test_ca();
    tls.ciphers = h3co::tls_ciphers::chacha20_poly1305_only;
    outcome got;
    for (int attempt = 0; attempt < 30; ++attempt) {  // gtlsserver needs a moment to start
        got = test::run(io, fetch("127.0.0.1", port, tls, "/file.bin"));
        if (!got.ec) break;
        std::this_thread::sleep_for(100ms);
    }
    REQUIRE_FALSE(got.ec);
    CHECK(got.cipher == "TLS_CHACHA20_POLY1305_SHA256");
    CHECK(got.status == 200);
    CHECK(got.body == payload);
}

TEST_CASE("tls options: chacha20 only - gtlsclient --ciphers gets served by an h3co server that negotiates ChaCha20",
          "[tls-options][tls][chacha20][interop]") {
    if (std::string(H3CO_GTLSCLIENT).empty()) {
        WARN("gtlsclient not installed (ngtcp2-client): test skipped");
        return;
    }
    asio::io_context io;
    auto server_tls = test::server_identity();
    server_tls.ciphers = h3co::tls_ciphers::chacha20_poly1305_only;
    h3co::server server(test::executor(io), server_tls);
    std::string seen_cipher;
    int served = 0;
    server.handle("/cipher", [&](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        ++served;
        seen_cipher = req.tls_cipher();
        co_await res.send_header(200);
        co_await res.write(asio::buffer(seen_cipher));
    });
    const auto port = server.listen("127.0.0.1", 0).port();

    test::temp_dir dir;
    const auto log = dir.path / "gtlsclient.log";
    auto run_client = [&](const std::string& ciphers) {
        const std::vector<std::string> argv{H3CO_GTLSCLIENT, "-q", "--no-quic-dump", "--no-http-dump",
                                            "--exit-on-all-streams-close", "--handshake-timeout=3s", "--timeout=5s",
                                            "--ciphers=" + ciphers, "127.0.0.1", std::to_string(port),
                                            "https://127.0.0.1:" + std::to_string(port) + "/cipher"};
        test::child_process client(argv, log);
        REQUIRE(client.started());
        // The server runs on this thread: drive it until the client exits (bounded).
        const auto deadline = std::chrono::steady_clock::now() + 15s;
        while (!client.wait_for(0ms) && std::chrono::steady_clock::now() < deadline) test::settle(io, 20ms);
        if (!client.wait_for(0ms)) client.kill();
        test::settle(io, 50ms);
    };
    run_client(chacha_only_gnutls);
    INFO("gtlsclient log:\n" << test::read_file(log));
    CHECK(served == 1);
    CHECK(seen_cipher == "TLS_CHACHA20_POLY1305_SHA256");

    // A client that prefers AES-GCM would get AES from BoringSSL: it is refused, not served.
    run_client("NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305");
    CHECK(served == (EVP_has_aes_hardware() ? 1 : 2));
}

TEST_CASE("tls options: chacha20 only between two h3co peers - ChaCha20 or a named refusal, never another suite",
          "[tls-options][tls][chacha20]") {
    asio::io_context io;
    h3co::server plain(test::executor(io), test::server_identity());
    plain.handle("/hello", hello);
    const auto plain_port = plain.listen("127.0.0.1", 0).port();
    auto tls = test::trusting_test_ca();
    tls.ciphers = h3co::tls_ciphers::chacha20_poly1305_only;
    // BoringSSL offers and picks AES-GCM first where the CPU has AES instructions.
    const auto got = test::run(io, fetch("localhost", plain_port, tls, "/hello"));
    if (EVP_has_aes_hardware()) {
        CHECK(got.ec == h3co::error::cipher_not_allowed);
    } else {
        REQUIRE_FALSE(got.ec);
        CHECK(got.cipher == "TLS_CHACHA20_POLY1305_SHA256");
    }
    // Without the option the same client and server agree on a suite, and report it.
    const auto normal = test::run(io, fetch("localhost", plain_port, test::trusting_test_ca(), "/hello"));
    REQUIRE_FALSE(normal.ec);
    CHECK(normal.cipher.starts_with("TLS_"));
}

}  // namespace tls_options_test
