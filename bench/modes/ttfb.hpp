// ttfb: time to the first response byte of GET /1 on a new connection, --handshakes connections of
// each kind one after another, each timed from connect() to the first body byte: a full handshake
// (no ticket), a resumed one (a ticket, no early data) and 0-RTT (a ticket that allows early data).
#pragma once

#include "../client.hpp"

#include <h3co/h3co.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace bench {

struct ttfb_stats {
    std::vector<double> full_ms, resumed_ms, early_ms;
    int resumed = 0, early_accepted = 0;

    static std::string ms(double v) {
        char text[32];
        std::snprintf(text, sizeof text, "%.1f", v);
        return text;
    }
    void report(json_record& r) const {
        r.set("ttfb_full_ms", percentile(full_ms, 50));
        r.set("ttfb_resumed_ms", percentile(resumed_ms, 50));
        r.set("ttfb_0rtt_ms", percentile(early_ms, 50));
        r.set("ttfb_notes", "p50 time to first byte: full " + ms(percentile(full_ms, 50)) + " ms, resumed " +
                                ms(percentile(resumed_ms, 50)) + " ms, 0-RTT " + ms(percentile(early_ms, 50)) +
                                " ms (n=" + std::to_string(full_ms.size()) + " each; resumed " + std::to_string(resumed) +
                                "/" + std::to_string(resumed_ms.size() + early_ms.size()) + ", 0-RTT accepted " +
                                std::to_string(early_accepted) + "/" + std::to_string(early_ms.size()) + ")");
    }
};
inline ttfb_stats g_ttfb;

inline asio::awaitable<void> client_ttfb(const config& c, client_result& r) {
    auto ex = co_await asio::this_coro::executor;
    const auto tls = client_tls(c);
    const std::string host = "127.0.0.1";
    auto cache = std::make_shared<h3co::session_cache>();
    // kind 0: no ticket; 1: resumed; 2: 0-RTT. A kind's connections fill the cache for the next.
    for (int kind = 0; kind < 3; ++kind) {
        for (int i = 0; i < c.handshakes; ++i) {
            auto options = c.options();
            options.session_cache = kind == 0 && i + 1 < c.handshakes ? nullptr : cache;  // the last full one keeps its tickets
            options.early_data = kind == 2;
            const auto start = clock_type::now();
            auto conn = co_await h3co::connect(ex, host, c.port, tls, options);
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "GET", .url = url(c, "/1")};
            co_await stream.send_header(req);
            co_await stream.finish();
            const auto head = co_await stream.read_response();
            std::array<char, 16> byte;
            auto [ec, n] = co_await stream.read_some(asio::buffer(byte), as_tuple);
            const double ms = seconds_since(start) * 1000;
            if (head.status != 200 || n == 0) throw std::runtime_error("ttfb: GET /1 answered " + std::to_string(head.status));
            const auto stats = conn.stats();
            (kind == 0 ? g_ttfb.full_ms : kind == 1 ? g_ttfb.resumed_ms : g_ttfb.early_ms).push_back(ms);
            if (kind > 0 && stats.resumed) ++g_ttfb.resumed;
            if (kind == 2 && stats.early_data_accepted) ++g_ttfb.early_accepted;
            co_await drain(stream);
            conn.close();
            ++r.handshakes;
        }
    }
    r.status = 200;
}

}  // namespace bench
