// sleep_for: a timer wait in one line, for producers that pace their output.
#pragma once

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>

namespace h3co {

/// Suspends the calling coroutine for `duration` (cancellable like any Asio wait).
inline asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration duration) {
    asio::steady_timer timer(co_await asio::this_coro::executor, duration);
    co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace h3co
