// A request body on its way from any AsyncReadStream into a request stream, as the source produces
// it: write() waits for flow control, so the source is read no faster than the peer accepts.
#pragma once

#include <h3co/error.hpp>
#include <h3co/http_stream.hpp>
#include <h3co/pipe.hpp>

#include <asio/awaitable.hpp>
#include <asio/error.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <array>
#include <type_traits>

namespace h3co::detail {

/// Pipe readers lend their bytes (async_read_view) instead of copying them out.
template <class T>
struct is_pipe_reader : std::false_type {};
template <class E>
struct is_pipe_reader<basic_pipe_reader<E>> : std::true_type {};

/// Copies `body` into `stream` until the source ends (then FIN) or fails (then a reset with
/// H3_REQUEST_CANCELLED). A pipe's bytes go from the writer's buffer straight into the stream's send
/// buffer (a borrowed view: one copy); any other source is read into a buffer here first.
template <class Executor, class BodySource>
asio::awaitable<void, Executor> pump_body(BodySource body, basic_http_stream<Executor> stream) {
    constexpr bool lends = is_pipe_reader<BodySource>::value;
    const auto token = asio::experimental::as_tuple(asio::use_awaitable_t<Executor>{});
    [[maybe_unused]] std::array<char, lends ? 1 : 16 * 1024> buf;
    for (;;) {
        std::error_code ec;
        asio::const_buffer chunk;
        if constexpr (lends) {
            auto [view_ec, view] = co_await body.async_read_view(token);
            ec = view_ec;
            chunk = view;
        } else {
            auto [read_ec, n] = co_await body.async_read_some(asio::buffer(buf), token);
            ec = read_ec;
            chunk = asio::buffer(buf.data(), n);
        }
        if (chunk.size() > 0) {
            auto [wec, written] = co_await stream.write(chunk, token);
            if constexpr (lends) body.consume(written);
            if (wec) co_return;  // the stream failed: its error reaches the response reader
        }
        if (ec == error::eof) {  // h3co::error::eof, or asio::error::eof from any other source
            co_await stream.finish(token);
            co_return;
        }
        if (ec) {
            stream.reset(h3_error::request_cancelled);
            co_return;
        }
    }
}

}  // namespace h3co::detail
