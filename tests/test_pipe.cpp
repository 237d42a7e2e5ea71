// The pipe on its own: ordering, backpressure, end of data, errors crossing from one end to the other.
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_future.hpp>

using namespace std::chrono_literals;
constexpr auto tuple = asio::experimental::as_tuple(asio::use_awaitable);

TEST_CASE("pipe: bytes arrive in order and close ends the data with eof", "[pipe]") {
    asio::io_context io;
    auto [reader, writer] = h3co::make_pipe(test::executor(io), 8);
    asio::co_spawn(io, [w = std::move(writer)]() mutable -> asio::awaitable<void> {
        for (int i = 0; i < 100; ++i) {
            const std::string chunk = std::to_string(i) + ",";
            co_await w.write(asio::buffer(chunk));
        }
        w.close();
    }, asio::detached);
    std::string expected;
    for (int i = 0; i < 100; ++i) expected += std::to_string(i) + ",";
    const auto got = test::run(io, [&]() -> asio::awaitable<std::string> {
        std::string all;
        std::array<char, 5> buf;
        for (;;) {
            auto [ec, n] = co_await reader.read_some(asio::buffer(buf), tuple);
            all.append(buf.data(), n);
            if (ec == h3co::error::eof) break;
            if (ec) throw std::system_error(ec);
        }
        co_return all;
    }());
    CHECK(got == expected);
}

TEST_CASE("pipe: a full pipe makes the writer wait until the reader takes bytes", "[pipe]") {
    asio::io_context io;
    auto [reader, writer] = h3co::make_pipe(test::executor(io), 16);
    bool write_done = false;
    std::vector<char> big(64, 'x');
    writer.write(asio::buffer(big), [&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        CHECK(n == 64);
        write_done = true;
    });
    test::settle(io, 50ms);
    CHECK_FALSE(write_done);  // only 16 of 64 bytes fit: the writer is suspended
    std::size_t total = 0;
    std::array<char, 10> buf;
    while (total < 64) {
        auto fut = reader.read_some(asio::buffer(buf), asio::use_future);
        test::settle(io, 10ms);
        REQUIRE(fut.wait_for(2s) == std::future_status::ready);  // use_future completes on another thread
        total += fut.get();
    }
    test::settle(io, 10ms);
    CHECK(write_done);
    CHECK(total == 64);
}

TEST_CASE("pipe: closing with an error reaches the reader - a dropped reader fails the writer", "[pipe]") {
    asio::io_context io;
    {
        auto [reader, writer] = h3co::make_pipe(test::executor(io));
        writer.close(make_error_code(h3co::h3_error::request_cancelled));
        std::error_code seen;
        std::array<char, 4> buf;
        reader.read_some(asio::buffer(buf), [&](std::error_code ec, std::size_t) { seen = ec; });
        test::settle(io, 10ms);
        CHECK(seen == h3co::h3_error::request_cancelled);
    }
    {
        auto [reader, writer] = h3co::make_pipe(test::executor(io), 4);
        std::error_code seen;
        std::string data(100, 'y');
        writer.write(asio::buffer(data), [&](std::error_code ec, std::size_t) { seen = ec; });
        test::settle(io, 10ms);
        { auto dropped = std::move(reader); }
        test::settle(io, 10ms);
        CHECK(seen == h3co::error::broken_pipe);
    }
    {
        // A writer dropped without close() is not a clean end: the reader sees broken_pipe, not eof.
        auto [reader, writer] = h3co::make_pipe(test::executor(io));
        { auto dropped = std::move(writer); }
        std::error_code seen;
        std::array<char, 4> buf;
        reader.read_some(asio::buffer(buf), [&](std::error_code ec, std::size_t) { seen = ec; });
        test::settle(io, 10ms);
        CHECK(seen == h3co::error::broken_pipe);
    }
}

TEST_CASE("pipe: cancelling a pending read completes it with operation_aborted", "[pipe]") {
    asio::io_context io;
    auto [reader, writer] = h3co::make_pipe(test::executor(io));
    asio::cancellation_signal signal;
    std::error_code seen;
    std::array<char, 4> buf;
    reader.read_some(asio::buffer(buf), asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::size_t) {
                         seen = ec;
                     }));
    test::settle(io, 10ms);
    signal.emit(asio::cancellation_type::terminal);
    test::settle(io, 10ms);
    CHECK(seen == asio::error::operation_aborted);
}
