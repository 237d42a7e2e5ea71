// Walking an Asio buffer sequence from an offset: how writes and reads resume part-way.
#pragma once

#include <asio/buffer.hpp>

#include <cstddef>

namespace h3co::detail {

/// Hands the bytes of `buffers` (skipping the first `skip`) to `sink(ptr, len) -> taken`, one
/// buffer at a time; `ptr` is writable for a mutable buffer sequence. Returns the number of bytes
/// taken; stops at the first partial take.
template <class BufferSequence, class Sink>
std::size_t for_each_buffer_from(const BufferSequence& buffers, std::size_t skip, Sink&& sink) {
    std::size_t total = 0;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
        auto b = asio::buffer(*it);
        if (skip >= b.size()) {
            skip -= b.size();
            continue;
        }
        b += skip;
        skip = 0;
        const std::size_t taken = sink(b.data(), b.size());
        total += taken;
        if (taken < b.size()) break;
    }
    return total;
}

}  // namespace h3co::detail
