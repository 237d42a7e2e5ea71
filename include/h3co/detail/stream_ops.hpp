// How every stream operation starts: the handler is type-erased at once (erased_initiate.hpp),
// the operation hops onto the connection's executor and goes to the stream machine, with a
// canceller that resets the stream.
#pragma once

#include <h3co/detail/erased_initiate.hpp>
#include <h3co/detail/session.hpp>
#include <h3co/detail/stream_machine.hpp>
#include <h3co/detail/stream_state.hpp>

#include <asio/dispatch.hpp>

#include <memory>

namespace h3co::detail {

/// `start(stream_machine&, stream_state&, op)` runs on `ex`, with the session alive. A cancellation
/// of the operation (of kind `kind`) goes to the stream machine on `ex` too: one signalled from
/// another thread never touches the engine there. A handle without a stream (default-constructed or
/// moved from) gets error::not_open.
template <class Signature, class Executor, class CompletionToken, class Start>
auto initiate_stream_op(CompletionToken&& token, std::shared_ptr<stream_state> state, const Executor& ex,
                        stream_op_kind kind, Start start) {
    return initiate_erased<Signature>(
        std::forward<CompletionToken>(token), ex,
        [state = std::move(state), ex, kind, start = std::move(start)](typename op_for<Signature>::type op) mutable {
            op.on_cancel([weak = std::weak_ptr<stream_state>(state), ex, kind](asio::cancellation_type type) {
                asio::dispatch(ex, [weak, kind, type] {
                    if (auto s = weak.lock())
                        if (auto owner = s->owner.lock()) owner->streams().cancel(*s, kind, type);
                });
            });
            asio::dispatch(ex, [state = std::move(state), start = std::move(start), op = std::move(op)]() mutable {
                if (!state) return op_for<Signature>::fail(op, make_error_code(error::not_open));
                auto owner = state->owner.lock();
                if (!owner) return op_for<Signature>::fail(op, make_error_code(error::connection_closed));
                start(owner->streams(), *state, std::move(op));
            });
        });
}

}  // namespace h3co::detail
