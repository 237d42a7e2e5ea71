// The shared state behind a pipe's two ends: a bounded byte ring, at most one waiting reader and
// one waiting writer. Runs on one executor; no locks.
//
// Besides copying reads, the reader can borrow a view of the next bytes (start_view / consume):
// the writer's own buffer, so that a body fed through a pipe is copied once, from the writer's
// buffer into the stream's send buffer (which then does the buffering). While a view of the
// writer's buffer is out, the writer's operation does not complete (not even when cancelled or
// closed, nor when the reader closes), so the buffer stays valid until consume(), or until the
// reader's handle is gone (release_reader()).
#pragma once

#include <h3co/detail/async_support.hpp>
#include <h3co/detail/buffer_walk.hpp>
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
    using view_op = pending_op<std::error_code, asio::const_buffer>;

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
        if (reader_closed_) return op.complete(make_error_code(error::not_open), 0);
        if (reader_op_ || view_op_ || lent_ != lent_from::none)
            return op.complete(make_error_code(error::operation_in_progress), 0);
        pending_read_.assign(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
        reader_op_ = std::move(op);
        pump();
    }

    /// Completes with a view of the next bytes (empty with error::eof or the writer's error at the
    /// end), valid until consume(): the writer's own buffer when the ring is empty, else the ring's.
    void start_view(view_op op) {
        if (reader_closed_) return op.complete(make_error_code(error::not_open), asio::const_buffer());
        if (reader_op_ || view_op_ || lent_ != lent_from::none)
            return op.complete(make_error_code(error::operation_in_progress), asio::const_buffer());
        view_op_ = std::move(op);
        view_reader_ = true;
        pump();
    }

    /// Gives back the view, of which the first `n` bytes were used.
    void consume(std::size_t n) {
        const auto from = lent_;
        n = std::min(n, lent_size_);
        lent_ = lent_from::none;
        lent_size_ = 0;
        if (from == lent_from::ring) ring_.consume(n);
        if (from == lent_from::writer) written_ += n;
        if (reader_closed_) {  // the view was the last thing the closed reader held
            if (from != lent_from::none) drop_reader_side();
            return;
        }
        if (from == lent_from::writer) {
            if (writer_op_ && (write_cancelled_ || written_ == asio::buffer_size(pending_write_))) {
                write_cancelled_ = false;
                writer_op_.complete(written_ == asio::buffer_size(pending_write_)
                                        ? std::error_code()
                                        : make_error_code(asio::error::operation_aborted),
                                    written_);
            } else if (writer_op_ && writer_closed_) {
                writer_op_.complete(make_error_code(error::not_writable), written_);
            }
        }
        pump();
    }

    /// Ends the data: the reader gets `reason` (error::eof for a clean end) once the ring is drained.
    void close_writer(std::error_code reason) {
        if (writer_closed_) return;
        writer_closed_ = true;
        close_reason_ = reason;
        // A lent buffer must outlive the view: consume() completes the write instead.
        if (writer_op_ && lent_ != lent_from::writer) writer_op_.complete(make_error_code(error::not_writable), written_);
        pump();
    }

    /// Stops reading. A view still out stays valid (the ring's storage, the writer's buffer) until
    /// consume() or release_reader(); the writer fails with broken_pipe then, or at once if none is.
    void close_reader() {
        if (reader_closed_) return;
        reader_closed_ = true;
        if (reader_op_) reader_op_.complete(make_error_code(error::broken_pipe), 0);
        if (view_op_) view_op_.complete(make_error_code(error::broken_pipe), asio::const_buffer());
        if (lent_ != lent_from::ring) {
            ring_.consume(ring_.size());
            ring_.shrink();
        }
        if (writer_op_ && lent_ != lent_from::writer) writer_op_.complete(make_error_code(error::broken_pipe), written_);
    }

    /// The reader's handle is gone: so is any view it held.
    void release_reader() {
        close_reader();
        if (lent_ == lent_from::none) return;
        lent_ = lent_from::none;
        lent_size_ = 0;
        drop_reader_side();
    }

    void cancel_read() {
        if (reader_op_) reader_op_.complete(make_error_code(asio::error::operation_aborted), 0);
        if (view_op_) view_op_.complete(make_error_code(asio::error::operation_aborted), asio::const_buffer());
    }
    void cancel_write() {
        if (!writer_op_) return;
        if (lent_ == lent_from::writer) {
            write_cancelled_ = true;  // consume() completes it, once the view is given back
            return;
        }
        writer_op_.complete(make_error_code(asio::error::operation_aborted), written_);
    }

    std::size_t buffered() const noexcept { return ring_.size(); }

private:
    // The reader is closed and holds no view: free the buffer, fail the writer.
    void drop_reader_side() {
        ring_.consume(ring_.size());
        ring_.shrink();
        if (writer_op_) writer_op_.complete(make_error_code(error::broken_pipe), written_);
    }

    // Moves bytes writer -> ring -> reader until nothing more can move, then completes whoever is
    // done. A reader that takes views gets the writer's buffer itself: nothing goes into the ring
    // (whose earlier bytes are lent first), since the reader's destination is the buffer.
    void pump() {
        if (writer_op_ && !reader_closed_ && !view_reader_) {
            written_ += for_each_buffer_from(pending_write_, written_,
                                             [&](const void* p, std::size_t n) { return ring_.write(p, n); });
            if (written_ == asio::buffer_size(pending_write_)) writer_op_.complete({}, written_);
        }
        if (view_op_) return lend();
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

    // Completes the waiting view with the ring's first bytes, or else the writer's next buffer.
    void lend() {
        if (!ring_.empty()) {
            ring_.reserve();  // writes while the view is out must not move the ring's storage
            const auto first = ring_.spans()[0];
            lent_ = lent_from::ring;
            lent_size_ = first.size();
            return view_op_.complete({}, asio::const_buffer(first.data(), first.size()));
        }
        if (writer_op_ && written_ < asio::buffer_size(pending_write_)) {
            asio::const_buffer next;  // the rest of the buffer holding byte `written_`
            for_each_buffer_from(pending_write_, written_, [&](const void* p, std::size_t n) {
                next = asio::const_buffer(p, n);
                return std::size_t{0};  // taken: none, so only this buffer
            });
            lent_ = lent_from::writer;
            lent_size_ = next.size();
            return view_op_.complete({}, next);
        }
        if (writer_closed_) {
            ring_.shrink();
            view_op_.complete(close_reason_, asio::const_buffer());
        }
    }

    enum class lent_from { none, ring, writer };

    byte_ring ring_;
    io_op reader_op_;
    io_op writer_op_;
    view_op view_op_;
    lent_from lent_ = lent_from::none;  ///< where the view given out points
    std::size_t lent_size_ = 0;
    bool write_cancelled_ = false;      ///< cancelled while its buffer was lent
    bool view_reader_ = false;          ///< the reader takes views: the ring is no longer filled
    std::vector<asio::mutable_buffer> pending_read_;
    std::vector<asio::const_buffer> pending_write_;
    std::size_t written_ = 0;
    bool writer_closed_ = false;
    bool reader_closed_ = false;
    std::error_code close_reason_;
};

}  // namespace h3co::detail
