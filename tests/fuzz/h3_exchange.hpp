// Fuzz targets for the HTTP/3 layer after the handshake: a request stream's bytes as the server
// receives them (h3_server_request), and a response stream's bytes as the client receives them
// (h3_client_response). The input is one stream's bytes exactly as they travel on the QUIC stream:
// frames, QPACK field sections, body. It goes through the real path: a client session and a server
// session established over the sans-I/O pair (tests/support/session_pair.hpp), real QUIC packets
// between them, and the receiving side's ngtcp2 -> quic_callbacks::recv_stream_data -> nghttp3 ->
// h3_callbacks -> stream machine -> the handler's operations. The sending side writes the input
// with a raw stream (h3co::testing::start_raw's engine half), which puts bytes on the QUIC stream
// as they are; so the receiver's ngtcp2 knows the stream, and everything the receiver does in
// answer (431, 413, resets, a handler's response, closing the stream) runs for real too.
//
// The pair is kept from one input to the next (under ASan a handshake costs ~1.3 ms of CPU, an
// exchange ~0.18 ms); each input runs on a new stream, and a connection the input killed (a
// connection error such as H3_FRAME_UNEXPECTED) is replaced before the next input. What carries over is connection-level
// only: stream IDs and flow-control totals. The QPACK dynamic table stays empty, since the raw
// sender never inserts into it.
//
// Every exchange must end: within a bound of simulated time both sides' streams are gone, or the
// client resets its stream and then they are. A stream that outlives that is a leak, and the
// target aborts (a finding).
#pragma once

#include "../support/session_pair.hpp"

#include <h3co/error.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace h3co_fuzz {

using test::sans_io::engine_op;
using test::sans_io::ms;
using test::sans_io::pair_config;
using test::sans_io::session_pair;
using stream_ptr = std::shared_ptr<h3co::detail::stream_state>;

inline constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);
/// Inputs longer than this are ignored: well inside every flow-control window.
inline constexpr std::size_t max_stream_input = 64 * 1024;

/// Both sides: a small send buffer (each stream reserves it whole, and a fresh 256 KiB mapping per
/// stream is most of an exchange's cost under AddressSanitizer).
inline h3co::connection_options fuzz_options() {
    h3co::connection_options o;
    o.stream_send_buffer = 16 * 1024;
    return o;
}

/// The limits the fuzzed side enforces: small, so that short inputs reach them.
inline h3co::connection_options fuzz_limits() {
    auto o = fuzz_options();
    o.max_header_bytes = 1024;
    o.max_request_body = 1024;
    return o;
}

/// A pair kept across inputs, replaced when its connection ended.
class kept_pair {
public:
    explicit kept_pair(pair_config config) : config_(std::move(config)) {
        // Real TLS, but the client does not check the certificate chain: most inputs end their
        // connection (an HTTP/3 connection error), so most inputs pay for a new handshake, and
        // the chain check is a fifth of it (an ECDSA verification plus X.509 parsing). The server
        // still signs and the client still checks that signature; tests/ cover verification.
        config_.client_tls =
            h3co::detail::tls_context::make_client(h3co::client_tls::insecure_no_certificate_verification());
        config_.server_tls = test::sans_io::server_tls_for(config_.cert_dir);
    }

    session_pair& get() {
        if (pair_ && alive()) return *pair_;
        pair_.reset();
        pair_ = std::make_unique<session_pair>(config_);
        if (!pair_->handshake()) {
            std::fprintf(stderr, "h3co fuzz: the harness's handshake failed\n");
            std::abort();
        }
        ++handshakes;
        return *pair_;
    }

    bool alive() const {
        return pair_ && !pair_->client().terminated() && pair_->server() && !pair_->server()->terminated();
    }
    void discard() { pair_.reset(); }

    std::size_t handshakes = 0;

private:
    pair_config config_;
    std::unique_ptr<session_pair> pair_;
};

/// What one exchange did, for the settle condition and for the corpus recorder.
struct exchange {
    bool sender_started = false;  ///< the side that writes the input on a raw stream
    bool sender_done = false;
    bool receiver_started = false;  ///< the side under test: the server's handler, or the client
    bool receiver_done = false;
    stream_ptr client_stream;
    std::vector<std::uint8_t> client_received;  ///< what the client read (raw bytes, or the body)
    int status = 0;                             ///< the response status the client saw (h3_client_response)
};

namespace detail {

/// Writes `bytes` on `st` as a raw stream and finishes it; a client stream also reads what comes
/// back (raw) until it ends.
inline asio::awaitable<void> send_raw(session_pair& p, h3co::detail::session& side, stream_ptr st,
                                      std::vector<std::uint8_t> bytes, std::shared_ptr<exchange> x, bool read_back) {
    auto& io = p.io();
    auto& m = side.streams();
    auto [raw_ec] = co_await engine_op<void(std::error_code)>(io, [&](auto op) { m.start_raw(*st, std::move(op)); },
                                                               as_tuple);
    if (!raw_ec) {
        auto [wec, n] = co_await engine_op<void(std::error_code, std::size_t)>(
            io, [&](auto op) { m.write(*st, asio::buffer(bytes), true, std::move(op)); }, as_tuple);
        (void)n;
        if (!wec)
            co_await engine_op<void(std::error_code)>(io, [&](auto op) { m.finish(*st, std::move(op)); }, as_tuple);
    }
    if (read_back) {
        std::array<std::uint8_t, 4096> buf;
        for (int i = 0; i < 10'000; ++i) {
            auto [ec, got] = co_await engine_op<void(std::error_code, std::size_t)>(
                io, [&](auto op) { m.read(*st, asio::buffer(buf), std::move(op)); }, as_tuple);
            x->client_received.insert(x->client_received.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got));
            if (ec) break;
        }
    }
    x->sender_done = true;
}

inline asio::awaitable<stream_ptr> open_client_stream(session_pair& p) {
    auto [ec, st] = co_await engine_op<void(std::error_code, stream_ptr)>(
        p.io(), [&](auto op) { p.client().open_stream(std::move(op)); }, as_tuple);
    co_return ec ? nullptr : st;
}

/// The server's handler for h3_server_request: read the body to its end, answer 200 with a short
/// body, finish.
inline asio::awaitable<void> answer(session_pair& p, stream_ptr st, std::shared_ptr<exchange> x) {
    auto& io = p.io();
    auto& m = p.server()->streams();
    std::array<std::uint8_t, 4096> buf;
    for (int i = 0; i < 10'000; ++i) {
        auto [ec, n] = co_await engine_op<void(std::error_code, std::size_t)>(
            io, [&](auto op) { m.read(*st, asio::buffer(buf), std::move(op)); }, as_tuple);
        (void)n;
        if (ec) break;
    }
    const h3co::fields fields{{"content-type", "text/plain"}};
    auto [hec] = co_await engine_op<void(std::error_code)>(
        io, [&](auto op) { m.send_response_header(*st, 200, fields, std::move(op)); }, as_tuple);
    if (!hec) {
        static const char ok[] = "ok\n";
        auto [wec, n] = co_await engine_op<void(std::error_code, std::size_t)>(
            io, [&](auto op) { m.write(*st, asio::buffer(ok, 3), true, std::move(op)); }, as_tuple);
        (void)n;
        if (!wec) co_await engine_op<void(std::error_code)>(io, [&](auto op) { m.finish(*st, std::move(op)); }, as_tuple);
    }
    x->receiver_done = true;
}

/// The client for h3_client_response: GET, finish, read the response head and body to the end.
inline asio::awaitable<void> fetch(session_pair& p, std::shared_ptr<exchange> x) {
    auto& io = p.io();
    auto& m = p.client().streams();
    auto st = co_await open_client_stream(p);
    x->client_stream = st;
    if (st) {
        const h3co::request req{.method = "GET", .url = "/fuzz"};
        auto [hec] = co_await engine_op<void(std::error_code)>(
            io, [&](auto op) { m.send_request_header(*st, req, std::move(op)); }, as_tuple);
        if (!hec) co_await engine_op<void(std::error_code)>(io, [&](auto op) { m.finish(*st, std::move(op)); }, as_tuple);
        auto [rec, head] = co_await engine_op<void(std::error_code, h3co::response_head)>(
            io, [&](auto op) { m.read_response(*st, std::move(op)); }, as_tuple);
        x->status = rec ? 0 : head.status;
        std::array<std::uint8_t, 4096> buf;
        for (int i = 0; i < 10'000 && !rec; ++i) {
            auto [ec, got] = co_await engine_op<void(std::error_code, std::size_t)>(
                io, [&](auto op) { m.read(*st, asio::buffer(buf), std::move(op)); }, as_tuple);
            x->client_received.insert(x->client_received.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got));
            if (ec) break;
        }
    }
    x->receiver_done = true;
}

inline void rethrow(std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
}

/// Runs the exchange until both sides are done and no stream is left, or the connection ended.
/// If that does not happen in 2 s of simulated time, the client resets its stream, and then it
/// must. Returns false (after printing why) if a stream outlived that.
inline bool settle(kept_pair& kept, session_pair& p, exchange& x) {
    auto settled = [&] {
        if (!kept.alive()) return true;
        return (x.sender_done || !x.sender_started) && (x.receiver_done || !x.receiver_started) &&
               p.server()->requests.empty() &&
               p.client().open_stream_count() == 0 && p.server()->open_stream_count() == 0;
    };
    if (p.run_until(settled, 2'000 * ms, 200'000)) return true;
    if (x.client_stream)
        p.client().streams().reset(*x.client_stream, static_cast<std::uint64_t>(h3co::h3_error::request_cancelled),
                                   make_error_code(asio::error::operation_aborted));
    // A header block that waits for QPACK inserts that never come keeps its stream with nghttp3
    // (bounded by SETTINGS_QPACK_BLOCKED_STREAMS) after QUIC closed it, until the connection ends:
    // a response after its reset, a request whose handler never ran.
    auto settled_but_blocked = [&] {
        if (!kept.alive()) return true;
        return (x.sender_done || !x.sender_started) && (x.receiver_done || !x.receiver_started) &&
               p.server()->requests.empty() &&
               p.client().open_stream_count() == p.client().streams_held_by_h3() &&
               p.server()->open_stream_count() == p.server()->streams_held_by_h3();
    };
    if (p.run_until(settled_but_blocked, 10'000 * ms, 200'000)) return true;
    std::fprintf(stderr,
                 "h3co fuzz: the exchange did not end: sender %d/%d receiver %d/%d, streams open: client %zu "
                 "server %zu, requests queued %zu\n",
                 x.sender_started, x.sender_done, x.receiver_started, x.receiver_done, p.client().open_stream_count(),
                 p.server()->open_stream_count(), p.server()->requests.size());
    return false;
}

}  // namespace detail

/// The server side of a request stream: `data` is what a client sends on it.
inline exchange h3_server_request_exchange(kept_pair& kept, const std::uint8_t* data, std::size_t size) {
    auto& p = kept.get();
    auto x = std::make_shared<exchange>();
    x->sender_started = true;
    p.on_request = [&p, x](stream_ptr st) {
        x->receiver_started = true;
        asio::co_spawn(p.io(), detail::answer(p, std::move(st), x), detail::rethrow);
    };
    asio::co_spawn(
        p.io(),
        [](session_pair& p, std::vector<std::uint8_t> bytes, std::shared_ptr<exchange> x) -> asio::awaitable<void> {
            auto st = co_await detail::open_client_stream(p);
            x->client_stream = st;
            if (!st) {
                x->sender_done = true;
                co_return;
            }
            co_await detail::send_raw(p, p.client(), st, std::move(bytes), x, true);
        }(p, std::vector<std::uint8_t>(data, data + size), x),
        detail::rethrow);
    if (!detail::settle(kept, p, *x)) std::abort();
    p.on_request = nullptr;
    if (!kept.alive()) kept.discard();
    return std::move(*x);
}

/// The client side of a response stream: `data` is what a server sends on it.
inline exchange h3_client_response_exchange(kept_pair& kept, const std::uint8_t* data, std::size_t size) {
    auto& p = kept.get();
    auto x = std::make_shared<exchange>();
    x->receiver_started = true;
    auto bytes = std::make_shared<std::vector<std::uint8_t>>(data, data + size);
    p.on_request = [&p, x, bytes](stream_ptr st) {
        x->sender_started = true;
        asio::co_spawn(p.io(), detail::send_raw(p, *p.server(), std::move(st), std::move(*bytes), x, false),
                       detail::rethrow);
    };
    asio::co_spawn(p.io(), detail::fetch(p, x), detail::rethrow);
    if (!detail::settle(kept, p, *x)) std::abort();
    p.on_request = nullptr;
    if (!kept.alive()) kept.discard();
    return std::move(*x);
}

inline kept_pair& server_request_pair() {
    static kept_pair kept([] {
        pair_config c;
        c.client_options = fuzz_options();
        c.server_options = fuzz_limits();
        return c;
    }());
    return kept;
}

inline kept_pair& client_response_pair() {
    static kept_pair kept([] {
        pair_config c;
        c.client_options = fuzz_limits();
        c.server_options = fuzz_options();
        return c;
    }());
    return kept;
}

inline int h3_server_request(const std::uint8_t* data, std::size_t size) {
    if (size > max_stream_input) return -1;  // not added to the corpus
    h3_server_request_exchange(server_request_pair(), data, size);
    return 0;
}

inline int h3_client_response(const std::uint8_t* data, std::size_t size) {
    if (size > max_stream_input) return -1;
    h3_client_response_exchange(client_response_pair(), data, size);
    return 0;
}

}  // namespace h3co_fuzz
