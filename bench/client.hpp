// What the client role's workloads share (modes/*.hpp): connecting with the bench CA, a POST or a
// GET of N bytes on a new stream, draining a body, and running N tasks at once.
#pragma once

#include "measure.hpp"
#include "options.hpp"

#include <h3co/h3co.hpp>

#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

struct client_result {
    std::uint64_t bytes = 0;
    int status = 0;
    int handshakes = 0;
    double transfer_s = 0;
    /// Seconds the transfer's connections were open, summed (clients: each from connect() to the
    /// end of its transfer); 0 where the mode does not count them (then wall_s stands for it).
    double connection_s = 0;
};


inline std::optional<h3co::connection_stats> g_client_stats;  ///< the transfer's connection, when it ended

inline std::string url(const config& c, const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(c.port) + path;
}

inline h3co::client_tls client_tls(const config& c) {
    h3co::client_tls tls;
    tls.ca_file = c.cert_dir + "/ca.pem";  // real verification: the bench CA, IP SAN 127.0.0.1
    return tls;
}

inline asio::awaitable<h3co::connection> connect(const config& c) {
    auto ex = co_await asio::this_coro::executor;
    const auto tls = client_tls(c);
    const auto options = c.options();
    const std::string host = "127.0.0.1";
    co_return co_await h3co::connect(ex, host, c.port, tls, options);
}

/// Reads a response body to its end; returns the byte count.
template <class Stream>
asio::awaitable<std::uint64_t> drain(Stream& stream) {
    std::vector<char> buf(64 * 1024);
    std::uint64_t total = 0;
    for (;;) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), as_tuple);
        total += n;
        if (ec == h3co::error::eof) co_return total;
        if (ec) throw std::system_error(ec, "reading the response body");
    }
}

/// POSTs `bytes` on a new stream of `conn` (`tag`: which connection, for the server's counts);
/// returns the status.
inline asio::awaitable<int> post(const config& c, h3co::connection& conn, std::uint64_t bytes, int tag = 0) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = url(c, "/0"), .headers = {{connection_tag_field, std::to_string(tag)}}};
    co_await stream.send_header(req);
    const auto& data = payload(c.write_size);
    while (bytes > 0) {
        const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, data.size()));
        const auto chunk = asio::buffer(data.data(), k);
        co_await stream.write(chunk);
        bytes -= k;
    }
    co_await stream.finish();
    const auto head = co_await stream.read_response();
    co_await drain(stream);
    g_client_stats = conn.stats();
    co_return head.status;
}

/// GETs `bytes` on a new stream of `conn` (`tag` as for post()); returns the body bytes received.
inline asio::awaitable<std::uint64_t> get(const config& c, h3co::connection& conn, std::uint64_t bytes, int& status, int tag = 0) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "GET", .url = url(c, "/" + std::to_string(bytes)),
                            .headers = {{connection_tag_field, std::to_string(tag)}}};
    co_await stream.send_header(req);
    co_await stream.finish();
    const auto head = co_await stream.read_response();
    status = head.status;
    const auto got = co_await drain(stream);
    g_client_stats = conn.stats();
    co_return got;
}

/// The `i`th of `n` even shares of `total`; the first also takes the remainder.
inline std::uint64_t share_of(std::uint64_t total, int n, int i) {
    const auto parts = static_cast<std::uint64_t>(n);
    return total / parts + (i == 0 ? total % parts : 0);
}

/// One stream of `share` bytes on `conn` (connection `tag`), up or down as --direction says.
inline asio::awaitable<void> transfer_one(const config& c, h3co::connection& conn, client_result& r, std::uint64_t share, int tag = 0) {
    int status = 0;
    if (c.direction == "down") {
        const auto got = co_await get(c, conn, share, status, tag);
        if (got != share) throw std::runtime_error("short download on a parallel stream");
        r.bytes += got;
    } else {
        status = co_await post(c, conn, share, tag);
        r.bytes += share;
    }
    if (status != 200) throw std::runtime_error("status " + std::to_string(status));
    r.status = status;
}

/// Runs start(0) ... start(n - 1) at once on this executor and waits for all of them; the first
/// failure is rethrown once every task has ended (tasks hold references into the caller's frame).
template <class StartTask>
asio::awaitable<void> run_together(int n, StartTask start) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer all_done(ex, clock_type::time_point::max());
    int left = n;
    std::exception_ptr failure;
    for (int i = 0; i < n; ++i) {
        asio::co_spawn(ex, start(i), [&](std::exception_ptr e) {
            if (e && !failure) failure = e;
            if (--left == 0) all_done.cancel();
        });
    }
    while (left > 0) co_await all_done.async_wait(as_tuple);
    if (failure) std::rethrow_exception(failure);
}

}  // namespace bench
