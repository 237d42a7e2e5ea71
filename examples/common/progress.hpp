// The progress line of the command-line examples (h3upload, h3get): bytes, rate and ETA on stderr.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace examples {

/// "1.5 MiB": bytes in binary units.
inline std::string human_bytes(double bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    char out[32];
    std::snprintf(out, sizeof out, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return out;
}

/// A progress line on stderr, redrawn every 250 ms until finish(): "12.0 MiB / 100.0 MiB ( 12%)
/// 40.0 MiB/s  ETA 0:02" while running, "... in 2.5 s" at the end. Show it only when stderr is a
/// terminal (isatty). `done` tells how many bytes have moved; `total`, when known, adds the
/// percentage and the ETA.
class progress_meter {
public:
    using clock_type = std::chrono::steady_clock;

    progress_meter(asio::any_io_executor ex, std::function<std::uint64_t()> done, std::optional<std::uint64_t> total)
        : timer_(std::make_shared<asio::steady_timer>(ex)), done_(std::move(done)), total_(total) {
        draw(false);
        arm();
    }
    progress_meter(const progress_meter&) = delete;
    progress_meter& operator=(const progress_meter&) = delete;
    ~progress_meter() { finish(); }

    /// Draws the final line (and a newline) once; later calls do nothing.
    void finish() {
        if (finished_) return;
        finished_ = true;
        timer_->cancel();
        draw(true);
    }

private:
    void arm() {
        timer_->expires_after(std::chrono::milliseconds(250));
        // The handler owns the timer and checks the error before touching `this`: a cancelled
        // wait runs after finish(), possibly after the meter is gone.
        timer_->async_wait([this, keep = timer_](std::error_code ec) {
            if (ec) return;
            draw(false);
            arm();
        });
    }

    void draw(bool final) {
        const std::uint64_t done = done_();
        const double secs = std::chrono::duration<double>(clock_type::now() - start_).count();
        const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
        std::string line = human_bytes(static_cast<double>(done));
        char buf[64];
        if (total_) {
            const double pct = *total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(*total_) : 100.0;
            std::snprintf(buf, sizeof buf, " / %s (%3.0f%%)", human_bytes(static_cast<double>(*total_)).c_str(), pct);
            line += buf;
        }
        line += "  " + human_bytes(rate) + "/s";
        if (final) {
            std::snprintf(buf, sizeof buf, "  in %.1f s", secs);
            line += buf;
        } else if (total_ && rate > 0 && done < *total_) {
            const auto eta = static_cast<long long>(static_cast<double>(*total_ - done) / rate + 0.5);
            std::snprintf(buf, sizeof buf, "  ETA %lld:%02lld", eta / 60, eta % 60);
            line += buf;
        }
        std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
        std::fflush(stderr);
    }

    std::shared_ptr<asio::steady_timer> timer_;
    std::function<std::uint64_t()> done_;
    std::optional<std::uint64_t> total_;
    clock_type::time_point start_ = clock_type::now();
    bool finished_ = false;
};

}  // namespace examples
