// handshakes: --handshakes connections one after another (handshake, then close): handshakes/s.
#pragma once

#include "../client.hpp"

#include <h3co/h3co.hpp>

namespace bench {

inline asio::awaitable<void> client_handshakes(const config& c, client_result& r) {
    const auto deadline = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(c.timeout_s / 2));
    for (int i = 0; i < c.handshakes && clock_type::now() < deadline; ++i) {
        auto conn = co_await connect(c);
        conn.close();
        ++r.handshakes;
    }
    r.status = 200;
}

}  // namespace bench
