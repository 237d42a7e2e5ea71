// download: one GET of --bytes on one stream.
#pragma once

#include "../client.hpp"

#include <h3co/h3co.hpp>

#include <stdexcept>
#include <string>

namespace bench {

inline asio::awaitable<void> client_download(const config& c, client_result& r) {
    auto conn = co_await connect(c);
    r.bytes = co_await get(c, conn, c.bytes, r.status);
    if (r.bytes != c.bytes) throw std::runtime_error("short download: " + std::to_string(r.bytes) + " bytes");
}

}  // namespace bench
