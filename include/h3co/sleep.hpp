// sleep_for: a timer wait in one line, for producers that pace their output.
#pragma once

#include <h3co/detail/io/io_timer.hpp>

#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>

namespace h3co {

/// Suspends the calling coroutine for `duration` (cancellable like any Asio wait). On a context
/// that runs a virtual network (a simulation), the duration is virtual time.
inline asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration duration) {
    detail::io_timer<asio::any_io_executor> timer(co_await asio::this_coro::executor);
    timer.expires_after(duration);
    co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace h3co
