// upload: one POST of --bytes on one stream, written directly (--body direct) or through a pipe
// (--body pipe: views, one copy; --body pipe-copy: the same pipe read as a plain AsyncReadStream).
#pragma once

#include "../client.hpp"

#include <h3co/h3co.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

namespace bench {

/// A pipe reader seen only as an AsyncReadStream: h3co's pump then reads it into a buffer of its
/// own (the copying path that --body pipe-copy measures against the pipe's views).
struct plain_read_stream {
    h3co::pipe_reader reader;
    using executor_type = h3co::pipe_reader::executor_type;
    executor_type get_executor() const { return reader.get_executor(); }
    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return reader.async_read_some(buffers, std::forward<Token>(token));
    }
};

/// Writes `bytes` of the payload into `w` in writes of `write_size`, then closes it.
inline asio::awaitable<void> produce(h3co::pipe_writer w, std::size_t write_size, std::uint64_t bytes) {
    const auto& data = payload(write_size);
    for (std::uint64_t left = bytes; left > 0;) {
        const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(left, data.size()));
        co_await w.write(asio::buffer(data.data(), k));
        left -= k;
    }
    w.close();
}

/// POSTs `bytes` as a body that a producer coroutine writes into a pipe (the seed's io.Pipe).
inline asio::awaitable<int> post_through_pipe(const config& c, std::uint64_t bytes) {
    auto ex = co_await asio::this_coro::executor;
    h3co::client client(ex, client_tls(c), c.options());
    auto [reader, writer] = h3co::make_pipe(ex);
    asio::co_spawn(ex, produce(std::move(writer), c.write_size, bytes), asio::detached);
    const h3co::request req{.method = "POST", .url = url(c, "/0")};
    // Two statements, not a conditional expression: g++ 12 miscompiles co_await temporaries there.
    h3co::client_response response;
    if (c.body == "pipe") {
        response = co_await client.request(req, std::move(reader));
    } else {
        plain_read_stream plain{std::move(reader)};
        response = co_await client.request(req, std::move(plain));
    }
    co_await drain(response);
    g_client_stats = (co_await client.connection_for(url(c, "/"))).stats();
    client.close();
    co_return response.status;
}

inline asio::awaitable<void> client_upload(const config& c, client_result& r) {
    if (c.body == "direct") {
        auto conn = co_await connect(c);
        r.status = co_await post(c, conn, c.bytes);
    } else {
        r.status = co_await post_through_pipe(c, c.bytes);
    }
    r.bytes = c.bytes;
}

}  // namespace bench
