// Hot reload of a server's certificate (server.reload_tls): new connections get the new identity,
// live ones keep theirs and keep working; a reload that cannot load leaves the old identity.
#include "support/test_support.hpp"

#include <thread>

using namespace std::chrono_literals;

namespace tls_reload_test {

asio::awaitable<std::string> get_body(h3co::connection& conn, std::string path) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "GET", .url = path};
    co_await stream.send_header(req);
    co_await stream.finish();
    auto head = co_await stream.read_response();
    std::string body = co_await test::read_all(stream);
    co_return std::to_string(head.status) + " " + body;
}

asio::awaitable<h3co::connection> connect_localhost(std::uint16_t port) {
    const auto ex = co_await asio::this_coro::executor;
    const std::string host = "localhost";
    const auto tls = test::trusting_test_ca();
    auto conn = co_await h3co::connect(ex, host, port, tls);
    co_return conn;
}

h3co::server_tls renewed() { return h3co::server_tls::from_pem_files(test::cert("renewed.pem"), test::cert("renewed.key")); }

TEST_CASE("tls reload: new connections see the new certificate, a connection made before keeps working on the old",
          "[tls-reload][tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/hello", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        co_await res.write(asio::buffer(std::string("hi")));
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto before = co_await connect_localhost(port);
        CHECK(before.peer_certificate().subject == "CN=localhost");
        const std::string first = co_await get_body(before, "/hello");
        CHECK(first == "200 hi");

        server.reload_tls(renewed());  // on the server's executor: swapped at once

        auto after = co_await connect_localhost(port);
        CHECK(after.peer_certificate().subject == "CN=localhost,O=h3co renewed");
        const std::string on_new = co_await get_body(after, "/hello");
        CHECK(on_new == "200 hi");

        // The live connection is untouched: still open, still the old certificate, still serving.
        CHECK(before.is_open());
        CHECK(before.peer_certificate().subject == "CN=localhost");
        const std::string on_old = co_await get_body(before, "/hello");
        CHECK(on_old == "200 hi");
        before.close();
        after.close();
    }());
}

TEST_CASE("tls reload: a reload that cannot load throws and leaves the old identity serving", "[tls-reload][tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/hello", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    CHECK_THROWS_WITH(server.reload_tls(h3co::server_tls::from_pem_files("/nonexistent/renewed.pem", test::cert("renewed.key"))),
                      Catch::Contains("/nonexistent/renewed.pem"));
    // A key that belongs to another certificate: refused too.
    CHECK_THROWS_WITH(server.reload_tls(h3co::server_tls::from_pem_files(test::cert("renewed.pem"), test::cert("server.key"))),
                      Catch::Contains("does not match"));
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_localhost(port);
        CHECK(conn.peer_certificate().subject == "CN=localhost");
        const std::string got = co_await get_body(conn, "/hello");
        CHECK(got == "200 ");
        conn.close();
    }());
}

TEST_CASE("tls reload: reload_tls from another thread is dispatched onto the server's executor and takes effect there",
          "[tls-reload][tls]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    const auto port = server.listen("127.0.0.1", 0).port();
    std::thread reloader([&] { server.reload_tls(renewed()); });  // dispatched onto the server's executor
    reloader.join();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_localhost(port);
        CHECK(conn.peer_certificate().subject == "CN=localhost,O=h3co renewed");
        conn.close();
    }());
}

}  // namespace tls_reload_test
