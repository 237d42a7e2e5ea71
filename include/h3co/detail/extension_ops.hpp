// How the HTTP/3 extensions' operations start (datagrams, extended CONNECT): like every stream
// operation (stream_ops.hpp), but first waiting for the peer's SETTINGS, which say whether the
// peer takes them. A cancelled datagram operation completes with operation_aborted and leaves the
// stream alone (a datagram is not part of the stream's bytes), and the stream's other datagram
// operation too: each cancels itself only, by its own id, also while it waits for the SETTINGS.
#pragma once

#include <h3co/detail/erased_initiate.hpp>
#include <h3co/detail/session.hpp>
#include <h3co/detail/stream_machine.hpp>
#include <h3co/detail/stream_state.hpp>

#include <asio/dispatch.hpp>
#include <asio/error.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

namespace h3co::detail {

/// Calls `then(ec, session*, stream_state*)` on `ex` once the peer's SETTINGS are known: at once
/// when they are (or the connection has ended), else posted when they arrive. On an error both
/// pointers are null.
template <class Executor, class Then>
void after_peer_settings(std::shared_ptr<stream_state> state, const Executor& ex, Then then) {
    auto owner = state ? state->owner.lock() : nullptr;
    if (!owner) return then(make_error_code(error::connection_closed), nullptr, nullptr);
    if (owner->peer_settings_known() || owner->terminated()) return then(std::error_code{}, owner.get(), state.get());
    owner->after_peer_settings(pending_op<std::error_code>(
        [state = std::move(state), then = std::move(then)](std::error_code ec) mutable {
            auto owner = state->owner.lock();
            if (!ec && !owner) ec = make_error_code(error::connection_closed);
            if (ec) return then(ec, nullptr, nullptr);
            then(std::error_code{}, owner.get(), state.get());
        },
        ex));
}

/// A new id for a datagram operation, unique in the process: what its cancellation names.
inline std::uint64_t next_datagram_op_id() noexcept {
    static std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

/// A datagram operation: `start(session&, stream_state&, op, op_id)` runs on `ex` after the peer's
/// SETTINGS. What fails whatever the peer says (the stack, the options) fails at once. Cancelled
/// before it starts, the op completes with operation_aborted and never starts; after, the session
/// cancels the op with its id, and no other.
template <class Signature, class Executor, class CompletionToken, class Start>
auto initiate_datagram_op(CompletionToken&& token, std::shared_ptr<stream_state> state, const Executor& ex, Start start) {
    using op_type = typename op_for<Signature>::type;
    return initiate_erased<Signature>(
        std::forward<CompletionToken>(token), ex, [state = std::move(state), ex, start = std::move(start)](op_type op) mutable {
            // Until start() takes it, the op waits here; whoever finds it empty has nothing to do.
            auto waiting = std::make_shared<op_type>();
            const std::uint64_t id = next_datagram_op_id();
            op.on_cancel([weak_op = std::weak_ptr<op_type>(waiting), weak = std::weak_ptr<stream_state>(state), ex,
                          id](asio::cancellation_type) {
                asio::dispatch(ex, [weak_op, weak, id] {
                    if (auto w = weak_op.lock(); w && *w)
                        return op_for<Signature>::fail(*w, make_error_code(asio::error::operation_aborted));
                    if (auto s = weak.lock())
                        if (auto owner = s->owner.lock()) owner->cancel_datagram(*s, id);
                });
            });
            *waiting = std::move(op);
            asio::dispatch(ex, [state = std::move(state), ex, start = std::move(start), waiting = std::move(waiting), id]() mutable {
                if (!*waiting) return;  // cancelled already
                auto owner = state ? state->owner.lock() : nullptr;
                if (!owner) return op_for<Signature>::fail(*waiting, make_error_code(error::connection_closed));
                if (auto ec = owner->datagrams_unavailable(*state)) return op_for<Signature>::fail(*waiting, ec);
                after_peer_settings(std::move(state), ex,
                                    [start = std::move(start), waiting = std::move(waiting), id](std::error_code ec, session* s,
                                                                                                 stream_state* st) mutable {
                                        if (!*waiting) return;  // cancelled while it waited for the SETTINGS
                                        if (ec || !s || !st) return op_for<Signature>::fail(*waiting, ec);
                                        start(*s, *st, std::move(*waiting), id);
                                    });
            });
        });
}

/// Extended CONNECT (RFC 9220): the request's HEADERS go once the server's SETTINGS have said
/// whether it takes :protocol (the session refuses it otherwise).
template <class Executor>
void send_extended_connect(stream_state& st, const Executor& ex, request req, pending_op<std::error_code> op) {
    after_peer_settings(st.shared_from_this(), ex,
                        [req = std::move(req), op = std::move(op)](std::error_code ec, session* s, stream_state* st) mutable {
                            if (ec || !s || !st) return op.complete(ec);
                            if (st->send != send_state::idle && st->send_error) return op.complete(st->send_error);
                            s->streams().send_request_header(*st, req, std::move(op));
                        });
}

}  // namespace h3co::detail
