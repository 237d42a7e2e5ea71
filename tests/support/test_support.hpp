// Shared by the tests: certificate paths, running a coroutine to completion with a deadline, and
// a server on a free loopback port.
#pragma once

#include <h3co/h3co.hpp>
#include <h3co/testing.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <system_error>

/// The completion token the tests use to get (error_code, results...) instead of exceptions.
inline constexpr auto tuple = asio::experimental::as_tuple(asio::use_awaitable);

namespace test {

/// The type-erased executor that h3co's default aliases (h3co::client, h3co::server, ...) use.
inline asio::any_io_executor executor(asio::io_context& io) { return io.get_executor(); }

inline std::string cert(const std::string& name) { return std::string(H3CO_TEST_CERT_DIR) + "/" + name; }

inline h3co::server_tls server_identity() { return h3co::server_tls::from_pem_files(cert("server.pem"), cert("server.key")); }

inline h3co::client_tls trusting_test_ca() {
    h3co::client_tls tls;
    tls.ca_file = cert("ca.pem");
    return tls;
}

/// Runs `coro` on `io` until it finishes; fails the test (never hangs) if it takes longer than
/// `limit`. Exceptions from the coroutine are rethrown here.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> coro, std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::optional<T> result;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(io, std::move(coro), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e) result.emplace(std::move(value));
        done = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < deadline) {
        io.restart();
        io.run_for(std::chrono::milliseconds(50));
        if (done) break;
    }
    REQUIRE(done);  // a hang is a failure, not a stuck test run
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

inline void run(asio::io_context& io, asio::awaitable<void> coro, std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto wrapped = [](asio::awaitable<void> c) -> asio::awaitable<int> {
        co_await std::move(c);
        co_return 0;
    };
    run<int>(io, wrapped(std::move(coro)), limit);
}

/// Lets the io_context run a little longer (e.g. for close frames and handler ends to settle).
inline void settle(asio::io_context& io, std::chrono::milliseconds d = std::chrono::milliseconds(200)) {
    io.restart();
    io.run_for(d);
}

inline std::string url(std::uint16_t port, const std::string& path = "/stream", const std::string& host = "localhost") {
    return "https://" + host + ":" + std::to_string(port) + path;
}

/// Reads a stream (anything with read_some) to its end; throws on any other error.
template <class Stream>
asio::awaitable<std::string> read_all(Stream& stream) {
    std::string all;
    std::array<char, 8192> buf;
    for (;;) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        all.append(buf.data(), n);
        if (ec == h3co::error::eof) co_return all;
        if (ec) throw std::system_error(ec);
    }
}

}  // namespace test
