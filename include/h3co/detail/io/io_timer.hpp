// The timer every h3co I/O object waits on: an Asio steady timer, or a virtual one when the
// context runs on a virtual_network (see virtual_io.hpp). Deadlines are in the clock's
// nanoseconds (steady_now_ns(), or the network's now_ns()).
#pragma once

#include <h3co/detail/io/virtual_io.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace h3co::detail {

template <class Executor>
class io_timer {
public:
    explicit io_timer(const Executor& ex) : timer_(ex), net_(virtual_network_of(ex)) {}
    ~io_timer() { cancel(); }
    io_timer(const io_timer&) = delete;
    io_timer& operator=(const io_timer&) = delete;

    /// The clock this timer runs on, in nanoseconds.
    std::uint64_t now() const noexcept { return now_ns(net_); }
    virtual_network* network() const noexcept { return net_; }

    /// Sets the deadline (clock nanoseconds); waits in progress complete with operation_aborted.
    void expires_at(std::uint64_t deadline_ns) {
        cancel();
        deadline_ = deadline_ns;
        if (!net_)
            timer_.expires_at(std::chrono::steady_clock::time_point(
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(deadline_ns))));
    }
    void expires_after(std::chrono::steady_clock::duration d) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
        expires_at(now() + static_cast<std::uint64_t>(ns > 0 ? ns : 0));
    }

    /// Waits for the deadline; `token` gets (error_code). Cancellable through its slot (any type).
    template <class Token>
    auto async_wait(Token&& token) {
        return asio::async_initiate<Token, void(std::error_code)>(
            [this](auto handler) {
                if (!net_) return timer_.async_wait(std::move(handler));
                start_virtual(std::move(handler));
            },
            token);
    }

    /// Completes every wait in progress with operation_aborted.
    void cancel() {
        if (!net_) {
            timer_.cancel();
            return;
        }
        for (const auto id : std::exchange(waits_, {})) net_->cancel_timer(id);
    }

private:
    template <class Handler>
    void start_virtual(Handler handler) {
        auto slot = asio::get_associated_cancellation_slot(handler);
        const auto ex = asio::get_associated_executor(handler, timer_.get_executor());
        // std::function needs a copyable callable: the handler lives behind a shared_ptr.
        auto held = std::make_shared<Handler>(std::move(handler));
        const auto id = net_->add_timer(deadline_, [held, ex](std::error_code ec) {
            asio::post(ex, [held, ec] {
                // As Asio's own operations do: the slot's handler goes before the completion runs.
                if (auto done = asio::get_associated_cancellation_slot(*held); done.is_connected()) done.clear();
                std::move(*held)(ec);
            });
        });
        waits_.push_back(id);
        if (slot.is_connected())
            slot.assign([net = net_, id](asio::cancellation_type) { net->cancel_timer(id); });
    }

    asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor> timer_;
    virtual_network* net_;
    std::uint64_t deadline_ = 0;
    std::vector<std::uint64_t> waits_;  ///< virtual waits in progress (a fired one cancels as a no-op)
};

}  // namespace h3co::detail
