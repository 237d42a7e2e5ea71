// parallel: --streams streams on one connection, --bytes in total, --direction up or down.
#pragma once

#include "../client.hpp"

#include <h3co/h3co.hpp>

namespace bench {

inline asio::awaitable<void> client_parallel(const config& c, client_result& r) {
    auto conn = co_await connect(c);
    const auto start_stream = [&](int i) { return transfer_one(c, conn, r, share_of(c.bytes, c.streams, i)); };
    co_await run_together(c.streams, start_stream);
}

}  // namespace bench
