// The default completion token and the completion signatures every public async operation uses.
#pragma once

#include <asio/async_result.hpp>
#include <asio/use_awaitable.hpp>

#include <cstddef>
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

}  // namespace h3co::detail
