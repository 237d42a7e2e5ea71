// A suspended asynchronous operation, type-erased so the (non-template) engine can hold it.
//
// The engine runs inside ngtcp2/nghttp3 callbacks; a user's handler must never run there, so
// completion is always posted to the handler's associated executor. Holding a work guard keeps that
// executor's context alive while the operation waits.
//
// While it waits, the operation is registered with the context service of its I/O executor's
// context (io/context_service.hpp): when that context shuts down, the handler is destroyed without
// being invoked, which frees a coroutine waiting on it (and breaks the cycle frame -> handle ->
// engine state -> pending_op -> handler -> frame).
#pragma once

#include <h3co/detail/io/context_service.hpp>
#include <h3co/detail/live_count.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

namespace h3co::detail {

struct pending_op_tag;  ///< live_count<pending_op_tag>(): operations alive (waiting or posted)

template <class... Args>
class pending_op {
public:
    pending_op() = default;

    /// Wraps `handler`; `on_cancel` runs if the handler's cancellation slot is signalled while the
    /// operation is pending (the engine then resets the stream and completes the operation).
    template <class Handler, class IoExecutor, class OnCancel>
    pending_op(Handler&& handler, const IoExecutor& io_executor, OnCancel&& on_cancel)
        : impl_(std::make_unique<impl<std::decay_t<Handler>, IoExecutor>>(std::forward<Handler>(handler),
                                                                          io_executor)) {
        impl_->connect_cancellation(std::forward<OnCancel>(on_cancel));
    }

    template <class Handler, class IoExecutor>
    pending_op(Handler&& handler, const IoExecutor& io_executor)
        : impl_(std::make_unique<impl<std::decay_t<Handler>, IoExecutor>>(std::forward<Handler>(handler),
                                                                          io_executor)) {}

    pending_op(pending_op&&) noexcept = default;
    pending_op& operator=(pending_op&&) noexcept = default;
    ~pending_op() = default;

    explicit operator bool() const noexcept { return impl_ != nullptr; }

    /// `on_cancel` runs if the handler's cancellation slot is signalled while the operation is
    /// pending (for an op made without one).
    template <class OnCancel>
    void on_cancel(OnCancel&& f) {
        if (impl_) impl_->connect_cancellation(std::forward<OnCancel>(f));
    }

    /// Posts the handler with `args`; the op becomes empty. No-op when already empty.
    void complete(Args... args) {
        if (!impl_) return;
        auto released = std::move(impl_);
        released->post(std::move(released), std::move(args)...);
    }

private:
    struct base : abandonable {
        virtual ~base() = default;
        virtual void post(std::unique_ptr<base> self, Args... args) = 0;
        virtual void run(std::unique_ptr<base> self) = 0;
        virtual void connect_cancellation(std::function<void(asio::cancellation_type)> on_cancel) = 0;
    };

    /// What is posted: one type per completion signature, not per handler, so that Asio's posting
    /// machinery is compiled once per executor type rather than once per handler type.
    struct posted {
        std::unique_ptr<base> op;
        void operator()() {
            base* p = op.get();
            p->run(std::move(op));
        }
    };

    template <class Handler, class IoExecutor>
    struct impl final : base {
        using work_executor = asio::associated_executor_t<Handler, IoExecutor>;
        std::optional<Handler> handler;  ///< empty once abandoned (the context shut down)
        asio::executor_work_guard<work_executor> work;
        asio::associated_cancellation_slot_t<Handler> slot;
        std::optional<std::tuple<Args...>> results;  ///< set when completed, until the handler runs
        bool slot_cleared = false;                    ///< post() or abandon() has removed our canceller
        counted<pending_op_tag> counted_;             ///< h3co::testing::live_pending_ops()

        impl(Handler h, const IoExecutor& io)
            : handler(std::move(h)),
              work(asio::get_associated_executor(*handler, io)),
              slot(asio::get_associated_cancellation_slot(*handler)) {
            // The I/O object's context owns the wait, as Asio's services own their operations'.
            auto* ctx = context_of(io);
            if (!ctx) ctx = context_of(work.get_executor());
            if (ctx && !this->enter(*ctx)) abandon();
        }

        ~impl() override {
            this->leave();
            if (!slot_cleared && slot.is_connected()) slot.clear();
        }

        void connect_cancellation(std::function<void(asio::cancellation_type)> on_cancel) override {
            if (!handler || !slot.is_connected()) return;
            slot.template emplace<canceller>(std::move(on_cancel));
        }

        void post(std::unique_ptr<base> self, Args... args) override {
            this->leave();  // Asio owns it from here (its scheduler destroys it if never run)
            if (!handler) return;  // abandoned: the handler is gone and must never run
            // Cleared here, on the engine's executor, and never again: the handler's executor (where
            // this object dies) may differ, and a cancellation signal must be touched from one place.
            if (slot.is_connected()) slot.clear();
            slot_cleared = true;
            results.emplace(std::move(args)...);
            auto executor = work.get_executor();
            asio::post(executor, posted{std::move(self)});
        }

        void run(std::unique_ptr<base> self) override {
            auto h = std::move(*handler);
            auto r = std::move(*results);
            self.reset();  // free before the handler runs: the handler may start the next operation
            std::apply(std::move(h), std::move(r));
        }

        /// Destroys the handler without invoking it (the context shuts down). The canceller goes
        /// first: the cancellation slot lives in what the handler owns. The handler is destroyed
        /// last, from a local: that may free whatever holds this op, and this object with it.
        void abandon() noexcept override {
            if (!handler) return;
            if (!slot_cleared && slot.is_connected()) slot.clear();
            slot_cleared = true;
            work.reset();
            [[maybe_unused]] Handler doomed = std::move(*handler);
            handler.reset();
        }
    };

    struct canceller {
        std::function<void(asio::cancellation_type)> on_cancel;
        explicit canceller(std::function<void(asio::cancellation_type)> f) : on_cancel(std::move(f)) {}
        void operator()(asio::cancellation_type type) {
            if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                         asio::cancellation_type::total)) != asio::cancellation_type::none) {
                auto f = on_cancel;  // the slot may be cleared (destroying us) inside the call
                f(type);
            }
        }
    };

    std::unique_ptr<base> impl_;
};

}  // namespace h3co::detail
