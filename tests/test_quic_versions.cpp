// QUIC versions: version 2 (RFC 9369) chosen by compatible version negotiation (RFC 9368) when
// both sides prefer it (connection_options::quic_versions), version 1 otherwise; and a clear
// error on ngtcp2 0.12, which knows only a draft of version 2.
#include "support/peer_inputs.hpp"
#include "support/test_support.hpp"

using namespace std::chrono_literals;

namespace quic_versions_test {

constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::uint32_t v1 = 0x00000001;
constexpr std::uint32_t v2 = 0x6b3343cf;
constexpr bool stack_has_v2 = std::string_view(H3CO_TEST_STACK) != "0.12";

/// What one GET over a fresh connection saw, on both ends.
struct outcome {
    std::error_code connect_error;
    int status = 0;
    bool body_exact = false;
    std::uint32_t client_version = 0;
    std::uint32_t server_version = 0;  ///< as the handler saw its connection
};

outcome get_once(h3co::quic_versions client_side, h3co::quic_versions server_side) {
    asio::io_context io;
    h3co::connection_options server_options;
    server_options.quic_versions = server_side;
    h3co::server server(test::executor(io), test::server_identity(), server_options);
    const auto body = test::pseudo_random_bytes(200000, 99);
    outcome out;
    server.handle("/v", [&](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        out.server_version = req.connection_stats().quic_version;
        co_await res.send_header(200);
        co_await res.write(asio::buffer(body));
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        h3co::connection_options options;
        options.quic_versions = client_side;
        const std::string host = "127.0.0.1";
        const auto tls = test::trusting_test_ca();
        auto [ec, conn] = co_await h3co::connect(ex, host, port, tls, options, as_tuple);
        out.connect_error = ec;
        if (ec) co_return;
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = test::url(port, "/v", "127.0.0.1")};
        co_await stream.send_header(req);
        co_await stream.finish();
        const auto head = co_await stream.read_response();
        out.status = head.status;
        const auto got = co_await test::read_all(stream);
        out.body_exact = got == body;
        out.client_version = conn.stats().quic_version;
        conn.close();
    }(), 20s);
    server.close();
    test::settle(io);
    return out;
}

TEST_CASE("quic versions: by default both sides speak version 1", "[quic-versions]") {
    const auto out = get_once(h3co::quic_versions::v1_only, h3co::quic_versions::v1_only);
    REQUIRE_FALSE(out.connect_error);
    CHECK(out.status == 200);
    CHECK(out.body_exact);
    CHECK(out.client_version == v1);
    CHECK(out.server_version == v1);
}

TEST_CASE("quic versions: a client and a server that both prefer version 2 switch to it during the handshake",
          "[quic-versions]") {
    if (!stack_has_v2) {
        // ngtcp2 0.12: a clear error on both sides, never a silent version 1.
        const auto out = get_once(h3co::quic_versions::prefer_v2, h3co::quic_versions::v1_only);
        CHECK(out.connect_error == h3co::error::not_supported);
        return;
    }
    const auto out = get_once(h3co::quic_versions::prefer_v2, h3co::quic_versions::prefer_v2);
    REQUIRE_FALSE(out.connect_error);
    CHECK(out.status == 200);
    CHECK(out.body_exact);
    CHECK(out.client_version == v2);
    CHECK(out.server_version == v2);
}

TEST_CASE("quic versions: version 2 offered to a server that keeps version 1, or not offered to one that prefers it (0.12: the server refuses the option)",
          "[quic-versions]") {
    if (!stack_has_v2) {
        asio::io_context io;
        h3co::connection_options options;
        options.quic_versions = h3co::quic_versions::prefer_v2;
        try {
            h3co::server server(test::executor(io), test::server_identity(), options);
            FAIL("a server preferring version 2 was constructed on ngtcp2 0.12");
        } catch (const std::system_error& e) {
            CHECK(e.code() == h3co::error::not_supported);
        }
        return;
    }
    const auto offered = get_once(h3co::quic_versions::prefer_v2, h3co::quic_versions::v1_only);
    REQUIRE_FALSE(offered.connect_error);
    CHECK(offered.body_exact);
    CHECK(offered.client_version == v1);
    CHECK(offered.server_version == v1);
    const auto not_offered = get_once(h3co::quic_versions::v1_only, h3co::quic_versions::prefer_v2);
    REQUIRE_FALSE(not_offered.connect_error);
    CHECK(not_offered.body_exact);
    CHECK(not_offered.client_version == v1);
    CHECK(not_offered.server_version == v1);
}

}  // namespace quic_versions_test

namespace quic_versions_test {

/// A version 2 long-header packet of 1200 bytes (an Initial's size) with fresh connection IDs.
std::vector<std::uint8_t> v2_initial() {
    std::vector<std::uint8_t> d(1200, 0);
    d[0] = 0xd0;  // long header, fixed bit; type 0b01 is Initial in version 2 (RFC 9369 §3.2)
    d[1] = 0x6b, d[2] = 0x33, d[3] = 0x43, d[4] = 0xcf;
    d[5] = 8;
    for (int i = 0; i < 8; ++i) d[6 + i] = static_cast<std::uint8_t>(0xa0 + i);  // DCID
    d[14] = 8;
    for (int i = 0; i < 8; ++i) d[15 + i] = static_cast<std::uint8_t>(0xb0 + i);  // SCID
    return d;
}

/// The versions a Version Negotiation packet lists (RFC 9000 §17.2.1), empty if it is none.
std::vector<std::uint32_t> listed_versions(const std::vector<std::uint8_t>& p) {
    std::vector<std::uint32_t> out;
    if (p.size() < 7 || (p[0] & 0x80) == 0 || p[1] | p[2] | p[3] | p[4]) return out;
    std::size_t at = 5;
    at += 1 + p[at];  // DCID
    if (at >= p.size()) return out;
    at += 1 + p[at];  // SCID
    for (; at + 4 <= p.size(); at += 4)
        out.push_back(std::uint32_t(p[at]) << 24 | std::uint32_t(p[at + 1]) << 16 | std::uint32_t(p[at + 2]) << 8 | p[at + 3]);
    return out;
}

std::vector<std::uint32_t> answer_to_v2_initial(h3co::quic_versions server_side) {
    asio::io_context io;
    h3co::connection_options options;
    options.quic_versions = server_side;
    h3co::server server(test::executor(io), test::server_identity(), options);
    const auto port = server.listen("127.0.0.1", 0).port();
    std::vector<std::uint8_t> reply(2048);
    std::size_t got = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        asio::ip::udp::socket s(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        const asio::ip::udp::endpoint to(asio::ip::make_address("127.0.0.1"), port);
        const auto initial = v2_initial();
        co_await s.async_send_to(asio::buffer(initial), to, asio::use_awaitable);
        got = co_await s.async_receive(asio::buffer(reply), asio::use_awaitable);
    }(), 10s);
    reply.resize(got);
    CHECK(server.stats().version_negotiations_sent == 1);
    server.close();
    return listed_versions(reply);
}

TEST_CASE("quic versions: a version 2 Initial to a server without it gets a Version Negotiation listing version 1",
          "[quic-versions]") {
    const auto listed = answer_to_v2_initial(h3co::quic_versions::v1_only);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0] == v1);
}

}  // namespace quic_versions_test
