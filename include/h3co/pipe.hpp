// An asynchronous pipe of bytes with a bounded buffer: the C++ counterpart of Go's io.Pipe used as a
// request body. One coroutine writes and closes; the request reads it as the body goes out.
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/detail/async_support.hpp>
#include <h3co/detail/erased_initiate.hpp>
#include <h3co/detail/pipe_state.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>

#include <memory>
#include <utility>

namespace h3co {

/// Default pipe buffer: enough to keep a QUIC stream busy, small enough to bound memory.
inline constexpr std::size_t default_pipe_capacity = 64 * 1024;

template <class Executor = asio::any_io_executor>
class basic_pipe_reader;
template <class Executor = asio::any_io_executor>
class basic_pipe_writer;

/// Threads (both ends): the pipe lives on the executor given to make_pipe(); every member of both
/// ends dispatches there, so the two ends may be used from different threads (one thread per end).
/// Emit cancellation signals on that executor.
///
/// The reading end. Models Asio's AsyncReadStream. Reading after the writer closed gives
/// h3co::error::eof (or the error the writer closed with).
template <class Executor>
class basic_pipe_reader {
public:
    using executor_type = Executor;  ///< the executor given to make_pipe()
    /// The same reader type on another executor type (Asio's rebind_executor convention).
    template <class Other>
    struct rebind_executor {
        using other = basic_pipe_reader<Other>;  ///< basic_pipe_reader<Other>
    };

    /// Takes the reading end over; `other` is left without one.
    basic_pipe_reader(basic_pipe_reader&&) noexcept = default;
    /// Drops this reader (see the destructor), then takes over `other`'s end.
    basic_pipe_reader& operator=(basic_pipe_reader&& other) noexcept {
        if (this != &other) {
            release();
            state_ = std::move(other.state_);
            executor_ = std::move(other.executor_);
        }
        return *this;
    }
    /// Dropping the reader closes it and gives back a view still out: the writer's pending or next
    /// write fails with error::broken_pipe.
    ~basic_pipe_reader() { release(); }

    /// The executor given to make_pipe().
    executor_type get_executor() const noexcept { return executor_; }

    /// Reads at least one byte, or completes with eof / the writer's error; error::not_open after
    /// close() or on a moved-from reader. Completion: void(std::error_code, std::size_t).
    template <class MutableBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_erased<detail::io_signature>(
            std::forward<CompletionToken>(token), executor_,
            [state = state_, ex = executor_, buffers](detail::pipe_state::io_op op) mutable {
                if (!state) return op.complete(make_error_code(error::not_open), 0);
                op.on_cancel([weak = std::weak_ptr<detail::pipe_state>(state), ex](auto) {
                    asio::dispatch(ex, [weak] {
                        if (auto s = weak.lock()) s->cancel_read();
                    });
                });
                asio::dispatch(ex, [state, buffers, op = std::move(op)]() mutable { state->start_read(buffers, std::move(op)); });
            });
    }

    /// async_read_some() under the name h3co's streams use.
    template <class MutableBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto read_some(const MutableBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return async_read_some(buffers, std::forward<CompletionToken>(token));
    }

    /// Reads without copying: completes with a view of the next bytes, lent until consume(), or an
    /// empty view with h3co::error::eof (or the writer's error) at the end. The view is the
    /// writer's own buffer, and the writer's write() completes only once its bytes are consumed, so
    /// whoever reads the view makes the one copy (h3co's request body pump copies straight into the
    /// stream's send buffer). Once views are used, the pipe's buffer stays empty. One read or view
    /// at a time. Completion: void(std::error_code, asio::const_buffer).
    template <class CompletionToken = detail::default_token_t<Executor>>
    auto async_read_view(CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_erased<void(std::error_code, asio::const_buffer)>(
            std::forward<CompletionToken>(token), executor_,
            [state = state_, ex = executor_](detail::pipe_state::view_op op) mutable {
                if (!state) return op.complete(make_error_code(error::not_open), asio::const_buffer());
                op.on_cancel([weak = std::weak_ptr<detail::pipe_state>(state), ex](auto) {
                    asio::dispatch(ex, [weak] {
                        if (auto s = weak.lock()) s->cancel_read();
                    });
                });
                asio::dispatch(ex, [state, op = std::move(op)]() mutable { state->start_view(std::move(op)); });
            });
    }

    /// Gives back the view from async_read_view(), of which the first `n` bytes were used (the
    /// rest is offered again by the next view). Also after close(): see there.
    void consume(std::size_t n) {
        if (!state_) return;
        asio::dispatch(executor_, [s = state_, n] { s->consume(n); });
    }

    /// Stops reading: a waiting or later write fails with h3co::error::broken_pipe, and later reads
    /// with error::not_open. A view still out stays valid, and a write whose buffer it shows stays
    /// pending, until the view is given back with consume() (or the reader is dropped).
    void close() {
        if (!state_) return;
        asio::dispatch(executor_, [s = state_] { s->close_reader(); });
    }

private:
    template <class E>
    friend auto make_pipe(const E&, std::size_t);
    basic_pipe_reader(std::shared_ptr<detail::pipe_state> s, Executor ex)
        : state_(std::move(s)), executor_(std::move(ex)) {}

    void release() {
        if (!state_) return;
        asio::dispatch(executor_, [s = std::move(state_)] { s->release_reader(); });
    }

    std::shared_ptr<detail::pipe_state> state_;
    Executor executor_;
};

/// The writing end. Models Asio's AsyncWriteStream. write() waits while the pipe is full:
/// that wait is the backpressure that keeps a fast producer from outrunning the network.
template <class Executor>
class basic_pipe_writer {
public:
    using executor_type = Executor;  ///< the executor given to make_pipe()
    /// The same writer type on another executor type (Asio's rebind_executor convention).
    template <class Other>
    struct rebind_executor {
        using other = basic_pipe_writer<Other>;  ///< basic_pipe_writer<Other>
    };

    /// Takes the writing end over; `other` is left without one.
    basic_pipe_writer(basic_pipe_writer&&) noexcept = default;
    /// Drops this writer (see the destructor), then takes over `other`'s end.
    basic_pipe_writer& operator=(basic_pipe_writer&& other) noexcept {
        abandon();
        state_ = std::move(other.state_);
        executor_ = std::move(other.executor_);
        return *this;
    }
    /// Dropping a writer that was never closed is an error for the reader (broken_pipe), never a
    /// silently truncated body.
    ~basic_pipe_writer() { abandon(); }

    /// The executor given to make_pipe().
    executor_type get_executor() const noexcept { return executor_; }

    /// Writes all of `buffers`, waiting for room as needed. Completion: void(std::error_code,
    /// std::size_t); error::broken_pipe once the reader is closed, error::not_writable after close(),
    /// error::not_open on a moved-from writer.
    template <class ConstBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto write(const ConstBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return detail::initiate_erased<detail::io_signature>(
            std::forward<CompletionToken>(token), executor_,
            [state = state_, ex = executor_, buffers](detail::pipe_state::io_op op) mutable {
                if (!state) return op.complete(make_error_code(error::not_writable), 0);
                op.on_cancel([weak = std::weak_ptr<detail::pipe_state>(state), ex](auto) {
                    asio::dispatch(ex, [weak] {
                        if (auto s = weak.lock()) s->cancel_write();
                    });
                });
                asio::dispatch(ex, [state, buffers, op = std::move(op)]() mutable { state->start_write(buffers, std::move(op)); });
            });
    }

    /// AsyncWriteStream: same as write() (a pipe write takes everything it can wait for).
    template <class ConstBufferSequence, class CompletionToken = detail::default_token_t<Executor>>
    auto async_write_some(const ConstBufferSequence& buffers, CompletionToken&& token = CompletionToken{}) {
        return write(buffers, std::forward<CompletionToken>(token));
    }

    /// Ends the data: the reader sees h3co::error::eof after the buffered bytes.
    void close() { close(end_of_stream()); }

    /// Ends the data with an error: the reader sees `reason` (a request body fed by this pipe is
    /// then reset instead of finished).
    void close(std::error_code reason) {
        if (!state_) return;
        asio::dispatch(executor_, [s = std::move(state_), reason] { s->close_writer(reason); });
    }

private:
    template <class E>
    friend auto make_pipe(const E&, std::size_t);
    basic_pipe_writer(std::shared_ptr<detail::pipe_state> s, Executor ex)
        : state_(std::move(s)), executor_(std::move(ex)) {}

    void abandon() {
        if (state_) close(make_error_code(error::broken_pipe));
    }

    std::shared_ptr<detail::pipe_state> state_;
    Executor executor_;
};

/// basic_pipe_reader on asio::any_io_executor.
using pipe_reader = basic_pipe_reader<>;
/// basic_pipe_writer on asio::any_io_executor.
using pipe_writer = basic_pipe_writer<>;

/// Creates a connected pair {reader, writer} whose operations run on `executor`, buffering up to
/// `capacity` bytes: a write waits while the buffer is full.
template <class Executor>
auto make_pipe(const Executor& executor, std::size_t capacity = default_pipe_capacity) {
    auto state = std::make_shared<detail::pipe_state>(capacity);
    return std::pair{basic_pipe_reader<Executor>(state, executor), basic_pipe_writer<Executor>(state, executor)};
}

}  // namespace h3co

#if defined(H3CO_SEPARATE_COMPILATION)
// Compiled once, in <h3co/src.hpp>, for the default executor.
namespace h3co {
extern template class basic_pipe_reader<asio::any_io_executor>;
extern template class basic_pipe_writer<asio::any_io_executor>;
}  // namespace h3co
#endif
