// --workers N for the example servers: N io_contexts, one per thread (Asio's io_context-per-core
// pattern); the server takes their executors.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace examples {

class worker_pool {
public:
    /// `count` workers (from --workers; at least 1).
    explicit worker_pool(const std::string& count) {
        const int n = std::stoi(count);
        if (n < 1 || n > 256) throw std::invalid_argument("--workers: 1 to 256");
        for (int i = 0; i < n; ++i) ios_.push_back(std::make_unique<asio::io_context>(1));
    }

    std::vector<asio::any_io_executor> executors() const {
        std::vector<asio::any_io_executor> out;
        for (const auto& io : ios_) out.push_back(io->get_executor());
        return out;
    }
    /// The first worker's io_context (the main thread runs it; signals wait there).
    asio::io_context& first() { return *ios_.front(); }

    /// Runs every worker, the first on this thread, until stop(); then joins the others.
    void run() {
        std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
        for (auto& io : ios_) guards.push_back(asio::make_work_guard(*io));
        std::vector<std::thread> threads;
        for (std::size_t i = 1; i < ios_.size(); ++i) threads.emplace_back([io = ios_[i].get()] { io->run(); });
        ios_.front()->run();
        for (auto& t : threads) t.join();
    }
    /// Any thread: every worker's run() returns.
    void stop() {
        for (auto& io : ios_) io->stop();
    }

private:
    std::vector<std::unique_ptr<asio::io_context>> ios_;
};

}  // namespace examples
