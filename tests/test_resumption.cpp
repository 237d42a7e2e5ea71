// Session resumption: a client keeps the server's TLS session tickets in a session_cache, per
// authority, and a later connection resumes with one (connection_stats::resumed); servers sharing
// server_options::secret open each other's tickets; a cache survives export and import; a damaged
// ticket, a server with another secret, or a ticket filed under another name means a full
// handshake that still verifies the certificate.
#include "support/test_support.hpp"

#include <h3co/session_cache.hpp>

using namespace std::chrono_literals;

namespace resumption_test {

asio::awaitable<std::string> get_body(h3co::connection& conn) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "GET", .url = "/hello"};
    co_await stream.send_header(req);
    co_await stream.finish();
    auto head = co_await stream.read_response();
    std::string body = co_await test::read_all(stream);
    co_return std::to_string(head.status) + " " + body;
}

struct outcome {
    std::error_code ec;
    bool resumed = false;
    std::string body;        ///< "200 hi" when a request went through
    std::string subject;     ///< the server certificate's subject, as the client sees it
};

/// Connects to `host`:`port` with `cache`, makes one request, closes; what happened.
asio::awaitable<outcome> visit(std::string host, std::uint16_t port, std::shared_ptr<h3co::session_cache> cache,
                               h3co::client_tls tls) {
    const auto ex = co_await asio::this_coro::executor;
    h3co::connection_options options;
    options.session_cache = std::move(cache);
    outcome out;
    auto [ec, conn] = co_await h3co::connect(ex, host, port, tls, options, tuple);
    out.ec = ec;
    if (ec) co_return out;
    out.body = co_await get_body(conn);
    out.resumed = conn.stats().resumed;
    out.subject = conn.peer_certificate().subject;
    conn.close();
    co_return out;
}

asio::awaitable<outcome> visit(std::string host, std::uint16_t port, std::shared_ptr<h3co::session_cache> cache) {
    const auto tls = test::trusting_test_ca();
    auto out = co_await visit(std::move(host), port, std::move(cache), tls);
    co_return out;
}

/// A server on 127.0.0.1 that answers /hello with "hi"; `secret` as server_options::secret.
struct hello_server {
    hello_server(asio::io_context& io, const std::string& secret) : server(test::executor(io), test::server_identity(), {}, limits(secret)) {
        server.handle("/hello", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
            co_await res.send_header(200);
            co_await res.write(asio::buffer(std::string("hi")));
        });
        port = server.listen("127.0.0.1", 0).port();
    }
    static h3co::server_options limits(const std::string& secret) {
        h3co::server_options o;
        o.secret = secret;
        return o;
    }
    h3co::server server;
    std::uint16_t port = 0;
};

const std::string secret_a(32, 'a');
const std::string secret_b(32, 'b');

std::string authority(const std::string& name, std::uint16_t port) { return name + ":" + std::to_string(port); }

/// Moves every ticket filed under `from` to `to` (as a load balancer in front of several servers
/// would see it: one authority, several servers).
void refile(h3co::session_cache& cache, const std::string& from, const std::string& to) {
    std::vector<h3co::session_cache::ticket> tickets;
    while (auto t = cache.take(from)) tickets.push_back(std::move(*t));
    for (auto it = tickets.rbegin(); it != tickets.rend(); ++it) cache.store(to, std::move(*it));
}

TEST_CASE("resumption: the second connection to a server resumes, the first does a full handshake", "[resumption]") {
    asio::io_context io;
    hello_server srv(io, secret_a);
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto first = co_await visit("localhost", srv.port, cache);
        REQUIRE_FALSE(first.ec);
        CHECK(first.body == "200 hi");
        CHECK_FALSE(first.resumed);
        CHECK(cache->size() > 0);  // the server's tickets, kept under "localhost:port"
        CHECK(cache->authorities() == 1);

        const auto second = co_await visit("localhost", srv.port, cache);
        REQUIRE_FALSE(second.ec);
        CHECK(second.body == "200 hi");
        CHECK(second.resumed);
        CHECK(second.subject == "CN=localhost");  // the certificate verified when the ticket came
    }());
}

TEST_CASE("resumption: basic_client keeps one ticket cache for its connections by default", "[resumption]") {
    asio::io_context io;
    hello_server srv(io, secret_a);
    h3co::client client(test::executor(io), test::trusting_test_ca());
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto url = test::url(srv.port, "/hello");
        auto first = co_await client.connection_for(url);
        const std::string body = co_await get_body(first);
        CHECK(body == "200 hi");
        CHECK_FALSE(first.stats().resumed);
        client.close();  // the next connection_for connects anew
        auto second = co_await client.connection_for(url);
        const std::string again = co_await get_body(second);
        CHECK(again == "200 hi");
        CHECK(second.stats().resumed);
        client.close();
    }());
}

TEST_CASE("resumption: a server with the same secret opens another server's tickets", "[resumption]") {
    asio::io_context io;
    hello_server one(io, secret_a);
    hello_server two(io, secret_a);
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto first = co_await visit("localhost", one.port, cache);
        REQUIRE_FALSE(first.ec);
        CHECK_FALSE(first.resumed);
        refile(*cache, authority("localhost", one.port), authority("localhost", two.port));
        const auto second = co_await visit("localhost", two.port, cache);
        REQUIRE_FALSE(second.ec);
        CHECK(second.body == "200 hi");
        CHECK(second.resumed);
    }());
}

TEST_CASE("resumption: a server with another secret makes a full handshake and the connection works", "[resumption]") {
    asio::io_context io;
    hello_server one(io, secret_a);
    hello_server other(io, secret_b);
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto first = co_await visit("localhost", one.port, cache);
        REQUIRE_FALSE(first.ec);
        refile(*cache, authority("localhost", one.port), authority("localhost", other.port));
        REQUIRE(cache->size() > 0);
        const auto second = co_await visit("localhost", other.port, cache);
        REQUIRE_FALSE(second.ec);
        CHECK(second.body == "200 hi");
        CHECK_FALSE(second.resumed);
        CHECK(second.subject == "CN=localhost");
        // The full handshake brought tickets of the other server: the next visit resumes.
        const auto third = co_await visit("localhost", other.port, cache);
        REQUIRE_FALSE(third.ec);
        CHECK(third.resumed);
    }());
}

TEST_CASE("resumption: tickets issued before reload_tls still resume after it", "[resumption]") {
    asio::io_context io;
    hello_server srv(io, secret_a);
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto first = co_await visit("localhost", srv.port, cache);
        REQUIRE_FALSE(first.ec);
        srv.server.reload_tls(h3co::server_tls::from_pem_files(test::cert("renewed.pem"), test::cert("renewed.key")));
        const auto resumed = co_await visit("localhost", srv.port, cache);
        REQUIRE_FALSE(resumed.ec);
        CHECK(resumed.resumed);
        CHECK(resumed.subject == "CN=localhost");  // the certificate of the ticket's handshake
        // A client without tickets meets the renewed certificate.
        const auto fresh = co_await visit("localhost", srv.port, std::make_shared<h3co::session_cache>());
        REQUIRE_FALSE(fresh.ec);
        CHECK_FALSE(fresh.resumed);
        CHECK(fresh.subject == "CN=localhost,O=h3co renewed");
    }());
}

TEST_CASE("resumption: a cache exported to bytes and imported into a new cache resumes", "[resumption]") {
    asio::io_context io;
    hello_server srv(io, secret_a);
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto first = co_await visit("localhost", srv.port, cache);
        REQUIRE_FALSE(first.ec);
        const auto bytes = cache->export_bytes();
        auto restored = std::make_shared<h3co::session_cache>();
        const auto ec = restored->import_bytes(bytes);
        CHECK_FALSE(ec);
        CHECK(restored->size() == cache->size());
        CHECK(restored->export_bytes() == bytes);
        const auto second = co_await visit("localhost", srv.port, restored);
        REQUIRE_FALSE(second.ec);
        CHECK(second.body == "200 hi");
        CHECK(second.resumed);
    }());
}

TEST_CASE("resumption: damaged imported tickets are ignored, a full handshake follows", "[resumption]") {
    asio::io_context io;
    hello_server srv(io, secret_a);
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto first = co_await visit("localhost", srv.port, cache);
        REQUIRE_FALSE(first.ec);
        const std::string name = authority("localhost", srv.port);
        // Every ticket's session bytes overwritten with garbage of the same length: the file still
        // parses, the tickets do not.
        auto damaged = std::make_shared<h3co::session_cache>();
        std::size_t count = 0;
        while (auto t = cache->take(name)) {
            CHECK_FALSE(t->transport_parameters.empty());  // kept with the ticket, for 0-RTT
            for (std::size_t i = 0; i < t->session.size(); ++i) t->session[i] = static_cast<std::uint8_t>(i * 7 + 1);
            damaged->store(name, std::move(*t));
            ++count;
        }
        REQUIRE(count > 0);
        auto imported = std::make_shared<h3co::session_cache>();
        const auto bytes = damaged->export_bytes();
        const auto ec = imported->import_bytes(bytes);
        CHECK_FALSE(ec);
        REQUIRE(imported->size() == count);
        const auto second = co_await visit("localhost", srv.port, imported);
        REQUIRE_FALSE(second.ec);
        CHECK(second.body == "200 hi");
        CHECK_FALSE(second.resumed);
        CHECK(imported->size() > 0);  // the damaged ones dropped, the new connection's tickets kept

        // Bytes that are not an export at all, or one cut short: a named error, no crash.
        h3co::session_cache other;
        const std::vector<std::uint8_t> junk{1, 2, 3};
        CHECK(other.import_bytes(junk) == h3co::error::session_cache_malformed);
        const auto good = imported->export_bytes();
        const std::vector<std::uint8_t> cut(good.begin(), good.end() - 3);
        CHECK(other.import_bytes(cut) == h3co::error::session_cache_malformed);
    }());
}

TEST_CASE("resumption: a ticket for one name is not used for another, and the certificate is verified",
          "[resumption]") {
    asio::io_context io;
    hello_server srv(io, secret_a);
    auto cache = std::make_shared<h3co::session_cache>();
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto first = co_await visit("localhost", srv.port, cache);
        REQUIRE_FALSE(first.ec);
        const auto held = cache->size();
        REQUIRE(held > 0);

        // Same server, another name that its certificate also covers: no ticket for it, full handshake.
        const auto by_ip = co_await visit("127.0.0.1", srv.port, cache);
        REQUIRE_FALSE(by_ip.ec);
        CHECK_FALSE(by_ip.resumed);

        // A ticket filed under a name the certificate does not cover (a tampered cache file) is
        // not offered: the full handshake verifies the name and fails.
        refile(*cache, authority("localhost", srv.port), authority("not-localhost.invalid", srv.port));
        auto tls = test::trusting_test_ca();
        tls.server_name = "not-localhost.invalid";
        const auto wrong = co_await visit("127.0.0.1", srv.port, cache, tls);
        CHECK(wrong.ec);
        CHECK_FALSE(wrong.resumed);
    }());
}

TEST_CASE("resumption: the cache keeps a bounded number of authorities and tickets", "[resumption]") {
    h3co::session_cache cache(2);
    const auto ticket = [](std::uint8_t b) { return h3co::session_cache::ticket{{b}, {}}; };
    for (std::uint8_t i = 0; i < 10; ++i) cache.store("a:1", ticket(i));
    CHECK(cache.size() == h3co::session_cache::tickets_per_authority);
    cache.store("b:1", ticket(20));
    cache.store("c:1", ticket(30));  // "a:1" was stored to least recently: dropped
    CHECK(cache.authorities() == 2);
    CHECK_FALSE(cache.take("a:1"));
    const auto newest = cache.take("c:1");
    REQUIRE(newest);
    CHECK(newest->session == std::vector<std::uint8_t>{30});
    CHECK_FALSE(cache.take("c:1"));  // single use
}

}  // namespace resumption_test
