// The library's own way into public handles (the pooled client, h3co/testing.hpp): their engine
// state, which no public member exposes.
#pragma once

namespace h3co::detail {

struct handle_access {
    template <class Handle>
    static auto& state(Handle& h) noexcept {
        return h.state_;
    }
    template <class Handle>
    static auto& impl(Handle& h) noexcept {
        return h.impl_;
    }
};

}  // namespace h3co::detail
