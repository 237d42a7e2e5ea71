// Starting an asynchronous operation with its handler type-erased at once: the initiation wraps
// the handler in a pending_op, and everything after it (hopping onto the engine's executor,
// waiting, completing) is compiled once per operation instead of once per completion token type.
#pragma once

#include <h3co/detail/pending_op.hpp>

#include <asio/async_result.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/dispatch.hpp>

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
};

/// async_initiate for `Signature` whose initiation calls `launch(op)` with the handler wrapped in a
/// pending_op (its completion posted to the handler's executor, or `io_ex`).
template <class Signature, class Executor, class CompletionToken, class Launch>
auto initiate_erased(CompletionToken&& token, const Executor& io_ex, Launch launch) {
    return asio::async_initiate<CompletionToken, Signature>(
        [](auto handler, const Executor& io_ex, Launch launch) {
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
