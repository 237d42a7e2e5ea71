// The pipe on its own: ordering, backpressure, end of data, errors crossing from one end to the other.
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/use_future.hpp>

#include <optional>

using namespace std::chrono_literals;

namespace pipe_test {

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

TEST_CASE("pipe: a view is the writer's own buffer, and the write completes only once it is consumed", "[pipe]") {
    asio::io_context io;
    auto [reader, writer] = h3co::make_pipe(test::executor(io));
    const std::string first = "0123456789", second = "abcdef";
    std::size_t write_result = 0;
    bool write_done = false;
    std::pair<std::error_code, asio::const_buffer> got;
    const auto start_view = [&, &reader = reader] {
        reader.async_read_view([&](std::error_code ec, asio::const_buffer v) { got = {ec, v}; });
    };
    const auto view_now = [&] {
        start_view();
        test::settle(io, 20ms);
        return got;
    };
    start_view();  // a reader of views waits first: the write is lent, never buffered
    const std::array<asio::const_buffer, 2> both{asio::buffer(first), asio::buffer(second)};
    writer.write(both, [&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        write_result = n;
        write_done = true;
    });
    test::settle(io, 20ms);
    auto [ec, view] = got;
    CHECK_FALSE(ec);
    CHECK(view.data() == first.data());  // no copy: the writer's bytes themselves
    CHECK(view.size() == first.size());
    reader.consume(4);  // part of it: the rest is offered again
    std::tie(ec, view) = view_now();
    CHECK(view.data() == first.data() + 4);
    CHECK(view.size() == first.size() - 4);
    reader.consume(view.size());
    std::tie(ec, view) = view_now();
    CHECK(view.data() == second.data());  // the next buffer of the sequence
    test::settle(io, 20ms);
    CHECK_FALSE(write_done);  // its bytes are still being read in place
    reader.consume(view.size());
    test::settle(io, 20ms);
    CHECK(write_done);
    CHECK(write_result == first.size() + second.size());
    writer.close();
    std::tie(ec, view) = view_now();
    CHECK(ec == h3co::error::eof);
    CHECK(view.size() == 0);
}

TEST_CASE("pipe: a write cancelled or closed while its buffer is lent completes after the view is given back",
          "[pipe]") {
    const bool cancel = GENERATE(true, false);
    CAPTURE(cancel);
    asio::io_context io;
    auto [reader, writer] = h3co::make_pipe(test::executor(io));
    const std::string data(100, 'v');
    asio::cancellation_signal signal;
    std::optional<std::pair<std::error_code, std::size_t>> write_result;
    asio::const_buffer view;
    reader.async_read_view([&](std::error_code, asio::const_buffer v) { view = v; });
    writer.write(asio::buffer(data), asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, std::size_t n) {
                     write_result.emplace(ec, n);
                 }));
    test::settle(io, 20ms);
    REQUIRE(view.data() == data.data());
    if (cancel)
        signal.emit(asio::cancellation_type::terminal);
    else
        writer.close();
    test::settle(io, 20ms);
    CHECK_FALSE(write_result);  // the buffer must stay valid while the view is out
    reader.consume(30);
    test::settle(io, 20ms);
    REQUIRE(write_result);
    CHECK(write_result->first == (cancel ? std::error_code(asio::error::operation_aborted)
                                         : std::error_code(h3co::error::not_writable)));
    CHECK(write_result->second == 30);
}

TEST_CASE("pipe: bytes buffered before the first view come first, then the writer's own", "[pipe]") {
    asio::io_context io;
    auto [reader, writer] = h3co::make_pipe(test::executor(io), 8);
    const std::string data = "buffered-then-lent";
    bool write_done = false;
    writer.write(asio::buffer(data), [&](std::error_code ec, std::size_t) {
        CHECK_FALSE(ec);
        write_done = true;
    });
    test::settle(io, 20ms);  // the first 8 bytes went into the pipe's buffer
    std::string got;
    std::vector<const void*> where;
    test::run(io, [&]() -> asio::awaitable<void> {
        while (got.size() < data.size()) {
            auto [ec, view] = co_await reader.async_read_view(tuple);
            REQUIRE_FALSE(ec);
            got.append(static_cast<const char*>(view.data()), view.size());
            where.push_back(view.data());
            reader.consume(view.size());
        }
    }());
    CHECK(got == data);
    REQUIRE(where.size() == 2);
    CHECK(where[0] != static_cast<const void*>(data.data()));  // the pipe's buffer
    CHECK(where[1] == static_cast<const void*>(data.data() + 8));  // then the writer's, in place
    test::settle(io, 20ms);
    CHECK(write_done);
}

}  // namespace pipe_test
