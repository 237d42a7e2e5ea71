// ECN (RFC 9000 §13.4): with connection_options::ecn, packets leave with the ECN codepoint ngtcp2
// asks for and received marks reach ngtcp2. A relay between client and server reads each
// datagram's mark (IP_RECVTOS) and forwards it with the same mark, counting what it saw.
#include "support/test_support.hpp"

#include <h3co/detail/io/udp_receive.hpp>
#include <h3co/detail/io/udp_send.hpp>

#include <asio/experimental/as_tuple.hpp>

#include <array>
#include <map>
#include <optional>

using namespace std::chrono_literals;

namespace ecn_test {

/// Forwards datagrams between one client and the server on 127.0.0.1, keeping their ECN marks,
/// and counts the datagrams of each mark per direction.
class ecn_relay {
public:
    using counts = std::map<int, int>;  ///< ECN codepoint -> datagrams

    ecn_relay(asio::io_context& io, std::uint16_t server_port)
        : client_side_(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          server_side_(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          server_(asio::ip::make_address("127.0.0.1"), server_port) {
        for (auto* s : {&client_side_, &server_side_}) {
            s->non_blocking(true);
            REQUIRE(h3co::detail::enable_ecn_receive(s->native_handle(), false));
        }
        pump(client_side_, true);
        pump(server_side_, false);
    }

    std::uint16_t port() const { return client_side_.local_endpoint().port(); }
    counts to_server, to_client;

private:
    void pump(asio::ip::udp::socket& in, bool upstream) {
        in.async_wait(asio::socket_base::wait_read, [this, &in, upstream](std::error_code ec) {
            if (ec) return;
            for (;;) {
                asio::ip::udp::endpoint from;
                socklen_t from_len = static_cast<socklen_t>(from.capacity());
                const auto got = h3co::detail::receive_datagrams(in.native_handle(), buffer_.data(), buffer_.size(),
                                                                 from.data(), from_len, ec);
                if (ec) break;
                from.resize(from_len);
                if (upstream) client_ = from;
                if (!upstream && !client_) continue;
                ++(upstream ? to_server : to_client)[got.ecn];
                auto& out = upstream ? server_side_ : client_side_;
                const auto to = upstream ? server_ : *client_;
                h3co::detail::send_segments(out.native_handle(), to.data(), static_cast<socklen_t>(to.size()), to.data(),
                                            buffer_.data(), got.len, got.len, got.ecn, features_);
            }
            pump(in, upstream);
        });
    }

    asio::ip::udp::socket client_side_, server_side_;
    asio::ip::udp::endpoint server_;
    std::optional<asio::ip::udp::endpoint> client_;
    std::array<std::uint8_t, 65536> buffer_;
    h3co::detail::send_features features_{false, true};
};

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
    ecn_relay relay(io, srv.port);
    upload_through(io, relay, options, 2 * 1024 * 1024);
    CAPTURE(relay.to_server, relay.to_client);
    // ngtcp2 marks with ECT(0) while it validates the path and keeps doing so once the peer's ACKs
    // have echoed the marks; had validation failed, the marks would stop early.
    CHECK(relay.to_server[ect0] > 1000);
    CHECK(relay.to_client[ect0] > 0);
    CHECK(relay.to_server[ect0] > 10 * relay.to_server[not_ect]);
}

TEST_CASE("ecn: switched off, no packet is marked", "[ecn]") {
    asio::io_context io;
    h3co::connection_options options;
    options.ecn = false;
    sink_server srv(io, options);
    ecn_relay relay(io, srv.port);
    upload_through(io, relay, options, 256 * 1024);
    CAPTURE(relay.to_server, relay.to_client);
    CHECK(relay.to_server[not_ect] > 100);
    CHECK(relay.to_server.count(ect0) == 0);
    CHECK(relay.to_client.count(ect0) == 0);
}

}  // namespace ecn_test
