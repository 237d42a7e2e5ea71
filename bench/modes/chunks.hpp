// chunks: --count writes of --chunk-size bytes at --rate per second on one stream; each chunk
// carries the client's clock at write(), the server records the latency to its read (server.hpp).
#pragma once

#include "../client.hpp"

#include <h3co/h3co.hpp>

#include <asio/steady_timer.hpp>

#include <cstring>
#include <vector>

namespace bench {

inline asio::awaitable<void> client_chunks(const config& c, client_result& r) {
    auto ex = co_await asio::this_coro::executor;
    auto conn = co_await connect(c);
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = url(c, "/chunks")};
    co_await stream.send_header(req);
    std::vector<char> chunk(payload(c.chunk_size).begin(), payload(c.chunk_size).begin() + static_cast<std::ptrdiff_t>(c.chunk_size));
    asio::steady_timer timer(ex);
    const auto period = std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1.0 / c.chunk_rate));
    const auto start = clock_type::now() + 10ms;
    for (int i = 0; i < c.chunk_count; ++i) {
        timer.expires_at(start + period * i);
        co_await timer.async_wait(as_tuple);
        const std::uint64_t ts = now_ns();
        std::memcpy(chunk.data(), &ts, sizeof ts);
        const auto buf = asio::buffer(chunk);
        co_await stream.write(buf);
        r.bytes += chunk.size();
    }
    co_await stream.finish();
    const auto head = co_await stream.read_response();
    r.status = head.status;
    co_await drain(stream);
}

}  // namespace bench
