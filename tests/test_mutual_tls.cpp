// Mutual TLS: the server asks for a client certificate (optional or required), verifies it against
// its client CA, and a handler reads the subject and SANs; a refused client gets a named error on
// both sides.
#include "support/test_support.hpp"

namespace mutual_tls_test {

/// What one client saw: the first error, or the status and body of GET `path`.
struct outcome {
    std::error_code ec;
    int status = 0;
    std::string body;
    std::string server_subject;  ///< the certificate the client saw
};

asio::awaitable<outcome> fetch(std::uint16_t port, h3co::client_tls tls, std::string path) {
    outcome out;
    try {
        const auto ex = co_await asio::this_coro::executor;
        const std::string host = "127.0.0.1";
        auto conn = co_await h3co::connect(ex, host, port, tls);
        out.server_subject = conn.peer_certificate().subject;
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

/// Answers with the client certificate's subject, then its SANs, one per line ("none" if none).
asio::awaitable<void> who(h3co::server_request& req, h3co::response& res) {
    const auto cert = req.peer_certificate();
    std::string text = cert.empty() ? "none" : cert.subject;
    for (const auto& san : cert.subject_alt_names) text += "\n" + san;
    co_await res.send_header(200);
    co_await res.write(asio::buffer(text));
}

h3co::server_tls with_client_auth(h3co::client_certificates mode) {
    auto tls = test::server_identity();
    tls.client_auth = mode;
    tls.client_ca_file = test::cert("ca.pem");
    return tls;
}

h3co::client_tls client_with(const std::string& name) {
    auto tls = test::trusting_test_ca();
    tls.certificate_chain_file = test::cert(name + ".pem");
    tls.private_key_file = test::cert(name + ".key");
    return tls;
}

std::uint64_t refused(asio::io_context& io, h3co::server& server) {
    // The server's side of the refusal ends with its CONNECTION_CLOSE: let it run until counted.
    for (int i = 0; i < 40 && server.stats().client_certificates_refused == 0; ++i) test::settle(io, std::chrono::milliseconds(25));
    return server.stats().client_certificates_refused;
}

TEST_CASE("mutual tls: required and a valid client certificate - the handler sees its subject and SANs",
          "[mutual-tls][tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), with_client_auth(h3co::client_certificates::required));
    server.handle("/who", who);
    const auto port = server.listen("127.0.0.1", 0).port();
    const auto got = test::run(io, fetch(port, client_with("client"), "/who"));
    REQUIRE_FALSE(got.ec);
    CHECK(got.status == 200);
    CHECK(got.body == "CN=h3co test client,O=h3co tests\nDNS:client.h3co.test\nURI:spiffe://h3co.test/client");
    CHECK(got.server_subject == "CN=localhost");
    CHECK(server.stats().client_certificates_refused == 0);
}

TEST_CASE("mutual tls: required and no client certificate - client_certificate_required on both sides",
          "[mutual-tls][tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), with_client_auth(h3co::client_certificates::required));
    bool served = false;
    server.handle("/who", [&](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        served = true;
        co_await res.send_header(200);
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    const auto got = test::run(io, fetch(port, test::trusting_test_ca(), "/who"));
    CHECK(got.ec == h3co::error::client_certificate_required);
    CHECK_THAT(got.ec.message(), Catch::Contains("requires a client certificate"));
    CHECK(refused(io, server) == 1);
    CHECK_FALSE(served);
}

TEST_CASE("mutual tls: required and a certificate from another CA - client_certificate_rejected, counted on the server",
          "[mutual-tls][tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), with_client_auth(h3co::client_certificates::required));
    bool served = false;
    server.handle("/who", [&](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        served = true;
        co_await res.send_header(200);
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    const auto got = test::run(io, fetch(port, client_with("other-client"), "/who"));
    CHECK(got.ec == h3co::error::client_certificate_rejected);
    CHECK_THAT(got.ec.message(), Catch::Contains("refused the client certificate"));
    CHECK(refused(io, server) == 1);
    CHECK_FALSE(served);
}

TEST_CASE("mutual tls: optional - a client without a certificate is served and peer_certificate is empty",
          "[mutual-tls][tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), with_client_auth(h3co::client_certificates::optional));
    server.handle("/who", who);
    const auto port = server.listen("127.0.0.1", 0).port();
    const auto anonymous = test::run(io, fetch(port, test::trusting_test_ca(), "/who"));
    REQUIRE_FALSE(anonymous.ec);
    CHECK(anonymous.status == 200);
    CHECK(anonymous.body == "none");
    // The same server still verifies and reports a certificate when one comes.
    const auto known = test::run(io, fetch(port, client_with("client"), "/who"));
    REQUIRE_FALSE(known.ec);
    CHECK(known.body.starts_with("CN=h3co test client,O=h3co tests\n"));
    // And refuses one that does not verify.
    const auto stranger = test::run(io, fetch(port, client_with("other-client"), "/who"));
    CHECK(stranger.ec == h3co::error::client_certificate_rejected);
}

TEST_CASE("mutual tls: without client_auth the server asks for nothing and a client certificate is not seen",
          "[mutual-tls][tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/who", who);
    const auto port = server.listen("127.0.0.1", 0).port();
    const auto got = test::run(io, fetch(port, client_with("client"), "/who"));
    REQUIRE_FALSE(got.ec);
    CHECK(got.body == "none");
}

TEST_CASE("mutual tls: client_auth without a client CA is a configuration error", "[mutual-tls][tls]") {
    asio::io_context io;
    auto tls = test::server_identity();
    tls.client_auth = h3co::client_certificates::required;
    CHECK_THROWS_WITH(h3co::server(test::executor(io), tls), Catch::Contains("client CA"));
}

}  // namespace mutual_tls_test
