// A growable ring buffer of bytes with a hard capacity: the one place stream and pipe data waits.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

namespace h3co::detail {

class byte_ring {
public:
    explicit byte_ring(std::size_t max_capacity = 0) : max_capacity_(max_capacity) {}

    void set_max_capacity(std::size_t n) noexcept { max_capacity_ = std::max(n, capacity_); }
    std::size_t max_capacity() const noexcept { return max_capacity_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t space() const noexcept { return max_capacity_ - size_; }
    std::size_t allocated() const noexcept { return capacity_; }

    /// Copies as much of `src` as fits within the capacity; returns the number of bytes taken.
    std::size_t write(const void* src, std::size_t len) {
        const std::size_t n = std::min(len, space());
        if (n == 0) return 0;
        grow_for(size_ + n);
        const auto* in = static_cast<const std::uint8_t*>(src);
        std::size_t tail = (head_ + size_) % capacity_;
        const std::size_t first = std::min(n, capacity_ - tail);
        std::memcpy(data_.get() + tail, in, first);
        std::memcpy(data_.get(), in + first, n - first);
        size_ += n;
        return n;
    }

    /// Copies up to `len` bytes out, starting `offset` bytes past the front, without consuming.
    std::size_t peek(void* dst, std::size_t len, std::size_t offset = 0) const noexcept {
        // len 0 returns before memcpy: an empty buffer's data() may be null, and memcpy(null, ..)
        // is undefined even for 0 bytes (found by the byte_ring fuzz target).
        if (offset >= size_ || len == 0) return 0;
        const std::size_t n = std::min(len, size_ - offset);
        auto* out = static_cast<std::uint8_t*>(dst);
        const std::size_t start = (head_ + offset) % capacity_;
        const std::size_t first = std::min(n, capacity_ - start);
        std::memcpy(out, data_.get() + start, first);
        std::memcpy(out + first, data_.get(), n - first);
        return n;
    }

    std::size_t read(void* dst, std::size_t len) noexcept {
        const std::size_t n = peek(dst, len);
        consume(n);
        return n;
    }

    void consume(std::size_t n) noexcept {
        n = std::min(n, size_);
        size_ -= n;
        head_ = size_ == 0 ? 0 : (head_ + n) % capacity_;
    }

    /// The stored bytes from `offset` on, as at most two contiguous spans (the ring may wrap).
    /// The memory stays valid until consumed or until a write that grows the ring: the send path
    /// never grows past the capacity reserved up front, see reserve().
    std::array<std::span<const std::uint8_t>, 2> spans(std::size_t offset = 0) const noexcept {
        if (offset >= size_) return {};
        const std::size_t n = size_ - offset;
        const std::size_t start = (head_ + offset) % capacity_;
        const std::size_t first = std::min(n, capacity_ - start);
        return {std::span<const std::uint8_t>(data_.get() + start, first),
                std::span<const std::uint8_t>(data_.get(), n - first)};
    }

    /// Allocates the full capacity now so that spans handed out never move.
    void reserve() { grow_for(max_capacity_); }

    /// Frees the storage when empty (a finished stream should not pin its buffers).
    void shrink() noexcept {
        if (size_ == 0) {
            data_.reset();
            capacity_ = 0;
            head_ = 0;
        }
    }

private:
    void grow_for(std::size_t needed) {
        if (needed <= capacity_) return;
        std::size_t cap = std::max<std::size_t>(capacity_ ? capacity_ * 2 : 4096, needed);
        cap = std::min(cap, max_capacity_);
        auto fresh = std::make_unique_for_overwrite<std::uint8_t[]>(cap);
        peek(fresh.get(), size_);
        data_ = std::move(fresh);
        capacity_ = cap;
        head_ = 0;
    }

    std::unique_ptr<std::uint8_t[]> data_;
    std::size_t capacity_ = 0;
    std::size_t max_capacity_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace h3co::detail
