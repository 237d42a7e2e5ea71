// What the fuzz targets share: reading an input piece by piece, and failing on a broken invariant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace h3co_fuzz {

/// Reads the input a little at a time; past its end, zeros.
class input_reader {
public:
    input_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool done() const noexcept { return at_ >= size_; }
    std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
    std::uint16_t u16() {
        const auto lo = byte();
        return static_cast<std::uint16_t>(lo | (byte() << 8));
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;
};

[[noreturn]] inline void model_mismatch(const char* what) {
    std::fprintf(stderr, "h3co fuzz: model mismatch: %s\n", what);
    std::abort();
}

inline void expect(bool ok, const char* what) {
    if (!ok) model_mismatch(what);
}

}  // namespace h3co_fuzz
