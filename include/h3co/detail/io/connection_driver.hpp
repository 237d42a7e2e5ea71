// What every connection's I/O does around its sans-I/O session: reads the clock and hands `now` in,
// coalesces flush requests into one flush per turn of the executor, drains the session's outbox
// into the socket (transmit()), waits for the socket when it is full, and keeps one timer armed at
// the session's expiry. Shared by client and server connections.
#pragma once

#include <h3co/detail/io/io_timer.hpp>
#include <h3co/detail/live_count.hpp>
#include <h3co/detail/session.hpp>

#include <asio/post.hpp>

#include <chrono>
#include <limits>
#include <memory>
#include <span>

namespace h3co::detail {

struct connection_tag;  ///< live_count<connection_tag>(): connections (client and server) alive

template <class Executor>
class connection_driver : public session {
public:
    using executor_type = Executor;
    executor_type get_executor() const noexcept { return executor_; }

    /// The clock this connection runs on (steady_now_ns(), or a virtual network's; see virtual_io.hpp).
    std::uint64_t now() const noexcept { return timer_.now(); }
    /// The virtual network this connection runs on; null: real sockets.
    virtual_network* network() const noexcept { return net_; }

protected:
    connection_driver(Executor ex, session_role role, const connection_options& options, std::shared_ptr<tls_context> tls)
        : session(role, options, std::move(tls)), executor_(ex), timer_(ex), net_(virtual_network_of(ex)) {}

    /// Sends the runs in order with as few system calls as the kernel allows. Returns how many were
    /// sent entirely (a partly sent run is advanced in place); fewer than given: the socket is full.
    virtual std::size_t transmit(std::span<datagram_run> runs) = 0;
    /// Called when transmit() hit a full socket buffer: flush again when it drains.
    virtual void wait_writable() = 0;
    /// The connection ended and its last packets (a CONNECTION_CLOSE) are sent: release the I/O.
    virtual void io_finished() {}

    /// Runs a flush now (after a receive batch), then re-arms the timer.
    void flush_now() {
        if (terminated()) return;
        before_flush();
        after_flush(flush_to_socket(now(), false));
    }

    /// One flush round: what was left from before goes first, then packets are written and sent a
    /// send's worth at a time, so the peer starts on them while more are written. With `keep_tail`
    /// the last, partial send's worth stays in the outbox for a caller that gathers several
    /// connections' packets into one system call. False: the socket is full.
    bool flush_to_socket(std::uint64_t now, bool keep_tail) {
        if (!send_outbox()) return false;
        flush_round round;
        bool all_sent = true;
        while (write_packets(now, round)) {
            if (!send_outbox()) {
                all_sent = false;
                break;
            }
        }
        end_flush(now, round);
        return all_sent && (keep_tail || send_outbox());
    }

    /// Hands the outbox to the socket; true when it took all of it.
    bool send_outbox() {
        auto& box = outbox();
        if (box.empty()) return true;
        box.sent(transmit(box.runs()), nullptr);  // a partly sent run was advanced in place
        return box.empty();
    }

    /// What follows a flush: wait for the socket if it was full (`all_sent` false), else go again
    /// or arm the timer.
    void after_flush(bool all_sent) {
        if (terminated()) return;
        if (!all_sent) return wait_writable();
        // Still more to send right away (the flush stopped at its packet limit, and ngtcp2 lets a
        // packet go up to 1 ms ahead of its pacing time): go again after the handlers already
        // queued, such as received ACKs, instead of arming the timer (a timerfd system call).
        if (last_flush_packets() > 0 && expiry() <= now() + 1'000'000) return wake_flush();
        arm_timer();
    }

    void wake_flush() override {
        if (flush_posted_ || terminated()) return;
        flush_posted_ = true;
        asio::post(executor_, [self = self_ptr()] {
            self->flush_posted_ = false;
            const auto now = self->now();
            if (now >= self->expiry()) self->on_timer(now);  // a deadline passed meanwhile
            self->flush_now();
        });
    }

    /// The session ended: once this callback is over, the CONNECTION_CLOSE it may have written goes
    /// out and the I/O is released.
    void on_terminated(std::error_code) override {
        stop_timer();
        asio::post(executor_, [self = self_ptr()] {
            self->send_outbox();
            self->io_finished();
        });
    }

    /// Closes the connection now (see session::close) and sends the CONNECTION_CLOSE at once, so
    /// that it leaves even if the socket is closed right after (a server closing everything).
    void close_now(std::uint64_t app_error_code, std::string_view reason) {
        close(now(), app_error_code, reason);
        send_outbox();
    }

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
        // ngtcp2 timestamps are the clock's nanoseconds; UINT64_MAX (no deadline) is handled above.
        timer_.expires_at(deadline);
        timer_.async_wait([self = self_ptr(), deadline](std::error_code ec) {
            if (ec || self->armed_ != deadline) return;
            self->armed_ = 0;
            const auto now = self->now();
            if (now >= self->expiry()) self->on_timer(now);
            self->flush_now();
        });
    }

private:
    std::shared_ptr<connection_driver> self_ptr() {
        return std::static_pointer_cast<connection_driver>(shared_from_this());
    }

    Executor executor_;
    io_timer<Executor> timer_;
    virtual_network* net_;
    std::uint64_t armed_ = 0;
    bool flush_posted_ = false;
    counted<connection_tag> counted_;  ///< h3co::testing::live_connections()
};

}  // namespace h3co::detail
