// Fuzz targets for the two buffers every body goes through: the byte ring (detail/byte_ring.hpp)
// and the pipe's shared state (detail/pipe_state.hpp). The input is a sequence of operations;
// each result is checked against a simple model (for the ring, the positions of a known byte
// stream; for the pipe, "what the reader gets is, in order, what the writes took").
//
// The pipe's operations complete through an asio::io_context polled as the input says. Every
// buffer handed to the pipe is freed the moment its operation completes, and a view is read only
// when it is consumed: a pipe that touched a buffer it no longer owns shows up under
// AddressSanitizer.
#pragma once

#include "fuzz_check.hpp"

#include <h3co/detail/byte_ring.hpp>
#include <h3co/detail/pipe_state.hpp>
#include <h3co/error.hpp>

#include <asio/error.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <utility>
#include <vector>

namespace h3co_fuzz {

/// The bytes a byte_ring model writes: byte i of the stream is at(i)[0]. The bytes look random
/// and repeat only after `period` bytes, more than a ring here ever holds plus one operation, so a
/// byte copied from the wrong place (or not copied) shows. Every comparison is one memcmp against
/// this table: the model costs no more than the ring, however long the input.
class byte_pattern {
public:
    static constexpr std::size_t period = 65'521;    ///< prime, > 20,000 (capacity) + 8,192 (operation)
    static constexpr std::size_t max_run = 32 * 1024;  ///< longest run at() must serve

    byte_pattern() : bytes_(period + max_run) {
        std::uint32_t x = 2463534242u;  // xorshift32: cheap and far from periodic at this length
        for (std::size_t i = 0; i < period; ++i) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            bytes_[i] = static_cast<std::uint8_t>(x >> 24);
        }
        std::copy_n(bytes_.begin(), max_run, bytes_.begin() + period);
    }

    /// The stream's bytes from position `pos` on (at most max_run of them).
    const std::uint8_t* at(std::uint64_t pos) const noexcept { return bytes_.data() + pos % period; }

    bool matches(const std::uint8_t* got, std::size_t len, std::uint64_t pos) const noexcept {
        return len == 0 || std::memcmp(got, at(pos), len) == 0;
    }

private:
    std::vector<std::uint8_t> bytes_;
};

inline const byte_pattern& pattern() {
    static const byte_pattern p;
    return p;
}

/// byte_ring against a model that is two stream positions: what was written, and what was read.
inline int byte_ring_ops(const std::uint8_t* data, std::size_t size) {
    input_reader in(data, size);
    const auto& stream = pattern();
    std::size_t max_capacity = in.u16() % 20'000;
    h3co::detail::byte_ring ring(max_capacity);
    std::uint64_t written = 0, head = 0;  // the ring holds the stream's bytes [head, written)
    std::vector<std::uint8_t> dst;
    for (int ops = 0; !in.done() && ops < 10'000; ++ops) {
        const std::size_t held = written - head;
        switch (in.byte() % 8) {
        case 0: {  // write
            const std::size_t n = in.u16() % 8192;
            const std::size_t taken = ring.write(stream.at(written), n);
            expect(taken == std::min(n, max_capacity - held), "write took what fits");
            written += taken;
            break;
        }
        case 1: {  // peek at an offset
            const std::size_t len = in.u16() % 8192, offset = in.u16() % 8192;
            dst.assign(len, 0);
            const std::size_t got = ring.peek(dst.data(), len, offset);
            expect(got == (offset >= held ? 0 : std::min(len, held - offset)), "peek length");
            expect(stream.matches(dst.data(), got, head + offset), "peek bytes");
            break;
        }
        case 2: {  // read
            const std::size_t len = in.u16() % 8192;
            dst.assign(len, 0);
            const std::size_t got = ring.read(dst.data(), len);
            expect(got == std::min(len, held), "read length");
            expect(stream.matches(dst.data(), got, head), "read bytes");
            head += got;
            break;
        }
        case 3: {  // consume
            const std::size_t n = in.u16() % 8192;
            ring.consume(n);
            head += std::min(n, held);
            break;
        }
        case 4: {  // spans from an offset
            const std::size_t offset = in.u16() % 8192;
            std::uint64_t pos = head + std::min(offset, held);
            for (const auto& span : ring.spans(offset)) {
                expect(stream.matches(span.data(), span.size(), pos), "spans bytes");
                pos += span.size();
            }
            expect(pos == written, "spans length");
            break;
        }
        case 5:
            ring.reserve();
            expect(ring.allocated() == max_capacity, "reserve allocates the capacity");
            break;
        case 6:
            ring.shrink();
            if (held == 0) expect(ring.allocated() == 0, "shrink frees an empty ring");
            break;
        case 7: {
            const std::size_t n = in.u16() % 20'000;
            ring.set_max_capacity(n);
            max_capacity = std::max(n, ring.allocated());
            break;
        }
        }
        const std::size_t now_held = written - head;
        expect(ring.size() == now_held, "size");
        expect(ring.empty() == (now_held == 0), "empty");
        expect(ring.max_capacity() == max_capacity, "max_capacity");
        expect(ring.space() == max_capacity - now_held, "space");
        expect(ring.allocated() <= max_capacity, "allocated within the capacity");
    }
    return 0;
}

/// pipe_state against "the reader gets, in order, the bytes the writes took".
class pipe_model {
public:
    explicit pipe_model(std::size_t capacity) : capacity_(capacity), pipe_(capacity) {}

    void write(std::size_t n) {
        const int id = next_id_++;
        // Each write offers the pattern's next bytes (so a refused write's bytes are skipped).
        const auto* bytes = pattern().at(next_position_);
        auto buf = std::make_unique<std::vector<std::uint8_t>>(bytes, bytes + n);
        next_position_ += n;
        const auto buffer = asio::buffer(*buf);
        writes_[id] = std::move(buf);
        ++started_;
        pipe_.start_write(buffer, io_op([this, id](std::error_code ec, std::size_t taken) { write_done(id, ec, taken); },
                                        io_.get_executor()));
    }

    void read(std::size_t n) {
        const int id = next_id_++;
        auto buf = std::make_unique<std::vector<std::uint8_t>>(n);
        const auto buffer = asio::buffer(*buf);
        reads_[id] = std::move(buf);
        ++started_;
        auto done = [this, id, after_close = reader_closed_](std::error_code ec, std::size_t got) {
            read_done(id, ec, got, after_close);
        };
        pipe_.start_read(buffer, io_op(std::move(done), io_.get_executor()));
    }

    void view() {
        ++started_;
        ++views_in_flight_;
        auto done = [this, after_close = reader_closed_](std::error_code ec, asio::const_buffer b) {
            view_done(ec, b, after_close);
        };
        pipe_.start_view(h3co::detail::pipe_state::view_op(std::move(done), io_.get_executor()));
    }

    /// Gives back the view, after reading its first `n` bytes (now, not when it was lent: a view
    /// must stay valid until it is consumed, even after close_reader()).
    void consume(std::size_t n) {
        // A view lent but not yet delivered (its handler is queued) is not ours to give back.
        if (!view_.data() && views_in_flight_ > 0) return;
        if (view_.data()) {
            const std::size_t used = std::min(n, view_.size());
            const auto* p = static_cast<const std::uint8_t*>(view_.data());
            received_.insert(received_.end(), p, p + used);
            check_received();
        }
        view_ = asio::const_buffer();
        pipe_.consume(n);
    }

    void close_writer(bool clean) {
        if (!writer_closed_) close_reason_ = clean ? make_error_code(h3co::error::eof) : make_error_code(h3co::error::broken_pipe);
        writer_closed_ = true;
        pipe_.close_writer(clean ? make_error_code(h3co::error::eof) : make_error_code(h3co::error::broken_pipe));
    }

    /// A view still out stays ours (pipe.hpp: valid until consume() or the reader is dropped).
    void close_reader() {
        reader_closed_ = true;
        pipe_.close_reader();
    }

    /// The reader's handle is dropped: with it any view still out.
    void release_reader() {
        reader_closed_ = true;
        view_ = asio::const_buffer();
        pipe_.release_reader();
    }

    void cancel_read() { pipe_.cancel_read(); }
    void cancel_write() { pipe_.cancel_write(); }

    void poll() {
        io_.restart();
        io_.poll();
        expect(pipe_.buffered() <= capacity_, "buffered within the capacity");
    }

    /// Drains: gives back any view, closes the writer, reads to the end, drops the reader; then
    /// everything started must have completed, and the reader must have got exactly what the
    /// writes took.
    void finish() {
        poll();
        consume(view_.size());
        close_writer(true);
        for (int i = 0; i < 10'000 && !reader_closed_ && !read_end_; ++i) {
            poll();
            if (view_.data()) consume(view_.size());
            read(4096);  // refused (operation_in_progress) while another read or a view waits
            poll();
        }
        expect(reader_closed_ || read_end_, "after the writer closed, reading reaches the end");
        release_reader();
        poll();
        expect(completed_ == started_, "every operation completed once");
        expect(writes_.empty() && reads_.empty(), "every buffer was given back");
        expect(received_.size() <= taken_.size(), "the reader got no more than the writes took");
        check_received();
        if (!reader_closed_early_) {
            expect(received_.size() == taken_.size(), "the reader got all the writes took");
            expect(read_end_error_ == close_reason_, "the reader ends with the writer's reason");
        }
    }

    void note_reader_closed_early() { reader_closed_early_ = reader_closed_early_ || !read_end_; }

private:
    using io_op = h3co::detail::pipe_state::io_op;

    void write_done(int id, std::error_code ec, std::size_t taken) {
        ++completed_;
        auto it = writes_.find(id);
        expect(it != writes_.end(), "a write completes once");
        auto& buf = *it->second;
        expect(taken <= buf.size(), "a write takes at most its buffer");
        if (!ec) expect(taken == buf.size(), "a write that succeeds takes everything");
        if (ec == h3co::error::operation_in_progress) {
            expect(taken == 0, "a refused write takes nothing");
            // A refused write's bytes never enter the stream: later writes' values follow on.
        } else {
            taken_.insert(taken_.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(taken));
        }
        writes_.erase(it);  // freed now: the pipe must not touch it again
        check_received();
    }

    void read_done(int id, std::error_code ec, std::size_t got, bool after_close) {
        ++completed_;
        auto it = reads_.find(id);
        expect(it != reads_.end(), "a read completes once");
        auto& buf = *it->second;
        expect(got <= buf.size(), "a read fills at most its buffer");
        if (after_close) {
            // Not the stream's end (that was, or was not, seen before): the reader is closed.
            expect(ec == h3co::error::not_open && got == 0, "a read after close_reader fails with not_open");
        } else if (ec != h3co::error::operation_in_progress) {
            received_.insert(received_.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got));
            if (ec && ec != asio::error::operation_aborted) end_read(ec);
        } else {
            expect(got == 0, "a refused read gets nothing");
        }
        reads_.erase(it);
        check_received();
    }

    void view_done(std::error_code ec, asio::const_buffer b, bool after_close) {
        ++completed_;
        --views_in_flight_;
        if (after_close) {
            expect(ec == h3co::error::not_open && b.size() == 0, "a view after close_reader fails with not_open");
            return;
        }
        if (ec == h3co::error::operation_in_progress) return;
        if (ec) {
            expect(b.size() == 0, "a failed view is empty");
            if (ec != asio::error::operation_aborted) end_read(ec);
            return;
        }
        view_ = b;
    }

    void end_read(std::error_code ec) {
        if (ec == h3co::error::broken_pipe && reader_closed_) return;  // our own close_reader
        read_end_ = true;
        read_end_error_ = ec;
    }

    /// What the reader got must be what the writes took, or what the writes in progress offer.
    /// Only what is new since the last check is compared, so that a long input costs linear time.
    void check_received() {
        const std::size_t common = std::min(received_.size(), taken_.size());
        if (common > checked_) {
            expect(std::equal(received_.begin() + static_cast<std::ptrdiff_t>(checked_),
                              received_.begin() + static_cast<std::ptrdiff_t>(common),
                              taken_.begin() + static_cast<std::ptrdiff_t>(checked_)),
                   "the reader got the bytes in order");
            checked_ = common;
        }
        // Ahead of the completed writes: the rest must come from the writes in progress.
        auto ahead = received_.begin() + static_cast<std::ptrdiff_t>(common);
        for (const auto& [id, buf] : writes_) {
            if (ahead == received_.end()) break;
            const auto n = std::min<std::ptrdiff_t>(received_.end() - ahead, static_cast<std::ptrdiff_t>(buf->size()));
            expect(std::equal(ahead, ahead + n, buf->begin()), "the reader got the bytes in order");
            ahead += n;
        }
        expect(ahead == received_.end(), "the reader got no more than was offered");
    }

    std::size_t capacity_;
    asio::io_context io_;
    h3co::detail::pipe_state pipe_;
    int next_id_ = 0;
    std::uint64_t next_position_ = 0;  ///< in pattern(): where the next write's bytes start
    std::map<int, std::unique_ptr<std::vector<std::uint8_t>>> writes_;  ///< buffers the pipe holds
    std::map<int, std::unique_ptr<std::vector<std::uint8_t>>> reads_;
    std::vector<std::uint8_t> taken_;     ///< what completed writes took, in order
    std::vector<std::uint8_t> received_;  ///< what the reader got, in order
    std::size_t checked_ = 0;             ///< received_[0, checked_) matched taken_ already
    asio::const_buffer view_;
    std::size_t started_ = 0, completed_ = 0;
    std::size_t views_in_flight_ = 0;  ///< view operations started and not completed
    bool writer_closed_ = false, reader_closed_ = false, reader_closed_early_ = false;
    bool read_end_ = false;
    std::error_code read_end_error_, close_reason_;
};

inline int pipe_ops(const std::uint8_t* data, std::size_t size) {
    input_reader in(data, size);
    pipe_model m(1 + in.u16() % 8192);
    for (int ops = 0; !in.done() && ops < 10'000; ++ops) {
        switch (in.byte() % 10) {
        case 0: m.write(in.u16() % 10'000); break;
        case 1: m.read(in.u16() % 10'000); break;
        case 2: m.view(); break;
        case 3: m.consume(in.u16() % 10'000); break;
        case 4: m.close_writer(in.byte() % 2 == 0); break;
        case 5:
            m.note_reader_closed_early();
            m.close_reader();
            break;
        case 6: m.cancel_read(); break;
        case 7: m.cancel_write(); break;
        default: m.poll(); break;
        }
    }
    m.finish();
    return 0;
}

}  // namespace h3co_fuzz
