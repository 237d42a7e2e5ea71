// Starting an asynchronous operation with its handler type-erased at once: the initiation wraps
// the handler in a pending_op, and everything after it (hopping onto the engine's executor,
// waiting, completing) is compiled once per operation instead of once per completion token type.
//
// The handler's associated allocator is not used: the pending_op is one allocation from the global
// heap per operation, and may be freed on the engine's executor (connection shutdown), not only
// the handler's, where a recycling allocator would not expect it (docs/design.md, "Layers").
#pragma once

#include <h3co/detail/pending_op.hpp>
#include <h3co/error.hpp>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/system_executor.hpp>

#include <memory>

#include <system_error>
#include <type_traits>
#include <utility>

namespace h3co::detail {

template <class Signature>
struct op_for;

/// The pending_op for a completion signature void(std::error_code, Rest...).
template <class... Rest>
struct op_for<void(std::error_code, Rest...)> {
    using type = pending_op<std::error_code, Rest...>;
    static void fail(type& op, std::error_code ec) { op.complete(ec, std::decay_t<Rest>{}...); }
    template <class Handler>
    static void invoke(Handler&& handler, std::error_code ec) {
        std::forward<Handler>(handler)(ec, std::decay_t<Rest>{}...);
    }
};

/// False for an executor without a target: an empty any_io_executor, as a default-constructed or
/// moved-from handle holds. Executor types that cannot be empty always have one.
template <class Executor>
bool has_target(const Executor& ex) noexcept {
    if constexpr (std::is_constructible_v<bool, const Executor&>)
        return static_cast<bool>(ex);
    else
        return true;
}

/// Completes `handler` with `ec` (and value-initialised results), posted to its associated
/// executor, else `io_ex`, else (io_ex empty too) asio::system_executor, as Asio does for a handler
/// with nowhere else to run: never inline, never by throwing bad_executor.
template <class Signature, class Handler, class Executor>
void complete_detached(Handler handler, const Executor& io_ex, std::error_code ec) {
    auto post_to = [&](const auto& fallback) {
        auto target = asio::get_associated_executor(handler, fallback);
        asio::post(target, [h = std::move(handler), ec]() mutable { op_for<Signature>::invoke(std::move(h), ec); });
    };
    if (has_target(io_ex))
        post_to(io_ex);
    else
        post_to(asio::system_executor());
}

/// async_initiate for `Signature` whose initiation calls `launch(op)` with the handler wrapped in a
/// pending_op (its completion posted to the handler's executor, or `io_ex`). When `io_ex` is empty
/// (the handle has no stream or pipe end) the operation completes with error::not_open instead.
template <class Signature, class Executor, class CompletionToken, class Launch>
auto initiate_erased(CompletionToken&& token, const Executor& io_ex, Launch launch) {
    return asio::async_initiate<CompletionToken, Signature>(
        [](auto handler, const Executor& io_ex, Launch launch) {
            if (!has_target(io_ex))
                return complete_detached<Signature>(std::move(handler), io_ex, make_error_code(error::not_open));
            std::move(launch)(typename op_for<Signature>::type(std::move(handler), io_ex));
        },
        token, io_ex, std::move(launch));
}

/// A signal that re-emits `op`'s cancellation on `ex`, for an operation that runs as a coroutine of
/// its own: co_spawn it with asio::bind_cancellation_slot(signal->slot(), completion), and keep the
/// signal alive in that completion.
template <class Executor, class... Args>
std::shared_ptr<asio::cancellation_signal> forward_cancellation(pending_op<Args...>& op, const Executor& ex) {
    auto signal = std::make_shared<asio::cancellation_signal>();
    op.on_cancel([weak = std::weak_ptr<asio::cancellation_signal>(signal), ex](asio::cancellation_type type) {
        asio::dispatch(ex, [weak, type] {
            if (auto s = weak.lock()) s->emit(type);
        });
    });
    return signal;
}

}  // namespace h3co::detail
