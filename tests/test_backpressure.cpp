// Backpressure both ways: a body far larger than any buffer goes through byte-exact while memory
// stays flat; a slow reader makes the writer wait instead of buffering.
#include "support/memory.hpp"
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <cstring>

using namespace std::chrono_literals;
constexpr auto tuple = asio::experimental::as_tuple(asio::use_awaitable);

namespace {

/// A deterministic byte pattern, generated chunk by chunk (never held whole), and its checksum.
/// Both work a 64-bit word at a time so that the test measures h3co, not itself.
struct pattern {
    std::uint64_t state = 0x9e3779b97f4a7c15ull;
    std::uint64_t next() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    }
    void fill(char* out, std::size_t n) {
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const std::uint64_t v = next();
            std::memcpy(out + i, &v, 8);
        }
        if (i < n) {
            const std::uint64_t v = next();
            std::memcpy(out + i, &v, n - i);
        }
    }
};

/// Position-dependent, so reordered or duplicated bytes change it.
struct checksum {
    std::uint64_t value = 0;
    std::uint64_t bytes = 0;
    void add(const char* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i, ++bytes)
            value += (static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) + 1) * (bytes * 0x9e3779b97f4a7c15ull | 1);
    }
};

checksum expected_checksum(std::size_t total) {
    pattern gen;
    checksum sum;
    std::vector<char> buf(64 * 1024);
    for (std::size_t done = 0; done < total;) {
        const std::size_t n = std::min(buf.size(), total - done);
        gen.fill(buf.data(), n);
        sum.add(buf.data(), n);
        done += n;
    }
    return sum;
}

/// A server whose /sink handler checksums the body as it arrives, optionally slowly.
struct sink_server {
    asio::io_context& io;
    h3co::server server;
    std::shared_ptr<checksum> received = std::make_shared<checksum>();
    std::shared_ptr<std::error_code> end = std::make_shared<std::error_code>();
    std::uint16_t port = 0;

    sink_server(asio::io_context& io, std::chrono::milliseconds delay_per_read = 0ms)
        : io(io), server(test::executor(io), test::server_identity()) {
        server.handle("/sink", [received = received, end = end, delay_per_read](h3co::server_request& req,
                                                                                 h3co::response& res) -> asio::awaitable<void> {
            std::vector<char> buf(64 * 1024);
            for (;;) {
                auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
                received->add(buf.data(), n);
                if (ec) {
                    *end = ec;
                    break;
                }
                if (delay_per_read.count()) co_await h3co::sleep_for(delay_per_read);
            }
            co_await res.send_header(*end == h3co::error::eof ? 200 : 400);
        });
        port = server.listen("127.0.0.1", 0).port();
    }
};

}  // namespace

TEST_CASE("backpressure: a huge body through the pipe is byte-exact with flat memory", "[backpressure]") {
    const std::size_t total = test::big_transfer_bytes();
    const checksum expected = expected_checksum(total);
    asio::io_context io;
    sink_server sink(io);
    h3co::client client(test::executor(io), test::trusting_test_ca());
    test::reset_peak_rss();
    const long before = test::rss_kib();
    const int status = test::run(io, [&]() -> asio::awaitable<int> {
        auto [reader, writer] = h3co::make_pipe(test::executor(io));
        asio::co_spawn(io, [&, w = std::move(writer)]() mutable -> asio::awaitable<void> {
            pattern gen;
            std::vector<char> chunk(32 * 1024);
            for (std::size_t done = 0; done < total;) {
                const std::size_t n = std::min(chunk.size(), total - done);
                gen.fill(chunk.data(), n);
                co_await w.write(asio::buffer(chunk.data(), n));  // waits while the pipe is full
                done += n;
            }
            w.close();
        }, asio::detached);
        const h3co::request req{.method = "POST", .url = test::url(sink.port, "/sink", "127.0.0.1")};
        auto response = co_await client.request(req, std::move(reader));
        co_return response.status;
    }(), std::chrono::seconds(300));
    const long growth_mib = (test::peak_rss_kib() - before) / 1024;
    CHECK(status == 200);
    CHECK(sink.received->bytes == expected.bytes);
    CHECK(sink.received->value == expected.value);
    INFO("peak RSS growth " << growth_mib << " MiB for " << (total >> 20) << " MiB uploaded");
    if (!test::under_asan) CHECK(growth_mib < 32);  // client and server together, in this process
    client.close();
    test::settle(io);  // let the close fail what still waits (the pump's FIN acknowledgement)
}

TEST_CASE("backpressure: direct writes of a huge body are byte-exact with flat memory", "[backpressure]") {
    const std::size_t total = test::big_transfer_bytes();
    const checksum expected = expected_checksum(total);
    asio::io_context io;
    sink_server sink(io);
    test::reset_peak_rss();
    const long before = test::rss_kib();
    const int status = test::run(io, [&]() -> asio::awaitable<int> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), sink.port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "PUT", .url = test::url(sink.port, "/sink", "127.0.0.1")};
        co_await stream.send_header(req);
        pattern gen;
        std::vector<char> chunk(100 * 1000);  // not a multiple of anything inside
        for (std::size_t done = 0; done < total;) {
            const std::size_t n = std::min(chunk.size(), total - done);
            gen.fill(chunk.data(), n);
            co_await stream.write(asio::buffer(chunk.data(), n));
            done += n;
        }
        co_await stream.finish();
        auto head = co_await stream.read_response();
        co_return head.status;
    }(), std::chrono::seconds(300));
    const long growth_mib = (test::peak_rss_kib() - before) / 1024;
    CHECK(status == 200);
    CHECK(sink.received->bytes == expected.bytes);
    CHECK(sink.received->value == expected.value);
    INFO("peak RSS growth " << growth_mib << " MiB for " << (total >> 20) << " MiB uploaded");
    if (!test::under_asan) CHECK(growth_mib < 32);
}

TEST_CASE("backpressure: a slow handler makes the client's writes wait", "[backpressure]") {
    asio::io_context io;
    sink_server sink(io, 20ms);  // reads 64 KiB every 20 ms at most: ~3 MiB/s
    h3co::connection_options options;
    const std::size_t window = options.stream_receive_window, send_buffer = options.stream_send_buffer;
    std::size_t max_ahead = 0;  // bytes the client had written beyond what the handler had read
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), sink.port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = test::url(sink.port, "/sink", "127.0.0.1")};
        co_await stream.send_header(req);
        std::vector<char> chunk(16 * 1024, 'z');
        const auto started = std::chrono::steady_clock::now();
        std::size_t written = 0;
        while (std::chrono::steady_clock::now() - started < 1500ms) {
            co_await stream.write(asio::buffer(chunk));
            written += chunk.size();
            max_ahead = std::max(max_ahead, written - static_cast<std::size_t>(sink.received->bytes));
        }
        co_await stream.finish();
        co_await stream.read_response();
    }(), std::chrono::seconds(60));
    INFO("client ran at most " << max_ahead << " bytes ahead of the handler");
    // Without backpressure the client would be hundreds of MiB ahead; with it, at most what the
    // windows and buffers hold: the send buffer (its initial size, plus at most what the slow
    // reader's window lets leave, which does not grow), the stream window at the server, the
    // handler's read buffer and a chunk.
    CHECK(max_ahead <= send_buffer + 2 * window + 64 * 1024 + 16 * 1024 + 64 * 1024);
    CHECK(sink.received->bytes > 0);
}
