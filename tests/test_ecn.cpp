// ECN (RFC 9000 §13.4): with connection_options::ecn, packets leave with the ECN codepoint ngtcp2
// asks for and received marks reach ngtcp2. A relay between client and server
// (tests/support/ecn_relay.hpp) reads each datagram's mark (IP_RECVTOS) and forwards it with the
// same mark, counting what it saw.
#include "support/ecn_relay.hpp"
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <array>
#include <map>
#include <optional>

using namespace std::chrono_literals;

namespace ecn_test {

using test::ecn_relay;

/// Uploads `bytes` through the relay and returns once the server has read them all.
void upload_through(asio::io_context& io, ecn_relay& relay, const h3co::connection_options& options, std::size_t bytes) {
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), relay.port(),
                                           test::trusting_test_ca(), options);
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = "/sink"};
        co_await stream.send_header(req);
        const std::string chunk(64 * 1024, 'e');
        for (std::size_t sent = 0; sent < bytes; sent += chunk.size()) co_await stream.write(asio::buffer(chunk));
        co_await stream.finish();
        const auto head = co_await stream.read_response();
        CHECK(head.status == 200);
    }());
}

struct sink_server {
    h3co::server server;
    std::uint16_t port;
    sink_server(asio::io_context& io, const h3co::connection_options& options)
        : server(test::executor(io), test::server_identity(), options) {
        server.handle("/sink", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            std::array<char, 16384> buf;
            for (;;) {
                auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
                if (ec) break;
            }
            co_await res.send_header(200);
        });
        port = server.listen("127.0.0.1", 0).port();
    }
};

constexpr int not_ect = 0, ect0 = 2;


TEST_CASE("ecn: packets carry ECT(0) both ways, and the marks survive a whole upload", "[ecn]") {
    asio::io_context io;
    const h3co::connection_options options;  // ecn is on by default
    sink_server srv(io, options);
    ecn_relay relay(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), srv.port));
    upload_through(io, relay, options, 2 * 1024 * 1024);
    INFO("to the server: " << relay.to_server.describe() << "\nto the client: " << relay.to_client.describe());
    // ngtcp2 marks with ECT(0) while it validates the path and keeps doing so once the peer's ACKs
    // have echoed the marks; had validation failed, the marks would stop early.
    CHECK(relay.to_server.all[ect0] > 1000);
    CHECK(relay.to_client.all[ect0] > 0);
    CHECK(relay.to_server.all[ect0] > 10 * relay.to_server.all[not_ect]);
}

TEST_CASE("ecn: switched off, no packet is marked", "[ecn]") {
    asio::io_context io;
    h3co::connection_options options;
    options.ecn = false;
    sink_server srv(io, options);
    ecn_relay relay(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), srv.port));
    upload_through(io, relay, options, 256 * 1024);
    INFO("to the server: " << relay.to_server.describe() << "\nto the client: " << relay.to_client.describe());
    CHECK(relay.to_server.all[not_ect] > 100);
    CHECK(relay.to_server.all.count(ect0) == 0);
    CHECK(relay.to_client.all.count(ect0) == 0);
}

}  // namespace ecn_test
