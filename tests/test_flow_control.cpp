// Windows and send buffers that grow to what the path needs: the growth rules on their own (no
// sockets), then through a delayed path, where a fast reader lets the windows grow and a slow
// reader keeps them where they are, and memory stays bounded by the options.
#include "support/lossy_relay.hpp"
#include "support/memory.hpp"
#include "support/test_support.hpp"

#include <h3co/detail/flow_window.hpp>
#include <h3co/detail/send_buffer.hpp>

#include <asio/experimental/as_tuple.hpp>

#include <cstring>
#include <numeric>
#include <vector>

using namespace std::chrono_literals;

namespace flow_control_test {

constexpr std::uint64_t ms_ns = 1'000'000;

/// What the server's handler saw of one upload, and of its connection at the end.
struct upload_seen {
    std::uint64_t bytes = 0;
    std::uint64_t sum = 0;  ///< position-dependent checksum
    std::error_code end;
    h3co::connection_stats stats;
};

std::uint64_t checksum(std::uint64_t sum, std::uint64_t offset, const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        sum += (static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) + 1) * ((offset + i) * 0x9e3779b97f4a7c15ull | 1);
    return sum;
}

char pattern_at(std::uint64_t i) { return static_cast<char>((i * 131 + 7) & 0xff); }

/// A server behind a relay that delays every datagram by `one_way` each way. Its /sink handler
/// reads `read_size` at a time, waiting `pause` after each (a slow reader), and keeps the
/// connection's numbers as they were when the body ended.
struct delayed_sink {
    h3co::server server;
    test::lossy_relay relay;
    std::shared_ptr<upload_seen> seen = std::make_shared<upload_seen>();

    delayed_sink(asio::io_context& io, const h3co::connection_options& options, std::chrono::milliseconds one_way,
                 std::chrono::milliseconds pause, std::size_t read_size = 64 * 1024)
        : server(test::executor(io), test::server_identity(), options), relay(io, server.listen("127.0.0.1", 0)) {
        test::fault_policy delayed;
        delayed.delay = one_way;
        relay.set(delayed);
        server.handle("/sink", [seen = seen, pause, read_size](h3co::server_request& req,
                                                              h3co::response& res) -> asio::awaitable<void> {
            std::vector<char> buf(read_size);
            for (;;) {
                auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
                seen->sum = checksum(seen->sum, seen->bytes, buf.data(), n);
                seen->bytes += n;
                if (ec) {
                    seen->end = ec;
                    break;
                }
                if (pause.count()) co_await h3co::sleep_for(pause);
            }
            seen->stats = req.connection_stats();
            co_await res.send_header(seen->end == h3co::error::eof ? 200 : 400);
        });
    }
};

struct client_side {
    int status = 0;
    h3co::connection_stats stats;
    std::uint64_t most_ahead = 0;  ///< written beyond what the handler had read, at most
};

/// Uploads `total` pattern bytes through `sink`'s relay with direct writes of 64 KiB.
client_side upload(asio::io_context& io, delayed_sink& sink, const h3co::connection_options& options,
                   std::uint64_t total) {
    return test::run(io, [&]() -> asio::awaitable<client_side> {
        client_side out;
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), sink.relay.port(),
                                           test::trusting_test_ca(), options);
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "POST", .url = test::url(sink.relay.port(), "/sink", "127.0.0.1")};
        co_await stream.send_header(req);
        std::vector<char> chunk(64 * 1024);
        for (std::uint64_t done = 0; done < total;) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - done));
            for (std::size_t i = 0; i < n; ++i) chunk[i] = pattern_at(done + i);
            co_await stream.write(asio::buffer(chunk.data(), n));
            done += n;
            out.most_ahead = std::max(out.most_ahead, done - sink.seen->bytes);
        }
        out.stats = conn.stats();  // before finish(): the send buffer as the transfer had grown it
        co_await stream.finish();
        out.status = (co_await stream.read_response()).status;
        co_return out;
    }(), 120s);
}

std::uint64_t expected_sum(std::uint64_t total) {
    std::uint64_t sum = 0;
    std::vector<char> chunk(64 * 1024);
    for (std::uint64_t done = 0; done < total;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - done));
        for (std::size_t i = 0; i < n; ++i) chunk[i] = pattern_at(done + i);
        sum = checksum(sum, done, chunk.data(), n);
        done += n;
    }
    return sum;
}


TEST_CASE("flow control: a window doubles when half of it is read within two round trips", "[flow-control]") {
    const std::uint64_t srtt = 50 * ms_ns, max = 1 << 20;
    h3co::detail::flow_window w(64 * 1024, 0);
    // Half the window read in 10 ms, well within two RTTs: the peer was held back by the window.
    CHECK(w.on_read(32 * 1024, 10 * ms_ns, srtt, max) == 32 * 1024 + 64 * 1024);
    CHECK(w.size == 128 * 1024);
    // Read slowly (half the window over 150 ms, three RTTs): the reader, not the window, is the limit.
    CHECK(w.on_read(64 * 1024, 160 * ms_ns, srtt, max) == 64 * 1024);
    CHECK(w.size == 128 * 1024);
    // Fast again: it grows, but never past the maximum.
    for (std::uint64_t t = 170; t < 400; t += 10) w.on_read(w.size / 2, t * ms_ns, srtt, max);
    CHECK(w.size == max);
    // Credit is never less than what was read, and nothing grows without an RTT sample.
    h3co::detail::flow_window fresh(64 * 1024, 0);
    CHECK(fresh.on_read(40 * 1024, 1, 0, max) == 40 * 1024);
    CHECK(fresh.size == 64 * 1024);
    CHECK(fresh.grow_to(32 * 1024) == 0);
    CHECK(fresh.grow_to(96 * 1024) == 32 * 1024);
}

TEST_CASE("flow control: send buffer bytes never move while the limit grows", "[flow-control]") {
    using h3co::detail::send_buffer;
    send_buffer buf(100 * 1000);
    std::vector<char> data(300 * 1000);
    std::iota(data.begin(), data.end(), 0);
    CHECK(buf.write(data.data(), data.size()) == 100 * 1000);  // the limit
    std::array<std::span<const std::uint8_t>, 16> spans;
    REQUIRE(buf.spans(0, spans.data(), spans.size()) >= 1);
    const std::uint8_t* first = spans[0].data();
    buf.set_limit(300 * 1000);  // the congestion window grew: more fits, nothing is copied
    CHECK(buf.write(data.data() + 100 * 1000, 200 * 1000) == 200 * 1000);
    const std::size_t n = buf.spans(0, spans.data(), spans.size());
    CHECK(spans[0].data() == first);
    std::vector<char> back;
    for (std::size_t i = 0; i < n; ++i) back.insert(back.end(), spans[i].begin(), spans[i].end());
    CHECK(back == data);
    // Acknowledged bytes leave; the rest stays where it was.
    buf.consume(150 * 1000);
    REQUIRE(buf.spans(0, spans.data(), spans.size()) >= 1);
    CHECK(std::memcmp(spans[0].data(), data.data() + 150 * 1000, spans[0].size()) == 0);
    // What is left, in whole chunks (a partial one at each end), plus the one spare kept.
    CHECK(buf.allocated() <= (300 * 1000 - 150 * 1000) + 3 * send_buffer::chunk_size);
    buf.consume(buf.size());
    CHECK(buf.empty());
    buf.release();
    CHECK(buf.allocated() == 0);
}

TEST_CASE("flow control: on a 50 ms path a fast reader's windows and the sender's buffer grow", "[flow-control]") {
    asio::io_context io;
    const h3co::connection_options options;  // the defaults users get
    delayed_sink sink(io, options, 25ms, 0ms);
    const std::uint64_t total = 12 << 20;
    const auto client = upload(io, sink, options, total);
    CHECK(client.status == 200);
    CHECK(sink.seen->bytes == total);
    CHECK(sink.seen->sum == expected_sum(total));
    const auto& server = sink.seen->stats;
    INFO("server: srtt " << server.smoothed_rtt.count() / 1e6 << " ms, stream window " << server.stream_receive_window
                         << ", connection window " << server.connection_receive_window);
    INFO("client: cwnd " << client.stats.congestion_window << ", send buffer " << client.stats.stream_send_buffer);
    CHECK(server.smoothed_rtt >= 45ms);  // the path's delay is what the connection sees
    CHECK(server.stream_receive_window > options.stream_receive_window);
    CHECK(server.connection_receive_window > options.connection_receive_window);
    CHECK(server.stream_receive_window <= options.max_stream_receive_window);
    CHECK(server.connection_receive_window <= options.max_connection_receive_window);
    CHECK(client.stats.stream_send_buffer > options.stream_send_buffer);
    CHECK(client.stats.stream_send_buffer <= options.max_stream_send_buffer);
}

TEST_CASE("flow control: on a 50 ms path a slow reader keeps the window and holds the sender back", "[flow-control]") {
    asio::io_context io;
    const h3co::connection_options options;
    // 16 KiB per 50 ms at most: 330 KB/s. A window grows only while half of it is read within two
    // RTTs, so to about four times what the reader takes per RTT (66 KB here): never past 256 KiB.
    delayed_sink sink(io, options, 25ms, 50ms, 16 * 1024);
    const std::uint64_t total = 768 << 10;
    const auto client = upload(io, sink, options, total);
    CHECK(client.status == 200);
    CHECK(sink.seen->bytes == total);
    CHECK(sink.seen->sum == expected_sum(total));
    INFO("stream window " << sink.seen->stats.stream_receive_window << ", client ran at most " << client.most_ahead
                          << " bytes ahead of the handler, send buffer " << client.stats.stream_send_buffer);
    CHECK(sink.seen->stats.stream_receive_window == options.stream_receive_window);
    // The writer waited: never more ahead than the unchanged window at the server plus its own
    // send buffer (its initial size and what that window let leave), plus one write.
    CHECK(client.most_ahead <= options.stream_send_buffer + 2 * options.stream_receive_window + 64 * 1024);
}

TEST_CASE("flow control: through a delayed path memory stays bounded by the options", "[flow-control][backpressure]") {
    asio::io_context io;
    h3co::connection_options options;
    options.max_stream_receive_window = options.max_connection_receive_window = 4 << 20;
    options.max_stream_send_buffer = options.max_connection_send_buffer = 4 << 20;
    delayed_sink sink(io, options, 5ms, 0ms);
    const std::uint64_t total = test::under_asan ? 32 << 20 : 128 << 20;
    test::reset_peak_rss();
    const long before = test::rss_kib();
    const auto client = upload(io, sink, options, total);
    const long growth_mib = (test::peak_rss_kib() - before) / 1024;
    CHECK(client.status == 200);
    CHECK(sink.seen->bytes == total);
    CHECK(sink.seen->sum == expected_sum(total));
    INFO("peak RSS growth " << growth_mib << " MiB for " << (total >> 20) << " MiB through a 10 ms path; windows "
                            << sink.seen->stats.stream_receive_window << ", send buffer " << client.stats.stream_send_buffer);
    CHECK(sink.seen->stats.stream_receive_window <= options.max_stream_receive_window);
    CHECK(client.stats.stream_send_buffer <= options.max_stream_send_buffer + options.stream_send_buffer);
    // Client and server in this process: each side's buffers (4 MiB each at most), the relay's
    // datagrams in flight, and the allocator's slack; far from the 128 MiB that went through.
    if (!test::under_asan) CHECK(growth_mib < 40);
}

}  // namespace flow_control_test
