// Small pieces shared by every public async operation.
#pragma once

#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <system_error>
#include <type_traits>

namespace h3co::detail {

/// Asio 1.22 has no default completion token for plain executors; ours is use_awaitable so that
/// `co_await stream.write(buf)` works, while any other token can still be passed explicitly.
template <class Executor>
using default_token_t =
    std::conditional_t<std::is_void_v<typename asio::default_completion_token<Executor>::type>,
                       asio::use_awaitable_t<Executor>, typename asio::default_completion_token<Executor>::type>;

using io_signature = void(std::error_code, std::size_t);
using status_signature = void(std::error_code);

/// Hands the bytes of `buffers` (skipping the first `skip`) to `sink(ptr, len) -> taken`, one
/// buffer at a time; `ptr` is writable for a mutable buffer sequence. Returns the number of bytes
/// taken; stops at the first partial take.
template <class BufferSequence, class Sink>
std::size_t for_each_buffer_from(const BufferSequence& buffers, std::size_t skip, Sink&& sink) {
    std::size_t total = 0;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
        auto b = asio::buffer(*it);
        if (skip >= b.size()) {
            skip -= b.size();
            continue;
        }
        b += skip;
        skip = 0;
        const std::size_t taken = sink(b.data(), b.size());
        total += taken;
        if (taken < b.size()) break;
    }
    return total;
}

inline std::uint64_t steady_now_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

}  // namespace h3co::detail
