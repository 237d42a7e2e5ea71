// A server facing traffic that correct clients never send (issue 13): address validation with
// Retry and NEW_TOKEN, forged and stale tokens, connection limits, request timeouts against
// slow clients, the handler cap, stateless resets and version negotiation (rate-limited), stream
// credit of requests reset before their HEADERS, and handlers that end at once.
#include "support/child_process.hpp"
#include "support/lossy_relay.hpp"
#include "support/test_support.hpp"

#include <h3co/server_options.hpp>

#include <asio/experimental/as_tuple.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace hostile_test {

/// Runs `io` until `done()` holds or `limit` passes; returns done().
template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        io.restart();
        io.run_for(5ms);
    }
    return true;
}

/// A plain non-blocking UDP socket on a loopback address: datagrams no QUIC stack would send.
class raw_udp {
public:
    explicit raw_udp(const char* address = "127.0.0.1") {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        ::inet_pton(AF_INET, address, &a.sin_addr);
        REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
    }
    ~raw_udp() { ::close(fd_); }
    raw_udp(const raw_udp&) = delete;
    raw_udp& operator=(const raw_udp&) = delete;

    void send_to(std::uint16_t port, const std::vector<std::uint8_t>& bytes) {
        const auto to = server(port);
        REQUIRE(::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
                static_cast<ssize_t>(bytes.size()));
    }
    /// Everything queued now.
    std::vector<std::vector<std::uint8_t>> receive() {
        std::vector<std::vector<std::uint8_t>> out;
        std::array<std::uint8_t, 65536> buf;
        for (;;) {
            const auto n = ::recv(fd_, buf.data(), buf.size(), 0);
            if (n < 0) break;
            out.emplace_back(buf.begin(), buf.begin() + n);
        }
        return out;
    }
    sockaddr_in local() const {
        sockaddr_in a{};
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        return a;
    }
    static sockaddr_in server(std::uint16_t port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        return a;
    }

private:
    int fd_ = -1;
};

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint32_t seed) {
    std::vector<std::uint8_t> out(n);
    for (auto& b : out) b = static_cast<std::uint8_t>((seed = seed * 1103515245u + 12345u) >> 16);
    return out;
}

/// Standard base64 (RFC 4648), ignoring line breaks; empty on anything else.
std::string base64_decode(const std::string& in) {
    static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '\n' || c == '\r') continue;
        if (c == '=') break;
        const auto v = alphabet.find(c);
        if (v == std::string::npos) return {};
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

asio::awaitable<void> answer_200(h3co::server_request&, h3co::response& res) { co_await res.send_header(200); }

/// A connection to 127.0.0.1:`port` with `options` (the test CA verifies the server). No default
/// argument: g++ 12 miscompiles class-type default arguments of coroutines (docs/getting-started.md).
asio::awaitable<std::pair<std::error_code, h3co::connection>> connect_to(std::uint16_t port,
                                                                        h3co::connection_options options) {
    const auto ex = co_await asio::this_coro::executor;
    const std::string host = "127.0.0.1";
    const auto tls = test::trusting_test_ca();
    options.handshake_timeout = 3s;
    auto [ec, conn] = co_await h3co::connect(ex, host, port, tls, options, tuple);
    co_return std::pair(ec, std::move(conn));
}

asio::awaitable<std::pair<std::error_code, h3co::connection>> connect_to(std::uint16_t port) {
    h3co::connection_options options;
    co_return co_await connect_to(port, options);
}

/// GET `path` on `conn`: the status, or the error that ended the request.
asio::awaitable<std::pair<std::error_code, int>> get(h3co::connection& conn, std::uint16_t port, std::string path) {
    auto [open_ec, stream] = co_await conn.open_request_stream(tuple);
    if (open_ec) co_return std::pair(open_ec, 0);
    const h3co::request req{.method = "GET", .url = test::url(port, path, "127.0.0.1")};
    auto [send_ec] = co_await stream.send_header(req, tuple);
    if (send_ec) co_return std::pair(send_ec, 0);
    auto [fin_ec] = co_await stream.finish(tuple);
    auto [ec, head] = co_await stream.read_response(tuple);
    co_return std::pair(ec ? ec : fin_ec, head.status);
}


// ---- address validation -------------------------------------------------------------------------

TEST_CASE("hostile: address_validation::always makes the h3co client answer a Retry, and a NEW_TOKEN lets it skip the next", "[hostile][retry]") {
    asio::io_context io;
    h3co::server_options limits;
    limits.address_validation = h3co::address_validation::always;
    h3co::server server(test::executor(io), test::server_identity(), {}, limits);
    server.handle("/hello", answer_200);
    const auto port = server.listen("127.0.0.1", 0).port();
    const std::string url = test::url(port, "/hello", "127.0.0.1");

    h3co::client client(test::executor(io), test::trusting_test_ca());
    int first = 0, second = 0;
    std::string token;
    test::run(io, [&]() -> asio::awaitable<void> {
        const h3co::request req{.method = "GET", .url = url};
        auto res = co_await client.request(req);
        first = res.status;
        // The server sends NEW_TOKEN once the handshake is confirmed; wait for it (bounded).
        auto conn = co_await client.connection_for(url);
        for (int i = 0; i < 300 && conn.address_token().empty(); ++i) co_await h3co::sleep_for(10ms);
        token = conn.address_token();
    }());
    CHECK(first == 200);
    auto after_first = server.stats();
    CHECK(after_first.retries_sent == 1);
    CHECK(after_first.retry_tokens_accepted == 1);
    CHECK(after_first.connections_accepted == 1);
    CHECK(after_first.address_tokens_sent == 1);
    REQUIRE_FALSE(token.empty());

    // The pooled connection closes; the next request connects again, with the token: no Retry.
    client.close();
    REQUIRE(run_until(io, [&] { return server.connection_count() == 0; }));
    test::run(io, [&]() -> asio::awaitable<void> {
        const h3co::request req{.method = "GET", .url = url};
        auto res = co_await client.request(req);
        second = res.status;
    }());
    CHECK(second == 200);
    const auto after_second = server.stats();
    CHECK(after_second.connections_accepted == 2);
    CHECK(after_second.retries_sent == 1);  // the first connection's only
    CHECK(after_second.address_tokens_accepted == 1);
    client.close();
    test::settle(io);
}

TEST_CASE("hostile: a forged Retry token is refused with INVALID_TOKEN, while stale or foreign NEW_TOKEN tokens only cost a Retry", "[hostile][retry]") {
    asio::io_context io;
    h3co::server_options limits;
    limits.address_validation = h3co::address_validation::always;
    limits.secret = std::string(32, 's');
    h3co::server server(test::executor(io), test::server_identity(), {}, limits);
    server.handle("/hello", answer_200);
    const auto port = server.listen("127.0.0.1", 0).port();

    // Tokens made with the server's own secret, as another server of a cluster would.
    h3co::detail::server_endpoint issuer(limits);
    const auto token_for = [&](const char* address, std::chrono::system_clock::time_point when) {
        const auto a = raw_udp::server(0);
        sockaddr_in to = a;
        ::inet_pton(AF_INET, address, &to.sin_addr);
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
        const auto t = issuer.address_token(reinterpret_cast<const sockaddr*>(&to), sizeof to, static_cast<std::uint64_t>(ns));
        return std::string(t.begin(), t.end());
    };
    const auto now = std::chrono::system_clock::now();

    struct attempt {
        std::string token;
        std::error_code ec;
        int status = 0;
    };
    std::string forged(90, 'x');
    forged[0] = static_cast<char>(0xb6);  // what a Retry token starts with
    std::vector<attempt> attempts{{forged},
                                  {token_for("127.0.0.1", now - std::chrono::hours(48))},  // expired (24 h)
                                  {token_for("127.0.0.2", now)},                             // another address
                                  {token_for("127.0.0.1", now)}};                            // valid
    for (auto& a : attempts) {
        test::run(io, [&]() -> asio::awaitable<void> {
            h3co::connection_options options;
            options.address_token = a.token;
            auto [ec, conn] = co_await connect_to(port, options);
            a.ec = ec;
            if (ec) co_return;
            auto [get_ec, status] = co_await get(conn, port, "/hello");
            a.status = get_ec ? -1 : status;
        }());
    }
    INFO("forged: " << attempts[0].ec.category().name() << ": " << attempts[0].ec.message());
    CHECK(attempts[0].ec == h3co::quic_error::invalid_token);
    CHECK(attempts[1].status == 200);
    CHECK(attempts[2].status == 200);
    CHECK(attempts[3].status == 200);
    const auto st = server.stats();
    CHECK(st.invalid_tokens == 1);
    CHECK(st.stale_address_tokens == 2);
    CHECK(st.retries_sent == 2);  // the stale and the foreign token
    CHECK(st.address_tokens_accepted == 1);
    CHECK(st.connections_accepted == 3);
    test::settle(io);
}

TEST_CASE("hostile: gtlsclient answers an h3co server's Retry and gets a NEW_TOKEN token that the server accepts", "[hostile][retry][interop]") {
    REQUIRE_FALSE(std::string(H3CO_GTLSCLIENT).empty());  // ngtcp2-client (scripts/bootstrap.sh --test-tools)
    asio::io_context io;
    h3co::server_options limits;
    limits.address_validation = h3co::address_validation::always;
    h3co::server server(test::executor(io), test::server_identity(), {}, limits);
    server.handle("/hello", answer_200);
    const auto port = server.listen("127.0.0.1", 0).port();
    test::temp_dir dir;
    const auto token_file = dir.path / "token";

    const std::vector<std::string> argv{H3CO_GTLSCLIENT, "-q", "--no-quic-dump", "--no-http-dump",
                                        "--exit-on-all-streams-close", "--handshake-timeout=5s", "--timeout=10s",
                                        "--token-file=" + token_file.string(), "127.0.0.1", std::to_string(port),
                                        "https://127.0.0.1:" + std::to_string(port) + "/hello"};
    test::child_process client(argv, dir.path / "gtlsclient.log");
    REQUIRE(client.started());
    const bool exited = run_until(io, [&] { return client.exited(); }, 20s);
    INFO("gtlsclient log:\n" << test::read_file(dir.path / "gtlsclient.log"));
    REQUIRE(exited);
    CHECK(client.exited_with_zero());
    const auto first = server.stats();
    CHECK(first.retries_sent == 1);
    CHECK(first.retry_tokens_accepted == 1);
    CHECK(first.connections_accepted == 1);
    CHECK(first.address_tokens_sent == 1);

    // gtlsclient 0.12 saves the token (PEM "QUIC TOKEN") but cannot read its own file back (it
    // reads zero bytes), so the h3co client presents it instead, from the same address.
    const std::string pem = test::read_file(token_file);
    const auto begin = pem.find("-----\n"), end = pem.find("\n-----END");
    REQUIRE(begin != std::string::npos);
    REQUIRE(end != std::string::npos);
    const std::string token = base64_decode(pem.substr(begin + 6, end - begin - 6));
    REQUIRE_FALSE(token.empty());
    int status = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        h3co::connection_options options;
        options.address_token = token;
        auto [ec, conn] = co_await connect_to(port, options);
        REQUIRE(!ec);
        auto [get_ec, s] = co_await get(conn, port, "/hello");
        status = get_ec ? -1 : s;
    }());
    CHECK(status == 200);
    const auto second = server.stats();
    CHECK(second.retries_sent == 1);
    CHECK(second.address_tokens_accepted == 1);
    test::settle(io);
}

// ---- connection limits --------------------------------------------------------------------------

TEST_CASE("hostile: beyond max_connections new clients get CONNECTION_REFUSED, and room comes back when one closes", "[hostile][limits]") {
    asio::io_context io;
    h3co::server_options limits;
    limits.max_connections = 2;
    h3co::server server(test::executor(io), test::server_identity(), {}, limits);
    server.handle("/hello", answer_200);
    const auto port = server.listen("127.0.0.1", 0).port();

    std::error_code third, fourth;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec1, c1] = co_await connect_to(port);
        auto [ec2, c2] = co_await connect_to(port);
        REQUIRE(!ec1);
        REQUIRE(!ec2);
        auto [ec3, c3] = co_await connect_to(port);
        third = ec3;
        c1.close();
        for (int i = 0; i < 300 && server.connection_count() > 1; ++i) co_await h3co::sleep_for(10ms);
        auto [ec4, c4] = co_await connect_to(port);
        fourth = ec4;
        if (!ec4) {
            auto [get_ec, status] = co_await get(c4, port, "/hello");
            CHECK(!get_ec);
            CHECK(status == 200);
        }
    }());
    INFO("third: " << third.message());
    CHECK(third == h3co::quic_error::connection_refused);
    CHECK(!fourth);
    CHECK(server.stats().connections_refused == 1);
    test::settle(io);
}

TEST_CASE("hostile: the per-address limit sends a Retry first, then refuses the validated address", "[hostile][limits]") {
    asio::io_context io;
    h3co::server_options limits;
    limits.max_connections_per_address = 2;  // all test clients come from 127.0.0.1
    h3co::server server(test::executor(io), test::server_identity(), {}, limits);
    const auto port = server.listen("127.0.0.1", 0).port();

    std::error_code third;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec1, c1] = co_await connect_to(port);
        auto [ec2, c2] = co_await connect_to(port);
        REQUIRE(!ec1);
        REQUIRE(!ec2);
        auto [ec3, c3] = co_await connect_to(port);
        third = ec3;
        CHECK(server.stats().connections == 2);
    }());
    CHECK(third == h3co::quic_error::connection_refused);
    const auto st = server.stats();
    CHECK(st.retries_sent == 1);  // a spoofed source could not use up 127.0.0.1's share
    CHECK(st.retry_tokens_accepted == 1);
    CHECK(st.connections_refused == 1);
    test::settle(io);
}

// ---- request timeouts and the handler cap -------------------------------------------------------

TEST_CASE("hostile: a request whose HEADERS never complete is reset after header_timeout, without a handler", "[hostile][timeouts]") {
    asio::io_context io;
    h3co::server_options limits;
    limits.header_timeout = 300ms;
    h3co::server server(test::executor(io), test::server_identity(), {}, limits);
    int handlers = 0;
    server.handle("/", [&](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        ++handlers;
        co_await res.send_header(200);
    });
    const auto port = server.listen("127.0.0.1", 0).port();

    std::error_code ended;
    std::chrono::steady_clock::duration took{};
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec, conn] = co_await connect_to(port);
        REQUIRE(!ec);
        auto stream = co_await conn.open_request_stream();
        co_await h3co::testing::start_raw(stream);
        // A HEADERS frame announcing 60 bytes, of which 3 come: the rest never does.
        const std::array<std::uint8_t, 5> partial{0x01, 60, 0x00, 0x00, 0xd1};
        const auto start = std::chrono::steady_clock::now();
        co_await stream.write(asio::buffer(partial));
        std::array<char, 64> buf;
        auto [read_ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        took = std::chrono::steady_clock::now() - start;
        ended = read_ec;
    }());
    INFO(ended.category().name() << ": " << ended.message());
    CHECK(ended == h3co::h3_error::request_rejected);
    CHECK(took >= 300ms);
    CHECK(handlers == 0);
    CHECK(server.stats().request_timeouts == 1);
    test::settle(io);
}

TEST_CASE("hostile: body_idle_timeout ends a request whose body stops, and a response the client stops reading", "[hostile][timeouts]") {
    asio::io_context io;
    h3co::server_options limits;
    limits.body_idle_timeout = 300ms;
    h3co::server server(test::executor(io), test::server_identity(), {}, limits);
    std::error_code upload_end, download_end;
    std::size_t uploaded = 0;
    server.handle("/upload", [&](h3co::server_request& req, h3co::response&) -> asio::awaitable<void> {
        std::array<char, 1024> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            uploaded += n;
            if (ec) {
                upload_end = ec;
                co_return;
            }
        }
    });
    server.handle("/download", [&](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        const std::vector<char> chunk(64 * 1024, 'd');
        for (int i = 0; i < 64; ++i) {  // 4 MiB: far beyond the client's 256 KiB stream window
            auto [ec, n] = co_await res.write(asio::buffer(chunk), tuple);
            if (ec) {
                download_end = ec;
                co_return;
            }
        }
    });
    const auto port = server.listen("127.0.0.1", 0).port();

    std::error_code upload_client_end;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec, conn] = co_await connect_to(port);
        REQUIRE(!ec);
        auto up = co_await conn.open_request_stream();
        const h3co::request post{.method = "POST", .url = test::url(port, "/upload", "127.0.0.1")};
        co_await up.send_header(post);
        co_await up.write(asio::buffer("ten bytes!", 10));
        // Then nothing: the handler waits, and the server gives up after the timeout.
        auto [head_ec, head] = co_await up.read_response(tuple);
        upload_client_end = head_ec;

        auto down = co_await conn.open_request_stream();
        const h3co::request get_req{.method = "GET", .url = test::url(port, "/download", "127.0.0.1")};
        co_await down.send_header(get_req);
        co_await down.finish();
        auto response = co_await down.read_response();
        CHECK(response.status == 200);
        // Never read the body: the server's writes stall on flow control, then time out.
        for (int i = 0; i < 500 && !download_end; ++i) co_await h3co::sleep_for(10ms);
    }());
    CHECK(uploaded == 10);
    CHECK(upload_end == h3co::error::request_timeout);
    CHECK(upload_client_end == h3co::h3_error::request_cancelled);
    CHECK(download_end == h3co::error::request_timeout);
    CHECK(server.stats().request_timeouts == 2);
    test::settle(io);
}

TEST_CASE("hostile: a slow-loris client that opens every stream and goes quiet pins no handler, and its credit comes back", "[hostile][timeouts]") {
    asio::io_context io;
    h3co::connection_options options;
    options.max_concurrent_streams = 8;
    h3co::server_options limits;
    limits.header_timeout = 300ms;
    limits.body_idle_timeout = 300ms;
    h3co::server server(test::executor(io), test::server_identity(), options, limits);
    int started = 0, ended = 0;
    server.handle("/slow", [&](h3co::server_request& req, h3co::response&) -> asio::awaitable<void> {
        ++started;
        std::array<char, 256> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            if (ec) break;
        }
        ++ended;
    });
    server.handle("/hello", answer_200);
    const auto port = server.listen("127.0.0.1", 0).port();
    const long baseline = h3co::testing::live_stream_states();

    std::vector<int> statuses;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec, conn] = co_await connect_to(port);
        REQUIRE(!ec);
        {
            std::vector<h3co::request_stream> quiet;
            for (int i = 0; i < 8; ++i) {
                auto s = co_await conn.open_request_stream();
                if (i % 2 == 0) {  // half stop inside their HEADERS
                    co_await h3co::testing::start_raw(s);
                    const std::array<std::uint8_t, 3> partial{0x01, 40, 0x00};
                    co_await s.write(asio::buffer(partial));
                } else {  // half send HEADERS and then no body
                    const h3co::request post{.method = "POST", .url = test::url(port, "/slow", "127.0.0.1")};
                    co_await s.send_header(post);
                }
                quiet.push_back(std::move(s));
            }
            // Every slot is taken; the client says nothing more, but its connection stays alive.
            // The handlers end after the timeouts: each sees its read fail, then returns.
            for (int i = 0; i < 500 && (server.stats().request_timeouts < 8 || server.stats().running_handlers > 0); ++i)
                co_await h3co::sleep_for(10ms);
            CHECK(server.stats().request_timeouts == 8);
            CHECK(server.stats().running_handlers == 0);
        }
        // The slots came back: eight more requests at once all get answers.
        std::vector<std::pair<std::error_code, int>> results(8);
        int done = 0;
        for (int i = 0; i < 8; ++i)
            asio::co_spawn(co_await asio::this_coro::executor,
                           [&, i]() -> asio::awaitable<void> {
                               results[static_cast<std::size_t>(i)] = co_await get(conn, port, "/hello");
                               ++done;
                           },
                           asio::detached);
        for (int i = 0; i < 500 && done < 8; ++i) co_await h3co::sleep_for(10ms);
        for (auto& [get_ec, status] : results) statuses.push_back(get_ec ? -1 : status);
    }());
    CHECK(started == 4);
    CHECK(ended == 4);
    CHECK(statuses == std::vector<int>(8, 200));
    test::settle(io);
    CHECK(h3co::testing::live_stream_states() == baseline);
}

TEST_CASE("hostile: beyond max_running_handlers a request is refused with H3_REQUEST_REJECTED before its handler runs", "[hostile][limits]") {
    asio::io_context io;
    h3co::server_options limits;
    limits.max_running_handlers = 2;
    h3co::server server(test::executor(io), test::server_identity(), {}, limits);
    bool release = false;
    int running = 0;
    server.handle("/wait", [&](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        ++running;
        for (int i = 0; i < 1000 && !release; ++i) co_await h3co::sleep_for(5ms);
        co_await res.send_header(200);
    });
    const auto port = server.listen("127.0.0.1", 0).port();

    std::vector<std::pair<std::error_code, int>> results(3);
    std::pair<std::error_code, int> after;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec, conn] = co_await connect_to(port);
        REQUIRE(!ec);
        int done = 0;
        for (std::size_t i = 0; i < 3; ++i) {
            asio::co_spawn(co_await asio::this_coro::executor,
                           [&, i]() -> asio::awaitable<void> {
                               results[i] = co_await get(conn, port, "/wait");
                               ++done;
                           },
                           asio::detached);
            for (int k = 0; k < 200 && running < static_cast<int>(std::min<std::size_t>(i + 1, 2)); ++k)
                co_await h3co::sleep_for(5ms);
        }
        for (int i = 0; i < 400 && done < 1; ++i) co_await h3co::sleep_for(5ms);  // the refusal comes first
        CHECK(done == 1);
        release = true;
        for (int i = 0; i < 400 && done < 3; ++i) co_await h3co::sleep_for(5ms);
        after = co_await get(conn, port, "/wait");
    }());
    CHECK(results[0].second == 200);
    CHECK(results[1].second == 200);
    CHECK(results[2].first == h3co::h3_error::request_rejected);
    CHECK(running == 3);  // two, then the one after: never the refused one
    CHECK(!after.first);
    CHECK(after.second == 200);
    CHECK(server.stats().requests_refused == 1);
    CHECK(server.stats().running_handlers == 0);
    test::settle(io);
}

TEST_CASE("hostile: one address cannot take every handler: max_running_handlers_per_address", "[hostile][limits]") {
    asio::io_context io;
    h3co::server_options limits;
    limits.max_running_handlers = 0;
    limits.max_running_handlers_per_address = 1;
    h3co::server server(test::executor(io), test::server_identity(), {}, limits);
    bool release = false;
    server.handle("/wait", [&](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        for (int i = 0; i < 1000 && !release; ++i) co_await h3co::sleep_for(5ms);
        co_await res.send_header(200);
    });
    const auto port = server.listen("127.0.0.1", 0).port();

    std::pair<std::error_code, int> first, second, third;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec1, c1] = co_await connect_to(port);
        auto [ec2, c2] = co_await connect_to(port);  // another connection, the same address
        REQUIRE(!ec1);
        REQUIRE(!ec2);
        bool first_done = false;
        asio::co_spawn(co_await asio::this_coro::executor,
                       [&]() -> asio::awaitable<void> {
                           first = co_await get(c1, port, "/wait");
                           first_done = true;
                       },
                       asio::detached);
        for (int i = 0; i < 400 && server.stats().running_handlers < 1; ++i) co_await h3co::sleep_for(5ms);
        second = co_await get(c2, port, "/wait");
        release = true;
        for (int i = 0; i < 400 && !first_done; ++i) co_await h3co::sleep_for(5ms);
        third = co_await get(c2, port, "/wait");  // the handler ended: room again
    }());
    CHECK(first.second == 200);
    CHECK(second.first == h3co::h3_error::request_rejected);
    CHECK(third.second == 200);
    CHECK(server.stats().requests_refused == 1);
    test::settle(io);
}

// ---- stream credit and handlers that end at once ---------------------------------------------------

TEST_CASE("hostile: requests reset before their HEADERS give their stream credit back", "[hostile][streams]") {
    asio::io_context io;
    h3co::connection_options options;
    options.max_concurrent_streams = 4;
    h3co::server server(test::executor(io), test::server_identity(), options);
    server.handle("/hello", answer_200);
    const auto port = server.listen("127.0.0.1", 0).port();

    std::vector<int> statuses;
    int synced = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec, conn] = co_await connect_to(port);
        REQUIRE(!ec);
        for (int i = 0; i < 8; ++i) {  // twice max_concurrent_streams
            auto s = co_await conn.open_request_stream();
            co_await h3co::testing::start_raw(s);
            if (i % 2 == 0) {
                // One byte of a HEADERS frame (its type), which the server has before the reset: a
                // full request on another stream answered means it read what came before.
                co_await s.write(asio::buffer("\x01", 1));
                auto [sync_ec, status] = co_await get(conn, port, "/hello");
                synced += !sync_ec && status == 200;
            }  // else: reset before anything was sent (RESET_STREAM opens the stream)
            s.reset();
        }
        // Every slot is free again: max_concurrent_streams requests at once.
        std::vector<std::pair<std::error_code, int>> results(4);
        int done = 0;
        for (std::size_t i = 0; i < 4; ++i)
            asio::co_spawn(co_await asio::this_coro::executor,
                           [&, i]() -> asio::awaitable<void> {
                               results[i] = co_await get(conn, port, "/hello");
                               ++done;
                           },
                           asio::detached);
        for (int i = 0; i < 500 && done < 4; ++i) co_await h3co::sleep_for(10ms);
        for (auto& [get_ec, status] : results) statuses.push_back(get_ec ? -1 : status);
    }(), 15s);
    CHECK(synced == 4);
    CHECK(statuses == std::vector<int>(4, 200));
    test::settle(io);
}

TEST_CASE("hostile: handlers that return, throw or close the server at once", "[hostile][handlers]") {
    asio::io_context io;
    std::optional<h3co::server> server;
    server.emplace(test::executor(io), test::server_identity());
    server->handle("/return", [](h3co::server_request&, h3co::response&) -> asio::awaitable<void> { co_return; });
    server->handle("/throw", [](h3co::server_request&, h3co::response&) -> asio::awaitable<void> {
        throw std::runtime_error("at once");
        co_return;
    });
    server->handle("/close", [&](h3co::server_request&, h3co::response&) -> asio::awaitable<void> {
        server->close();
        co_return;
    });
    const auto port = server->listen("127.0.0.1", 0).port();

    std::pair<std::error_code, int> returned, thrown, closed;
    std::error_code close_error;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec, conn] = co_await connect_to(port);
        REQUIRE(!ec);
        returned = co_await get(conn, port, "/return");
        thrown = co_await get(conn, port, "/throw");
        closed = co_await get(conn, port, "/close");
        for (int i = 0; i < 200 && conn.is_open(); ++i) co_await h3co::sleep_for(5ms);
        close_error = conn.close_error();
    }());
    CHECK(!returned.first);
    CHECK(returned.second == 200);
    CHECK(!thrown.first);
    CHECK(thrown.second == 500);
    INFO("close: " << closed.first.message() << " / " << close_error.message());
    CHECK(closed.first == h3co::error::connection_closed);
    CHECK(close_error == h3co::error::connection_closed);
    CHECK(server->connection_count() == 0);
    server.reset();
    test::settle(io);
}

// ---- stateless replies ----------------------------------------------------------------------------

TEST_CASE("hostile: a packet for a connection the server lost gets a stateless reset that ends the client's connection", "[hostile][stateless]") {
    asio::io_context io;
    h3co::server_options limits;
    limits.secret = std::string(32, 'k');  // a restarted server (same secret) can reset the old connections
    std::optional<h3co::server> first;
    first.emplace(test::executor(io), test::server_identity(), h3co::connection_options{}, limits);
    first->handle("/hello", answer_200);
    const auto server_endpoint = first->listen("127.0.0.1", 0);
    test::lossy_relay relay(io, server_endpoint);
    const auto port = server_endpoint.port();

    std::optional<h3co::server> second;
    std::pair<std::error_code, int> before, after;
    std::error_code close_error;
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto ex = co_await asio::this_coro::executor;
        const std::string host = "127.0.0.1";
        const auto tls = test::trusting_test_ca();
        const auto relay_port = relay.port();
        auto [ec, conn] = co_await h3co::connect(ex, host, relay_port, tls, tuple);
        REQUIRE(!ec);
        before = co_await get(conn, port, "/hello");
        // The server goes away without a word (its CONNECTION_CLOSE is lost), and another with the
        // same secret takes its port.
        relay.blackhole(true);
        first.reset();
        co_await h3co::sleep_for(50ms);
        second.emplace(ex, test::server_identity(), h3co::connection_options{}, limits);
        second->listen(server_endpoint);
        relay.blackhole(false);
        after = co_await get(conn, port, "/hello");
        close_error = conn.close_error();
    }());
    CHECK(!before.first);
    CHECK(before.second == 200);
    INFO("after: " << after.first.message() << "; connection: " << close_error.message());
    CHECK(after.first == h3co::error::stateless_reset);
    CHECK(close_error == h3co::error::stateless_reset);
    CHECK(second->stats().stateless_resets_sent >= 1);
    second.reset();
    test::settle(io);
}

TEST_CASE("hostile: stateless resets are smaller than what they answer, and rate-limited", "[hostile][stateless]") {
    asio::io_context io;
    h3co::server_options limits;
    limits.stateless_replies_per_second = 20;
    h3co::server server(test::executor(io), test::server_identity(), {}, limits);
    const auto port = server.listen("127.0.0.1", 0).port();
    raw_udp probe;

    // Short-header packets (first byte 0x40..0x7f) to connection IDs the server never issued.
    const auto short_packet = [](std::size_t len, std::uint32_t seed) {
        auto p = random_bytes(len, seed);
        p[0] = static_cast<std::uint8_t>(0x40 | (p[0] & 0x3f));
        return p;
    };
    // Sizes first, one at a time: too small to answer, just answerable, and large.
    std::vector<std::pair<std::size_t, std::size_t>> sizes;  // sent, answered (0: none)
    for (std::size_t len : {21u, 22u, 30u, 44u, 1200u}) {
        probe.send_to(port, short_packet(len, static_cast<std::uint32_t>(len)));
        std::vector<std::vector<std::uint8_t>> got;
        run_until(io, [&] { got = probe.receive(); return !got.empty(); }, 300ms);
        sizes.emplace_back(len, got.empty() ? 0 : got.front().size());
    }
    CHECK(sizes[0].second == 0);   // a reset of at least 21 bytes would not be smaller
    CHECK(sizes[1].second == 21);
    CHECK(sizes[2].second == 29);
    CHECK(sizes[3].second == 43);
    CHECK(sizes[4].second == 43);
    for (const auto& [sent, answered] : sizes) CHECK(answered < sent);

    // Then a burst: 300 packets at once get no more resets than the bucket holds.
    const auto before = server.stats();
    const auto start = std::chrono::steady_clock::now();
    for (std::uint32_t i = 0; i < 300; ++i) probe.send_to(port, short_packet(60, 1000 + i));
    std::size_t replies = 0;
    run_until(io, [&] { replies += probe.receive().size(); return false; }, 300ms);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto after = server.stats();
    const auto sent = after.stateless_resets_sent - before.stateless_resets_sent;
    CHECK(replies == sent);
    // At most the bucket (20, partly spent above) plus 20 per second since.
    CHECK(static_cast<double>(sent) <= 20 + 20 * seconds + 1);
    CHECK(sent >= 1);
    CHECK(after.stateless_replies_limited - before.stateless_replies_limited == 300 - sent);
}

TEST_CASE("hostile: an unknown QUIC version gets a version negotiation listing QUIC v1, only for full-size datagrams", "[hostile][stateless]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    const auto port = server.listen("127.0.0.1", 0).port();
    raw_udp probe;

    const std::array<std::uint8_t, 8> dcid{1, 2, 3, 4, 5, 6, 7, 8};
    const std::array<std::uint8_t, 5> scid{9, 10, 11, 12, 13};
    const auto long_packet = [&](std::size_t len) {
        std::vector<std::uint8_t> p{0xc0, 0x1a, 0x2a, 0x3a, 0x4a};  // a reserved version (RFC 9000 §15)
        p.push_back(static_cast<std::uint8_t>(dcid.size()));
        p.insert(p.end(), dcid.begin(), dcid.end());
        p.push_back(static_cast<std::uint8_t>(scid.size()));
        p.insert(p.end(), scid.begin(), scid.end());
        p.resize(len, 0);
        return p;
    };
    probe.send_to(port, long_packet(600));  // too small to start a connection: no answer
    probe.send_to(port, long_packet(1200));
    std::vector<std::vector<std::uint8_t>> got;
    REQUIRE(run_until(io, [&] { auto more = probe.receive(); got.insert(got.end(), more.begin(), more.end()); return !got.empty(); }, 2s));
    run_until(io, [&] { auto more = probe.receive(); got.insert(got.end(), more.begin(), more.end()); return false; }, 100ms);
    REQUIRE(got.size() == 1);
    const auto& vn = got.front();
    REQUIRE(vn.size() >= 7 + scid.size() + dcid.size() + 4);
    CHECK((vn[0] & 0x80) != 0);
    CHECK(std::vector<std::uint8_t>(vn.begin() + 1, vn.begin() + 5) == std::vector<std::uint8_t>(4, 0));  // version 0
    // It is addressed back: its DCID is our SCID, its SCID our DCID.
    CHECK(vn[5] == scid.size());
    CHECK(std::equal(scid.begin(), scid.end(), vn.begin() + 6));
    const std::size_t at = 6 + scid.size();
    CHECK(vn[at] == dcid.size());
    CHECK(std::equal(dcid.begin(), dcid.end(), vn.begin() + static_cast<std::ptrdiff_t>(at) + 1));
    std::vector<std::uint32_t> versions;
    for (std::size_t i = at + 1 + dcid.size(); i + 4 <= vn.size(); i += 4)
        versions.push_back(static_cast<std::uint32_t>(vn[i] << 24 | vn[i + 1] << 16 | vn[i + 2] << 8 | vn[i + 3]));
    CHECK(versions == std::vector<std::uint32_t>{1});
    CHECK(vn.size() < 1200);
    CHECK(server.stats().version_negotiations_sent == 1);
}

}  // namespace hostile_test
