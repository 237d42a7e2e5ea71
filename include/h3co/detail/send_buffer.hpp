// A stream's bytes written and not yet acknowledged. nghttp3 and ngtcp2 keep pointers into them
// until the peer acknowledges them, so bytes never move: the buffer is a chain of fixed-size
// chunks, allocated as bytes arrive and freed as they are acknowledged. Its limit can grow while
// bytes are in it (as the congestion window grows) without reallocating anything.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>

namespace h3co::detail {

class send_buffer {
public:
    static constexpr std::size_t chunk_size = 32 * 1024;

    explicit send_buffer(std::size_t limit) : limit_(limit) {}

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t limit() const noexcept { return limit_; }
    /// How much more write() takes now.
    std::size_t space() const noexcept { return limit_ > size_ ? limit_ - size_ : 0; }
    /// Memory held, spare chunk included.
    std::size_t allocated() const noexcept { return (chunks_.size() + (spare_ ? 1 : 0)) * chunk_size; }

    /// The most the buffer may hold from now on (bytes already in it stay even above it).
    void set_limit(std::size_t n) noexcept { limit_ = n; }

    /// Copies as much of `src` as the limit allows; returns the number of bytes taken.
    std::size_t write(const void* src, std::size_t len) {
        const std::size_t n = std::min(len, space());
        const auto* in = static_cast<const std::uint8_t*>(src);
        std::size_t done = 0;
        while (done < n) {
            const std::size_t tail = (head_ + size_) % chunk_size;
            if (tail == 0 && head_ + size_ == chunks_.size() * chunk_size) chunks_.push_back(take_chunk());
            const std::size_t k = std::min(n - done, chunk_size - tail);
            std::memcpy(chunks_.back().get() + tail, in + done, k);
            done += k;
            size_ += k;
        }
        return n;
    }

    /// Drops the first `n` bytes (acknowledged); chunks that empty are freed, one kept as spare.
    void consume(std::size_t n) noexcept {
        n = std::min(n, size_);
        size_ -= n;
        head_ += n;
        while (head_ >= chunk_size || (size_ == 0 && !chunks_.empty())) {
            give_back(std::move(chunks_.front()));
            chunks_.pop_front();
            head_ = head_ >= chunk_size ? head_ - chunk_size : 0;
        }
        if (size_ == 0) head_ = 0;
    }

    /// Up to `max` contiguous spans of the bytes from `offset` on, into `out`; returns how many.
    /// They stay valid until consumed.
    std::size_t spans(std::size_t offset, std::span<const std::uint8_t>* out, std::size_t max) const noexcept {
        std::size_t count = 0;
        std::size_t pos = head_ + offset;
        std::size_t left = offset < size_ ? size_ - offset : 0;
        while (left > 0 && count < max) {
            const std::size_t in_chunk = pos % chunk_size;
            const std::size_t k = std::min(left, chunk_size - in_chunk);
            out[count++] = std::span<const std::uint8_t>(chunks_[pos / chunk_size].get() + in_chunk, k);
            pos += k;
            left -= k;
        }
        return count;
    }

    /// Frees everything, spare included (a finished stream should not pin memory).
    void release() noexcept {
        chunks_.clear();
        spare_.reset();
        head_ = size_ = 0;
    }

private:
    std::unique_ptr<std::uint8_t[]> take_chunk() {
        if (spare_) return std::move(spare_);
        return std::make_unique_for_overwrite<std::uint8_t[]>(chunk_size);
    }
    void give_back(std::unique_ptr<std::uint8_t[]> chunk) noexcept {
        if (!spare_) spare_ = std::move(chunk);
    }

    std::deque<std::unique_ptr<std::uint8_t[]>> chunks_;
    std::unique_ptr<std::uint8_t[]> spare_;  ///< one freed chunk kept, so a steady stream does not churn
    std::size_t head_ = 0;                   ///< offset of the first byte in chunks_.front()
    std::size_t size_ = 0;
    std::size_t limit_;
};

}  // namespace h3co::detail
