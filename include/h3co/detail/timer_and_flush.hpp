// What every connection's I/O needs on top of the session: one coalesced flush per turn of the
// executor, and one timer armed at the session's expiry. Shared by client and server connections.
#pragma once

#include <h3co/detail/session.hpp>

#include <asio/basic_waitable_timer.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <limits>
#include <memory>

namespace h3co::detail {

template <class Executor>
class connection_driver : public session {
public:
    using executor_type = Executor;
    executor_type get_executor() const noexcept { return executor_; }

protected:
    connection_driver(Executor ex, session_role role, const connection_options& options, std::shared_ptr<tls_context> tls)
        : session(role, options, std::move(tls)), executor_(ex), timer_(ex) {}

    /// Runs the flush now (after a read batch), then re-arms the timer.
    void flush_now() {
        if (terminated()) return;
        before_flush();
        after_flush(flush());
    }

    /// What follows a flush: wait for the socket if it was full (`all_sent` false), else go again
    /// or arm the timer.
    void after_flush(bool all_sent) {
        if (terminated()) return;
        if (!all_sent) return wait_writable();
        // Still more to send right away (the flush stopped at its packet limit, and ngtcp2 lets a
        // packet go up to 1 ms ahead of its pacing time): go again after the handlers already
        // queued, such as received ACKs, instead of arming the timer (a timerfd system call).
        if (last_flush_packets() > 0 && expiry() <= steady_now_ns() + NGTCP2_MILLISECONDS) return wake_flush();
        arm_timer();
    }

    void wake_flush() override {
        if (flush_posted_ || terminated()) return;
        flush_posted_ = true;
        asio::post(executor_, [self = self_ptr()] {
            self->flush_posted_ = false;
            if (steady_now_ns() >= self->expiry()) self->on_timer();  // a deadline passed meanwhile
            self->flush_now();
        });
    }

    /// Called when transmit() hit a full socket buffer: resume flushing when it drains.
    virtual void wait_writable() = 0;

    void stop_timer() {
        armed_ = 0;
        timer_.cancel();
    }

    void arm_timer() {
        const std::uint64_t deadline = expiry();
        // A timer already due earlier stays: when it fires, the deadline is read again. This keeps
        // re-arming (a timerfd syscall each) to when the deadline moves earlier.
        if (armed_ != 0 && armed_ <= deadline) return;
        armed_ = deadline;
        if (deadline == std::numeric_limits<std::uint64_t>::max()) {
            timer_.cancel();
            return;
        }
        // ngtcp2 timestamps are steady-clock nanoseconds; UINT64_MAX (no deadline) is handled above.
        const auto when = std::chrono::steady_clock::time_point(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(deadline)));
        timer_.expires_at(when);
        timer_.async_wait([self = self_ptr(), deadline](std::error_code ec) {
            if (ec || self->armed_ != deadline) return;
            self->armed_ = 0;
            if (steady_now_ns() >= self->expiry()) self->on_timer();
            self->flush_now();
        });
    }

private:
    std::shared_ptr<connection_driver> self_ptr() {
        return std::static_pointer_cast<connection_driver>(shared_from_this());
    }

    Executor executor_;
    asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor> timer_;
    std::uint64_t armed_ = 0;
    bool flush_posted_ = false;
};

}  // namespace h3co::detail
