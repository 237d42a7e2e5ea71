// Fuzz targets for the two buffers every body goes through: the byte ring (detail/byte_ring.hpp)
// and the pipe's shared state (detail/pipe_state.hpp). The input is a sequence of operations;
// each result is checked against a simple model (a std::deque of bytes; for the pipe, "what the
// reader gets is, in order, what the writes took").
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
#include <deque>
#include <map>
#include <memory>
#include <vector>

namespace h3co_fuzz {

/// byte_ring against a deque of bytes.
inline int byte_ring_ops(const std::uint8_t* data, std::size_t size) {
    input_reader in(data, size);
    std::size_t max_capacity = in.u16() % 20'000;
    h3co::detail::byte_ring ring(max_capacity);
    std::deque<std::uint8_t> model;
    std::uint8_t next_value = 0;  // written bytes count up, so that any misplaced byte shows
    std::vector<std::uint8_t> src, dst;
    for (int ops = 0; !in.done() && ops < 10'000; ++ops) {
        switch (in.byte() % 8) {
        case 0: {  // write
            const std::size_t n = in.u16() % 8192;
            src.resize(n);
            for (auto& b : src) b = next_value++;
            const std::size_t room = max_capacity - model.size();
            const std::size_t taken = ring.write(src.data(), n);
            expect(taken == std::min(n, room), "write took what fits");
            model.insert(model.end(), src.begin(), src.begin() + static_cast<std::ptrdiff_t>(taken));
            next_value = static_cast<std::uint8_t>(next_value - (n - taken));
            break;
        }
        case 1: {  // peek at an offset
            const std::size_t len = in.u16() % 8192, offset = in.u16() % 8192;
            dst.assign(len, 0);
            const std::size_t got = ring.peek(dst.data(), len, offset);
            const std::size_t want = offset >= model.size() ? 0 : std::min(len, model.size() - offset);
            expect(got == want, "peek length");
            expect(std::equal(dst.begin(), dst.begin() + static_cast<std::ptrdiff_t>(got),
                              model.begin() + static_cast<std::ptrdiff_t>(std::min(offset, model.size()))),
                   "peek bytes");
            break;
        }
        case 2: {  // read
            const std::size_t len = in.u16() % 8192;
            dst.assign(len, 0);
            const std::size_t got = ring.read(dst.data(), len);
            expect(got == std::min(len, model.size()), "read length");
            expect(std::equal(dst.begin(), dst.begin() + static_cast<std::ptrdiff_t>(got), model.begin()), "read bytes");
            model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(got));
            break;
        }
        case 3: {  // consume
            const std::size_t n = in.u16() % 8192;
            ring.consume(n);
            model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(std::min(n, model.size())));
            break;
        }
        case 4: {  // spans from an offset
            const std::size_t offset = in.u16() % 8192;
            const auto spans = ring.spans(offset);
            std::vector<std::uint8_t> joined;
            for (const auto& s : spans) joined.insert(joined.end(), s.begin(), s.end());
            const std::size_t from = std::min(offset, model.size());
            expect(joined.size() == model.size() - from, "spans length");
            expect(std::equal(joined.begin(), joined.end(), model.begin() + static_cast<std::ptrdiff_t>(from)),
                   "spans bytes");
            break;
        }
        case 5:
            ring.reserve();
            expect(ring.allocated() == max_capacity, "reserve allocates the capacity");
            break;
        case 6:
            ring.shrink();
            if (model.empty()) expect(ring.allocated() == 0, "shrink frees an empty ring");
            break;
        case 7: {
            const std::size_t n = in.u16() % 20'000;
            ring.set_max_capacity(n);
            max_capacity = std::max(n, ring.allocated());
            break;
        }
        }
        expect(ring.size() == model.size(), "size");
        expect(ring.empty() == model.empty(), "empty");
        expect(ring.max_capacity() == max_capacity, "max_capacity");
        expect(ring.space() == max_capacity - model.size(), "space");
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
        auto buf = std::make_unique<std::vector<std::uint8_t>>(n);
        for (auto& b : *buf) b = next_value_++;
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
        pipe_.start_read(buffer, io_op([this, id](std::error_code ec, std::size_t got) { read_done(id, ec, got); },
                                       io_.get_executor()));
    }

    void view() {
        ++started_;
        ++views_in_flight_;
        pipe_.start_view(h3co::detail::pipe_state::view_op(
            [this](std::error_code ec, asio::const_buffer b) { view_done(ec, b); }, io_.get_executor()));
    }

    /// Gives back the view, after reading its first `n` bytes (now, not when it was lent: a view
    /// must stay valid until it is consumed).
    void consume(std::size_t n) {
        // A view lent but not yet delivered (its handler is queued) is not ours to give back.
        if (!view_.data() && views_in_flight_ > 0) return;
        if (view_.data() && !reader_closed_) {
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

    void close_reader() {
        reader_closed_ = true;
        view_ = asio::const_buffer();  // the reader is gone: nobody reads the view any more
        pipe_.close_reader();
    }

    void cancel_read() { pipe_.cancel_read(); }
    void cancel_write() { pipe_.cancel_write(); }

    void poll() {
        io_.restart();
        io_.poll();
        expect(pipe_.buffered() <= capacity_, "buffered within the capacity");
    }

    /// Drains: gives back any view, closes the writer, reads to the end, closes the reader; then
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
        close_reader();
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

    void read_done(int id, std::error_code ec, std::size_t got) {
        ++completed_;
        auto it = reads_.find(id);
        expect(it != reads_.end(), "a read completes once");
        auto& buf = *it->second;
        expect(got <= buf.size(), "a read fills at most its buffer");
        if (ec != h3co::error::operation_in_progress) {
            received_.insert(received_.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got));
            if (ec && ec != asio::error::operation_aborted) end_read(ec);
        } else {
            expect(got == 0, "a refused read gets nothing");
        }
        reads_.erase(it);
        check_received();
    }

    void view_done(std::error_code ec, asio::const_buffer b) {
        ++completed_;
        --views_in_flight_;
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
    void check_received() {
        if (received_.size() <= taken_.size()) {
            expect(std::equal(received_.begin(), received_.end(), taken_.begin()), "the reader got the bytes in order");
            return;
        }
        // Ahead of the completed writes: the rest must come from the write in progress.
        std::vector<std::uint8_t> offered = taken_;
        for (const auto& [id, buf] : writes_) offered.insert(offered.end(), buf->begin(), buf->end());
        expect(received_.size() <= offered.size(), "the reader got no more than was offered");
        expect(std::equal(received_.begin(), received_.end(), offered.begin()), "the reader got the bytes in order");
    }

    std::size_t capacity_;
    asio::io_context io_;
    h3co::detail::pipe_state pipe_;
    int next_id_ = 0;
    std::uint8_t next_value_ = 0;
    std::map<int, std::unique_ptr<std::vector<std::uint8_t>>> writes_;  ///< buffers the pipe holds
    std::map<int, std::unique_ptr<std::vector<std::uint8_t>>> reads_;
    std::vector<std::uint8_t> taken_;     ///< what completed writes took, in order
    std::vector<std::uint8_t> received_;  ///< what the reader got, in order
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
