// Batched UDP I/O: recvmmsg takes datagrams from several senders in one system call, sendmmsg
// sends runs (GSO messages or single packets) to several peers in one, and every combination of
// the switches (connection_options::udp_sendmmsg_messages, udp_recvmmsg_messages, udp_gso_segments,
// udp_gro) carries uploads and downloads intact, with one client or many on one server.
#include "support/test_support.hpp"

#include <h3co/detail/io/udp_receive.hpp>
#include <h3co/detail/io/udp_send.hpp>

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/parallel_group.hpp>

#include <cstring>
#include <vector>


namespace udp_batching_test {

using udp = asio::ip::udp;

udp::socket loopback_socket(asio::io_context& io) {
    udp::socket s(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    s.non_blocking(true);
    return s;
}

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7);
    return v;
}

/// Every datagram waiting on `s`, one recvmsg each.
std::vector<std::vector<std::uint8_t>> drain(udp::socket& s) {
    std::vector<std::vector<std::uint8_t>> out;
    std::vector<std::uint8_t> buf(65536);
    for (;;) {
        std::error_code ec;
        const auto n = s.receive(asio::buffer(buf), 0, ec);
        if (ec) break;
        out.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return out;
}

h3co::detail::datagram_run run_to(const udp::endpoint& to, const std::vector<std::uint8_t>& data, std::size_t offset,
                                  std::size_t len, std::size_t segment) {
    h3co::detail::datagram_run r;
    r.data = data.data() + offset;
    r.len = len;
    r.segment = segment;
    r.to_len = static_cast<socklen_t>(to.size());
    std::memcpy(&r.to, to.data(), to.size());
    return r;
}

/// The bytes of `data` in [offset, offset+len), cut into datagrams of `segment` bytes.
std::vector<std::vector<std::uint8_t>> cut(const std::vector<std::uint8_t>& data, std::size_t offset, std::size_t len,
                                           std::size_t segment) {
    std::vector<std::vector<std::uint8_t>> out;
    for (std::size_t at = offset; at < offset + len; at += segment) {
        const auto end = data.begin() + static_cast<std::ptrdiff_t>(std::min(at + segment, offset + len));
        out.emplace_back(data.begin() + static_cast<std::ptrdiff_t>(at), end);
    }
    return out;
}


TEST_CASE("udp batching: recvmmsg takes datagrams from several senders in one system call", "[udp]") {
    asio::io_context io;
    auto receiver_socket = loopback_socket(io);
    auto a = loopback_socket(io);
    auto b = loopback_socket(io);
    const auto to = receiver_socket.local_endpoint();
    const auto one = pattern(300, 1), two = pattern(500, 2), three = pattern(70, 3);
    a.send_to(asio::buffer(one), to);
    b.send_to(asio::buffer(two), to);
    a.send_to(asio::buffer(three), to);

    const std::size_t messages = GENERATE(std::size_t{8}, std::size_t{1});
    h3co::detail::datagram_receiver receiver(messages);
    std::vector<std::pair<std::vector<std::uint8_t>, std::uint16_t>> got;  // bytes, sender's port
    std::vector<std::size_t> per_call;
    std::error_code ec;
    for (int calls = 0; calls < 10; ++calls) {
        const auto n = receiver.receive(
            receiver_socket.native_handle(),
            [&](const h3co::detail::received_datagram& d) {
                REQUIRE(d.from != nullptr);
                udp::endpoint from;
                std::memcpy(from.data(), d.from, d.from_len);
                got.emplace_back(std::vector<std::uint8_t>(d.data, d.data + d.len), from.port());
            },
            ec);
        if (ec) break;
        per_call.push_back(n);
    }
    CHECK(ec == asio::error::would_block);
    REQUIRE(got.size() == 3);
    CHECK(got[0] == std::make_pair(one, a.local_endpoint().port()));
    CHECK(got[1] == std::make_pair(two, b.local_endpoint().port()));
    CHECK(got[2] == std::make_pair(three, a.local_endpoint().port()));
    if (messages > 1)
        CHECK(per_call == std::vector<std::size_t>{3});  // all three in one recvmmsg
    else
        CHECK(per_call == std::vector<std::size_t>{1, 1, 1});
}

TEST_CASE("udp batching: send_runs delivers runs to several peers as the same datagrams, whatever the batching",
          "[udp]") {
    asio::io_context io;
    auto sender = loopback_socket(io);
    auto p1 = loopback_socket(io);
    auto p2 = loopback_socket(io);
    const auto data = pattern(4000, 9);
    const std::size_t max_messages = GENERATE(std::size_t{16}, std::size_t{2}, std::size_t{1});
    const bool gso = GENERATE(true, false);
    CAPTURE(max_messages, gso);

    // A GSO run of 3 x 1000 + 500 bytes to p1, a single datagram to p2, a run of 2 x 200 to p2.
    std::vector<h3co::detail::datagram_run> runs{run_to(p1.local_endpoint(), data, 0, 3500, 1000),
                                                  run_to(p2.local_endpoint(), data, 3500, 100, 100),
                                                  run_to(p2.local_endpoint(), data, 3600, 400, 200)};
    h3co::detail::send_features features{gso, false};
    const auto sent = h3co::detail::send_runs(sender.native_handle(), false, runs.data(), runs.size(), max_messages,
                                              features);
    CHECK(sent == 3);  // all of them: the socket never said it was full
    CHECK(features.gso == gso);  // loopback takes GSO: nothing was switched off

    auto at_p2 = cut(data, 3500, 100, 100);
    for (auto& d : cut(data, 3600, 400, 200)) at_p2.push_back(d);
    CHECK(drain(p1) == cut(data, 0, 3500, 1000));
    CHECK(drain(p2) == at_p2);
}


struct batching_case {
    const char* name;
    std::size_t sendmmsg, recvmmsg, gso;
    bool gro;
};

/// What reading a body of the pattern gave: its size, whether every byte matched, how it ended.
struct pattern_read {
    std::size_t total = 0;
    bool intact = true;
    std::error_code end;
};

/// Reads `body` until an error or its end, checking each byte against the pattern.
template <class Body>
asio::awaitable<pattern_read> read_pattern(Body& body) {
    std::vector<std::uint8_t> buf(32768);
    pattern_read r;
    for (;;) {
        auto [ec, n] = co_await body.read_some(asio::buffer(buf), tuple);
        for (std::size_t i = 0; i < n; ++i) r.intact = r.intact && buf[i] == static_cast<std::uint8_t>((r.total + i) * 7);
        r.total += n;
        if (ec) {
            r.end = ec;
            co_return r;
        }
    }
}

/// A server with /sink (checks the pattern of what it reads and answers with the count) and /source/N
/// (answers N bytes of the pattern).
struct pattern_server {
    h3co::server server;
    std::uint16_t port;

    pattern_server(asio::io_context& io, const h3co::connection_options& options)
        : server(test::executor(io), test::server_identity(), options) {
        server.handle("/sink", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            const auto got = co_await read_pattern(req);
            const h3co::fields headers{{"x-received", std::to_string(got.total)}, {"x-intact", got.intact ? "1" : "0"}};
            co_await res.send_header(200, headers);
        });
        server.handle("/source/", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            const std::size_t total = std::stoul(req.path().substr(std::string("/source/").size()));
            co_await res.send_header(200);
            const auto chunk = pattern(65536, 0);  // a multiple of 256: the pattern runs on across chunks
            for (std::size_t sent = 0; sent < total; sent += chunk.size())
                co_await res.write(asio::buffer(chunk.data(), std::min(chunk.size(), total - sent)));
        });
        port = server.listen("127.0.0.1", 0).port();
    }
};

/// Uploads `bytes` of the pattern, then downloads as many; checks both arrived intact.
asio::awaitable<void> upload_and_download(std::uint16_t port, h3co::connection_options options, std::size_t bytes) {
    auto conn = co_await h3co::connect(co_await asio::this_coro::executor, std::string("127.0.0.1"), port,
                                       test::trusting_test_ca(), options);
    {
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = "/sink"};
        co_await stream.send_header(req);
        const auto chunk = pattern(65536, 0);
        for (std::size_t sent = 0; sent < bytes; sent += chunk.size())
            co_await stream.write(asio::buffer(chunk.data(), std::min(chunk.size(), bytes - sent)));
        co_await stream.finish();
        const auto head = co_await stream.read_response();
        CHECK(head.status == 200);
        CHECK(head.headers.find("x-received") == std::to_string(bytes));
        CHECK(head.headers.find("x-intact") == "1");
    }
    {
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = "/source/" + std::to_string(bytes)};
        co_await stream.send_header(req);
        co_await stream.finish();
        const auto head = co_await stream.read_response();
        CHECK(head.status == 200);
        const auto got = co_await read_pattern(stream);
        CHECK(got.end == h3co::error::eof);
        CHECK(got.total == bytes);
        CHECK(got.intact);
    }
    conn.close();
}

h3co::connection_options options_for(const batching_case& c) {
    h3co::connection_options o;
    o.udp_sendmmsg_messages = c.sendmmsg;
    o.udp_recvmmsg_messages = c.recvmmsg;
    o.udp_gso_segments = c.gso;
    o.udp_gro = c.gro;
    return o;
}


TEST_CASE("udp batching: every switch setting carries an upload and a download intact", "[udp][e2e]") {
    const auto c = GENERATE(batching_case{"defaults (sendmmsg, recvmmsg, GSO, GRO)", 16, 8, 16, true},
                            batching_case{"sendmmsg of single packets (GSO off)", 16, 8, 1, false},
                            batching_case{"sendmmsg and recvmmsg off", 1, 1, 16, true},
                            batching_case{"nothing batched", 1, 1, 1, false});
    CAPTURE(c.name);
    asio::io_context io;
    const auto options = options_for(c);
    pattern_server srv(io, options);
    test::run(io, upload_and_download(srv.port, options, 3 * 1024 * 1024));
}

TEST_CASE("udp batching: many clients at once on one server, whose sends are gathered across peers", "[udp][e2e]") {
    const bool gather = GENERATE(true, false);
    CAPTURE(gather);
    asio::io_context io;
    h3co::connection_options server_options;
    server_options.udp_sendmmsg_messages = gather ? 16 : 1;
    pattern_server srv(io, server_options);
    constexpr int clients = 12;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        int done = 0;
        for (int i = 0; i < clients; ++i)
            asio::co_spawn(ex, upload_and_download(srv.port, {}, 512 * 1024), [&](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
                ++done;
            });
        while (done < clients) co_await h3co::sleep_for(std::chrono::milliseconds(10));
    }());
}

}  // namespace udp_batching_test
