// What makes destroying an execution context (io_context) free everything h3co has on it.
//
// A coroutine waiting in an h3co operation is owned by that operation's handler, which a
// pending_op holds; the pending_op lives in engine state (a stream, a pipe) that the coroutine's
// own handles keep alive. Nothing outside that cycle owns it, so Asio, which destroys only the
// handlers its own services hold, never frees it. Asio's I/O objects solve this with a service
// that owns their pending operations; this is h3co's: every pending_op registers here, on the
// context of the I/O executor it belongs to, and shutdown() (which ~io_context runs before it
// destroys anything) destroys each waiting handler without invoking it, as Asio's reactor and
// scheduler do with theirs. The coroutine frames then unwind through Asio's scheduler, and the
// handles they held free the engine state.
#pragma once

#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/query.hpp>

#include <mutex>

namespace h3co::detail {

class context_service;

/// A pending operation the context service can abandon.
class abandonable {
public:
    abandonable() = default;
    abandonable(const abandonable&) = delete;
    abandonable& operator=(const abandonable&) = delete;

    /// The context is shutting down: destroy the handler without invoking it, and never post it
    /// afterwards. Called once, without the service's lock held (destroying a handler may destroy
    /// other operations, which leave the service).
    virtual void abandon() noexcept = 0;

protected:
    ~abandonable() = default;
    /// Registers with the service of `ctx`. False: that context is shutting down (the caller
    /// abandons the operation at once, as Asio destroys what is posted to a context shut down).
    inline bool enter(asio::execution_context& ctx);
    /// Leaves the service (no-op when not registered): before posting, and when destroyed.
    inline void leave() noexcept;

private:
    friend class context_service;
    context_service* service_ = nullptr;  ///< set while registered
    abandonable* prev_ = nullptr;
    abandonable* next_ = nullptr;
};

class context_service final : public asio::execution_context::service {
public:
    inline static asio::execution_context::id id;

    explicit context_service(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

private:
    friend class abandonable;

    bool add(abandonable& op) {
        std::lock_guard lock(mutex_);
        if (shut_down_) return false;
        op.service_ = this;
        op.prev_ = nullptr;
        op.next_ = head_;
        if (head_) head_->prev_ = &op;
        head_ = &op;
        return true;
    }

    void remove(abandonable& op) noexcept {
        std::lock_guard lock(mutex_);
        if (op.service_ == this) unlink(op);
    }

    void unlink(abandonable& op) noexcept {
        if (op.prev_)
            op.prev_->next_ = op.next_;
        else
            head_ = op.next_;
        if (op.next_) op.next_->prev_ = op.prev_;
        op.prev_ = op.next_ = nullptr;
        op.service_ = nullptr;
    }

    /// One at a time, each unlinked before it is abandoned: abandoning one may destroy others
    /// (their frames hold them), which then leave the list themselves.
    void shutdown() override {
        for (;;) {
            abandonable* op = nullptr;
            {
                std::lock_guard lock(mutex_);
                shut_down_ = true;
                op = head_;
                if (!op) return;
                unlink(*op);
            }
            op->abandon();
        }
    }

    std::mutex mutex_;
    abandonable* head_ = nullptr;
    bool shut_down_ = false;
};

inline bool abandonable::enter(asio::execution_context& ctx) {
    return asio::use_service<context_service>(ctx).add(*this);
}

inline void abandonable::leave() noexcept {
    if (service_) service_->remove(*this);
}

/// The execution context `ex` runs on; null for an executor without one (an empty
/// any_io_executor, use_future's).
template <class Executor>
asio::execution_context* context_of(const Executor& ex) noexcept {
    try {
        if constexpr (asio::can_query<const Executor&, asio::execution::context_t>::value)
            return &asio::query(ex, asio::execution::context);
        else if constexpr (requires { ex.context(); })
            return &ex.context();
        else
            return nullptr;
    } catch (...) {
        return nullptr;
    }
}

}  // namespace h3co::detail
