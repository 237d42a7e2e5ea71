// Counts live objects of a kind, so that tests can prove every one is freed (h3co/testing.hpp).
#pragma once

#include <atomic>

namespace h3co::detail {

template <class Tag>
std::atomic<long>& live_count() noexcept {
    static std::atomic<long> count{0};
    return count;
}

/// A member that keeps live_count<Tag>() up to date for the object that holds it.
template <class Tag>
struct counted {
    counted() noexcept { live_count<Tag>().fetch_add(1, std::memory_order_relaxed); }
    counted(const counted&) noexcept : counted() {}
    counted& operator=(const counted&) noexcept { return *this; }
    ~counted() { live_count<Tag>().fetch_sub(1, std::memory_order_relaxed); }
};

}  // namespace h3co::detail
