// The shared state behind a pipe's two ends: a bounded byte ring, at most one waiting reader and
// one waiting writer. Runs on one executor; no locks.
#pragma once

#include <h3co/detail/async_support.hpp>
#include <h3co/detail/byte_ring.hpp>
#include <h3co/detail/pending_op.hpp>
#include <h3co/error.hpp>

#include <asio/buffer.hpp>
#include <asio/error.hpp>

#include <vector>

namespace h3co::detail {

class pipe_state {
public:
    using io_op = pending_op<std::error_code, std::size_t>;

    explicit pipe_state(std::size_t capacity) : ring_(capacity) {}

    template <class ConstBufferSequence>
    void start_write(const ConstBufferSequence& buffers, io_op op) {
        if (writer_op_) return op.complete(make_error_code(error::operation_in_progress), 0);
        if (reader_closed_) return op.complete(make_error_code(error::broken_pipe), 0);
        if (writer_closed_) return op.complete(make_error_code(error::not_writable), 0);
        pending_write_.assign(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
        written_ = 0;
        writer_op_ = std::move(op);
        pump();
    }

    template <class MutableBufferSequence>
    void start_read(const MutableBufferSequence& buffers, io_op op) {
        if (reader_op_) return op.complete(make_error_code(error::operation_in_progress), 0);
        pending_read_.assign(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
        reader_op_ = std::move(op);
        pump();
    }

    /// Ends the data: the reader gets `reason` (error::eof for a clean end) once the ring is drained.
    void close_writer(std::error_code reason) {
        if (writer_closed_) return;
        writer_closed_ = true;
        close_reason_ = reason;
        if (writer_op_) writer_op_.complete(make_error_code(error::not_writable), written_);
        pump();
    }

    void close_reader() {
        if (reader_closed_) return;
        reader_closed_ = true;
        ring_.consume(ring_.size());
        ring_.shrink();
        if (reader_op_) reader_op_.complete(make_error_code(error::broken_pipe), 0);
        if (writer_op_) writer_op_.complete(make_error_code(error::broken_pipe), written_);
    }

    void cancel_read() {
        if (reader_op_) reader_op_.complete(make_error_code(asio::error::operation_aborted), 0);
    }
    void cancel_write() {
        if (writer_op_) writer_op_.complete(make_error_code(asio::error::operation_aborted), written_);
    }

    std::size_t buffered() const noexcept { return ring_.size(); }

private:
    // Moves bytes writer -> ring -> reader until nothing more can move, then completes whoever is done.
    void pump() {
        if (writer_op_ && !reader_closed_) {
            written_ += for_each_buffer_from(pending_write_, written_,
                                             [&](const void* p, std::size_t n) { return ring_.write(p, n); });
            if (written_ == asio::buffer_size(pending_write_)) writer_op_.complete({}, written_);
        }
        if (!reader_op_) return;
        if (asio::buffer_size(pending_read_) == 0) return reader_op_.complete({}, 0);
        if (!ring_.empty()) {
            std::size_t n = 0;
            for (const auto& b : pending_read_) {
                if (ring_.empty()) break;
                n += ring_.read(b.data(), b.size());
            }
            reader_op_.complete({}, n);
            // Room was made: let a waiting writer refill, so its completion is not delayed a round.
            if (writer_op_) pump();
            return;
        }
        if (writer_closed_) {
            ring_.shrink();
            reader_op_.complete(close_reason_, 0);
        }
    }

    byte_ring ring_;
    io_op reader_op_;
    io_op writer_op_;
    std::vector<asio::mutable_buffer> pending_read_;
    std::vector<asio::const_buffer> pending_write_;
    std::size_t written_ = 0;
    bool writer_closed_ = false;
    bool reader_closed_ = false;
    std::error_code close_reason_;
};

}  // namespace h3co::detail
