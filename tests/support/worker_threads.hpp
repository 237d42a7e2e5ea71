// The io_context-per-thread pattern a multi-worker server runs on: `n` io_contexts, each run by
// a thread of its own until stop().
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <h3co/server.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace test {

struct worker_threads {
    std::vector<std::unique_ptr<asio::io_context>> ios;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    std::vector<std::thread> threads;
    std::vector<std::thread::id> ids;  ///< the threads' IDs, once started

    explicit worker_threads(int n) {
        for (int i = 0; i < n; ++i) {
            ios.push_back(std::make_unique<asio::io_context>(1));
            guards.push_back(asio::make_work_guard(*ios.back()));
        }
    }
    std::vector<asio::any_io_executor> executors() const {
        std::vector<asio::any_io_executor> out;
        for (const auto& io : ios) out.push_back(io->get_executor());
        return out;
    }
    void start() {
        for (auto& io : ios) threads.emplace_back([&io] { io->run(); });
        for (auto& t : threads) ids.push_back(t.get_id());
    }
    void stop() {
        guards.clear();
        for (auto& io : ios) io->stop();
        for (auto& t : threads) t.join();
        threads.clear();
    }
    ~worker_threads() { stop(); }
};

/// Declared after the server: stops the worker threads before the server goes, even when a
/// REQUIRE throws.
struct stop_first {
    worker_threads& w;
    ~stop_first() { w.stop(); }
};

/// Waits (bounded) until every hand-off posted between the workers has been taken: those posted
/// just before the clients left may still be queued, and stopping the io_contexts would drop them.
inline void settle_handoffs(h3co::server& server) {
    for (int tries = 0; tries < 5000; ++tries) {
        std::uint64_t sent = 0, received = 0;
        for (const auto& worker : server.per_worker_stats()) {
            sent += worker.handoffs_sent;
            received += worker.handoffs_received;
        }
        if (sent == received) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

}  // namespace test
