// How every stream operation starts: async_initiate, hop onto the connection's executor, wrap the
// handler (with a canceller that resets the stream) and hand it to the stream machine.
#pragma once

#include <h3co/detail/pending_op.hpp>
#include <h3co/detail/session.hpp>
#include <h3co/detail/stream_machine.hpp>
#include <h3co/detail/stream_state.hpp>

#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>

#include <memory>

namespace h3co::detail {

template <class Signature>
struct op_for;

template <class... Rest>
struct op_for<void(std::error_code, Rest...)> {
    using type = pending_op<std::error_code, Rest...>;
    static void fail(type& op, std::error_code ec) { op.complete(ec, std::decay_t<Rest>{}...); }
};

/// `start(stream_machine&, stream_state&, op)` runs on `ex`, with the session alive. Cancelling the
/// operation resets the stream, on `ex` too: a cancellation signalled from another thread never
/// touches the engine there.
template <class Signature, class Executor, class CompletionToken, class Start>
auto initiate_stream_op(CompletionToken&& token, std::shared_ptr<stream_state> state, const Executor& ex, Start start) {
    return asio::async_initiate<CompletionToken, Signature>(
        [](auto handler, std::shared_ptr<stream_state> state, Executor ex, Start start) {
            asio::dispatch(ex, [state = std::move(state), ex, start = std::move(start), h = std::move(handler)]() mutable {
                using traits = op_for<Signature>;
                std::weak_ptr<stream_state> weak = state;
                typename traits::type op(std::move(h), ex, [weak, ex](asio::cancellation_type) {
                    asio::dispatch(ex, [weak] {
                        if (auto s = weak.lock())
                            if (auto owner = s->owner.lock()) owner->streams().cancel(*s);
                    });
                });
                auto owner = state ? state->owner.lock() : nullptr;
                if (!owner) return traits::fail(op, make_error_code(error::connection_closed));
                start(owner->streams(), *state, std::move(op));
            });
        },
        token, std::move(state), ex, std::move(start));
}

}  // namespace h3co::detail
