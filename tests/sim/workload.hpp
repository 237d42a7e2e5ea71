// The scenario's workload through h3co's public API, as users write it: the server's handlers
// and the clients' actions. Each action is one exchange with a random ending (read all, read part
// and drop, reset, cancel with any cancellation type, pipe-fed body from a slow producer,
// takeover, trailers, 1xx). Each records its outcome in the trace and checks what it got.
#pragma once

#include "prng.hpp"
#include "trace.hpp"

#include <h3co/h3co.hpp>
#include <h3co/testing.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace h3co_sim {

inline constexpr auto tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// The body byte `i` of a body of `n` bytes: every body is checkable without keeping it.
inline std::uint8_t body_byte(std::uint64_t n, std::uint64_t i) {
    return static_cast<std::uint8_t>((i * 131 + n * 7 + (i >> 9)) & 0xff);
}

/// Writes body bytes [from, from + len) of a body of `n` bytes to `out`. The same bytes as
/// body_byte(), a run at a time: i * 131 mod 256 repeats every 256 bytes and (i >> 9) changes
/// every 512, so each run is a copy from a table plus a constant (the byte-at-a-time loops were a
/// tenth of the simulation's time).
inline void pattern_bytes(std::uint8_t* out, std::uint64_t n, std::uint64_t from, std::size_t len) {
    static const auto table = [] {
        std::array<std::uint8_t, 768> t{};
        for (std::size_t j = 0; j < t.size(); ++j) t[j] = static_cast<std::uint8_t>(j * 131);
        return t;
    }();
    for (std::size_t pos = 0; pos < len;) {
        const std::uint64_t i = from + pos;
        const std::size_t run = std::min<std::size_t>(len - pos, 512 - (i & 511));
        const auto base = static_cast<std::uint8_t>(n * 7 + (i >> 9));
        const std::uint8_t* t = table.data() + (i & 255);
        for (std::size_t k = 0; k < run; ++k) out[pos + k] = static_cast<std::uint8_t>(t[k] + base);
        pos += run;
    }
}

inline void fill_body(std::vector<std::uint8_t>& buf, std::uint64_t n, std::uint64_t from, std::size_t len) {
    buf.resize(len);
    pattern_bytes(buf.data(), n, from, len);
}

/// Whether `len` bytes at `p` are body bytes [from, from + len) of a body of `n` bytes.
inline bool pattern_matches(const std::uint8_t* p, std::size_t len, std::uint64_t n, std::uint64_t from) {
    std::array<std::uint8_t, 4096> expected;
    for (std::size_t pos = 0; pos < len; pos += expected.size()) {
        const std::size_t k = std::min(expected.size(), len - pos);
        pattern_bytes(expected.data(), n, from + pos, k);
        if (std::memcmp(expected.data(), p + pos, k) != 0) return false;
    }
    return true;
}

inline std::string describe(const std::error_code& ec) {
    if (!ec) return "ok";
    return std::string(ec.category().name()) + ":" + std::to_string(ec.value());
}

/// "/kind/1/2/3" -> {1, 2, 3}
inline std::vector<std::uint64_t> path_numbers(const std::string& path) {
    std::vector<std::uint64_t> out;
    std::size_t at = path.find('/', 1);
    while (at != std::string::npos) {
        const auto next = path.find('/', at + 1);
        out.push_back(std::stoull(path.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1)));
        at = next;
    }
    while (out.size() < 4) out.push_back(0);
    return out;
}

/// What the run shares: the trace, the first failure, and the count of operations in flight.
struct context {
    explicit context(bool keep_trace) : events(keep_trace) {}

    trace events;
    std::string failure;  ///< the first invariant broken; empty: none
    long started = 0;     ///< actions, workers and side coroutines started
    long completed = 0;   ///< of those, completed (each once)
    std::map<std::uint64_t, std::string> in_flight;  ///< by id: what has not completed
    std::uint64_t next_id = 0;
    std::function<std::uint64_t()> now;  ///< virtual ms
    bool inject_failure = false;         ///< scenario::inject_failure

    void fail(const std::string& what) {
        if (failure.empty()) failure = what;
        events.add("FAIL " + what);
    }
    std::uint64_t begin(std::string what) {
        ++started;
        in_flight.emplace(++next_id, std::move(what));
        return next_id;
    }
    void end(std::uint64_t id) {
        if (in_flight.erase(id) == 0) return fail("operation " + std::to_string(id) + " completed twice");
        ++completed;
    }
    void record(const std::string& who, const std::string& what) {
        events.add("t=" + std::to_string(now()) + " " + who + " " + what);
    }
    /// The credit ledger of docs/design.md ("Flow-control credit") balances, and the connection's
    /// memory stays within what the options allow (both sides run the default limits): the bytes
    /// it holds unread within its receive window, the windows and the send buffer within their
    /// maximums.
    void check_ledger(const std::string& who, const h3co::connection_stats& s) {
        static const h3co::connection_options limits;
        if (s.credit_held > s.connection_receive_window)
            fail(who + ": " + std::to_string(s.credit_held) + " bytes held unread, over the receive window of " +
                 std::to_string(s.connection_receive_window));
        if (s.connection_receive_window > limits.max_connection_receive_window ||
            s.stream_receive_window > limits.max_stream_receive_window || s.stream_send_buffer > limits.max_stream_send_buffer)
            fail(who + ": a window or send buffer over its maximum: connection " + std::to_string(s.connection_receive_window) +
                 ", stream " + std::to_string(s.stream_receive_window) + ", send buffer " + std::to_string(s.stream_send_buffer));
        if (s.credit_delivered != s.credit_extended + s.credit_held + s.credit_released_at_end)
            fail(who + ": credit ledger off: delivered " + std::to_string(s.credit_delivered) + " != extended " +
                 std::to_string(s.credit_extended) + " + held " + std::to_string(s.credit_held) + " + released " +
                 std::to_string(s.credit_released_at_end));
    }
};

/// What each stream of one connection holds stays within the options' limits (both sides run the
/// default limits): unread bytes within that stream's own receive window and so within
/// max_stream_receive_window, the send buffer within max_stream_send_buffer.
inline void check_stream_memory(context& ctx, const std::string& who, const h3co::testing::stream_memory& m) {
    static const h3co::connection_options limits;
    const std::uint64_t send_max = std::max(limits.stream_send_buffer, limits.max_stream_send_buffer);
    if (m.held_unread > limits.max_stream_receive_window || m.held_over_window)
        ctx.fail(who + ": a stream holds " + std::to_string(m.held_unread) + " bytes unread (" +
                 std::to_string(m.held_over_window) + " beyond its window), over the maximum of " +
                 std::to_string(limits.max_stream_receive_window));
    if (m.buffered_to_send > send_max)
        ctx.fail(who + ": a stream buffers " + std::to_string(m.buffered_to_send) + " bytes to send, over the maximum of " +
                 std::to_string(send_max));
}

/// What a body read got.
struct body_result {
    std::error_code ec;  ///< eof: the body ended cleanly
    std::uint64_t bytes = 0;
    bool pattern_ok = true;
};

/// Reads until the body ends or fails, or `stop_after` bytes came, checking the pattern of a body
/// of `n` bytes.
template <class Stream>
asio::awaitable<body_result> read_body(Stream& s, std::uint64_t n, std::uint64_t stop_after = ~0ull) {
    body_result r;
    std::array<std::uint8_t, 4096> buf;
    while (r.bytes < stop_after) {
        auto b = asio::buffer(buf);
        auto [ec, got] = co_await s.read_some(b, tuple);
        if (!pattern_matches(buf.data(), got, n, r.bytes)) r.pattern_ok = false;
        r.bytes += got;
        if (ec) {
            r.ec = ec;
            break;
        }
    }
    co_return r;
}

/// Writes `n` pattern bytes in chunks of `chunk`, then finishes (unless `finish` is false).
template <class Stream>
asio::awaitable<std::error_code> write_body(Stream& s, std::uint64_t n, std::size_t chunk, bool finish = true) {
    std::vector<std::uint8_t> buf;
    for (std::uint64_t off = 0; off < n;) {
        const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, n - off));
        fill_body(buf, n, off, len);
        auto b = asio::buffer(buf.data(), len);
        auto [ec, written] = co_await s.write(b, tuple);
        (void)written;
        if (ec) co_return ec;
        off += len;
    }
    if (!finish) co_return std::error_code{};
    auto [ec] = co_await s.finish(tuple);
    co_return ec;
}

/// Checks a body that should be `n` bytes: exact, or ended by a named error; never silently short.
inline void check_body(context& ctx, const std::string& who, const body_result& r, std::uint64_t n) {
    if (!r.pattern_ok) ctx.fail(who + ": body bytes differ from what was sent");
    if (r.ec == h3co::error::eof && r.bytes != n)
        ctx.fail(who + ": body ended cleanly after " + std::to_string(r.bytes) + " of " + std::to_string(n) + " bytes");
    if (!r.ec) ctx.fail(who + ": body read ended without an error or eof");
}

// ---- the server -------------------------------------------------------------------------

/// Installs the handlers: /blob/N/CHUNK/PAUSE_MS (answers without reading), /echo, /sink,
/// /partial/N, /reset, /trailers/N, /interim/N, /takeover.
inline void install_handlers(h3co::server& server, context& ctx) {
    using req_t = h3co::server_request;
    using res_t = h3co::response;
    server.handle("/blob/", [](req_t& req, res_t& res) -> asio::awaitable<void> {
        const auto v = path_numbers(req.path());
        const std::uint64_t n = v[0];
        const std::size_t chunk = std::max<std::size_t>(1, v[1]);
        auto [hec] = co_await res.send_header(200, tuple);
        if (hec) co_return;
        std::vector<std::uint8_t> buf;
        for (std::uint64_t off = 0; off < n;) {
            const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, n - off));
            fill_body(buf, n, off, len);
            auto b = asio::buffer(buf.data(), len);
            auto [ec, written] = co_await res.write(b, tuple);
            (void)written;
            if (ec) co_return;
            off += len;
            if (v[2]) co_await h3co::sleep_for(std::chrono::milliseconds(v[2]));
        }
        co_await res.finish(tuple);
    });
    server.handle("/echo", [&ctx](req_t& req, res_t& res) -> asio::awaitable<void> {
        auto [hec] = co_await res.send_header(200, tuple);
        if (hec) co_return;
        std::array<std::uint8_t, 8192> buf;
        for (;;) {
            auto rb = asio::buffer(buf);
            auto [ec, n] = co_await req.read_some(rb, tuple);
            if (n) {
                auto wb = asio::buffer(buf.data(), n);
                auto [wec, written] = co_await res.write(wb, tuple);
                (void)written;
                if (wec) co_return;
            }
            if (ec == h3co::error::eof) break;
            if (ec) {
                // The request body failed: the echo must not end as if complete.
                res.take_over().reset(h3co::h3_error::request_cancelled);
                co_return;
            }
        }
        ctx.check_ledger("server /echo", req.connection_stats());
        check_stream_memory(ctx, "server /echo", h3co::testing::stream_memory_of(req));
    });
    server.handle("/sink", [&ctx](req_t& req, res_t& res) -> asio::awaitable<void> {
        // Reads the whole body and answers with its length and whether its bytes were right.
        std::string declared;
        if (auto d = req.headers().find("x-len")) declared = std::string(*d);
        const std::uint64_t n = declared.empty() ? 0 : std::stoull(declared);
        auto r = co_await read_body(req, n);
        if (r.ec != h3co::error::eof) {
            res.take_over().reset(h3co::h3_error::request_cancelled);
            co_return;
        }
        ctx.check_ledger("server /sink", req.connection_stats());
        check_stream_memory(ctx, "server /sink", h3co::testing::stream_memory_of(req));
        const std::string answer = std::to_string(r.bytes) + (r.pattern_ok ? ":ok" : ":bad");
        auto [hec] = co_await res.send_header(200, tuple);
        if (hec) co_return;
        auto b = asio::buffer(answer);
        co_await res.write(b, tuple);
    });
    server.handle("/partial/", [](req_t& req, res_t& res) -> asio::awaitable<void> {
        const auto v = path_numbers(req.path());
        co_await read_body(req, v[1], v[0]);  // reads part, answers, returns: the rest is stopped
        auto [hec] = co_await res.send_header(200, tuple);
        (void)hec;
    });
    server.handle("/reset", [](req_t&, res_t& res) -> asio::awaitable<void> {
        res.take_over().reset(h3co::h3_error::request_rejected);
        co_return;
    });
    server.handle("/trailers/", [](req_t& req, res_t& res) -> asio::awaitable<void> {
        const std::uint64_t n = path_numbers(req.path())[0];
        auto [hec] = co_await res.send_header(200, tuple);
        if (hec) co_return;
        std::vector<std::uint8_t> buf;
        fill_body(buf, n, 0, static_cast<std::size_t>(n));
        auto b = asio::buffer(buf);
        auto [ec, written] = co_await res.write(b, tuple);
        (void)written;
        if (ec) co_return;
        h3co::fields trailers{{"x-len", std::to_string(n)}};
        co_await res.finish_with_trailers(trailers, tuple);
    });
    server.handle("/interim/", [](req_t& req, res_t& res) -> asio::awaitable<void> {
        const std::uint64_t n = path_numbers(req.path())[0];
        h3co::fields hints{{"link", "</style.css>; rel=preload"}};
        auto [iec] = co_await res.send_interim(103, hints, tuple);
        if (iec) co_return;
        auto [hec] = co_await res.send_header(200, tuple);
        if (hec) co_return;
        std::vector<std::uint8_t> buf;
        fill_body(buf, n, 0, static_cast<std::size_t>(n));
        auto b = asio::buffer(buf);
        co_await res.write(b, tuple);
    });
    server.handle("/datagrams", [](req_t&, res_t& res) -> asio::awaitable<void> {
        // Echoes each HTTP/3 datagram of the stream until the request body ends (the client's
        // FIN): the echo loop is then cancelled (its pending receive ends with operation_aborted).
        auto [hec] = co_await res.send_header(200, tuple);
        if (hec) co_return;
        auto s = res.take_over();
        auto echo = [&s]() -> asio::awaitable<std::error_code> {
            std::array<std::uint8_t, 2048> buf;
            for (;;) {
                auto rb = asio::buffer(buf);
                auto [ec, n] = co_await s.receive_datagram(rb, tuple);
                if (ec) co_return ec;
                auto wb = asio::buffer(buf.data(), n);
                auto [sec] = co_await s.send_datagram(wb, tuple);
                if (sec && sec != h3co::error::datagram_too_large) co_return sec;
            }
        };
        auto drain = [&s]() -> asio::awaitable<std::error_code> {
            auto r = co_await read_body(s, 0);
            co_return r.ec;
        };
        using namespace asio::experimental::awaitable_operators;
        auto e = echo();
        auto d = drain();
        auto either = std::move(e) || std::move(d);
        auto r = co_await std::move(either);
        // Datagrams unavailable (not_supported, not_negotiated) or ended: the body still decides.
        std::error_code body_end;
        if (r.index() == 1) body_end = std::get<1>(r);
        else body_end = co_await drain();
        if (body_end == h3co::error::eof) {
            co_await s.finish(tuple);
            co_return;
        }
        s.reset();
    });
    server.handle("/takeover", [](req_t&, res_t& res) -> asio::awaitable<void> {
        auto [hec] = co_await res.send_header(200, tuple);
        if (hec) co_return;
        auto s = res.take_over();
        std::array<std::uint8_t, 8192> buf;
        for (;;) {
            auto rb = asio::buffer(buf);
            auto [ec, n] = co_await s.read_some(rb, tuple);
            if (n) {
                auto wb = asio::buffer(buf.data(), n);
                auto [wec, written] = co_await s.write(wb, tuple);
                (void)written;
                if (wec) co_return;
            }
            if (ec == h3co::error::eof) break;
            if (ec) {
                s.reset();
                co_return;
            }
        }
    });
}

// ---- the clients --------------------------------------------------------------------------

enum class action { get_all, get_part_drop, echo, answer_unread, reset, cancel_read, trailers, interim, takeover, datagrams, count };

inline const char* name_of(action a) {
    static const char* names[] = {"get",     "get-part-drop", "echo",     "answer-unread", "reset",
                                  "cancel-read", "trailers", "interim", "takeover", "datagrams"};
    return names[static_cast<int>(a)];
}

inline std::uint64_t body_size(prng& rng) {
    const auto r = rng.below(100);
    if (r < 20) return rng.below(100);
    if (r < 80) return rng.between(100, 64 * 1024);
    if (r < 97) return rng.between(64 * 1024, 512 * 1024);
    return rng.between(512 * 1024, 3 * 1024 * 1024);
}

/// Opens a stream and sends `path`'s header (finishing it unless `keep_open`); null on failure.
inline asio::awaitable<std::error_code> start_request(h3co::connection& conn, h3co::request_stream& out,
                                                      const std::string& method, const std::string& path,
                                                      bool keep_open) {
    auto [oec, stream] = co_await conn.open_request_stream(tuple);
    if (oec) co_return oec;
    h3co::request req;
    req.method = method;
    req.url = path;
    auto [hec] = co_await stream.send_header(req, tuple);
    if (hec) co_return hec;
    if (!keep_open) {
        auto [fec] = co_await stream.finish(tuple);
        if (fec) co_return fec;
    }
    out = std::move(stream);
    co_return std::error_code{};
}

/// Waits `delay_ms`, then emits `type` on `sig`: a cancellation at a random moment.
inline asio::awaitable<void> cancel_later(context& ctx, std::uint64_t id, std::shared_ptr<asio::cancellation_signal> sig,
                                          std::uint64_t delay_ms, asio::cancellation_type type) {
    co_await h3co::sleep_for(std::chrono::milliseconds(delay_ms));
    sig->emit(type);
    ctx.end(id);
}

// HTTP/3 datagrams carry their sequence number and size in their first 8 bytes, then body bytes
// of a body of (seq * 4096 + size) bytes: each is checkable alone.
inline constexpr std::size_t datagram_header = 8;

inline void fill_datagram(std::vector<std::uint8_t>& out, std::uint32_t seq, std::uint32_t size) {
    out.resize(size);
    for (int i = 0; i < 4; ++i) {
        out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(seq >> (8 * i));
        out[static_cast<std::size_t>(4 + i)] = static_cast<std::uint8_t>(size >> (8 * i));
    }
    pattern_bytes(out.data() + datagram_header, std::uint64_t{seq} * 4096 + size, 0, size - datagram_header);
}

/// The datagram's sequence number if it is intact (its header, length and pattern); -1 if not.
inline long datagram_seq(const std::uint8_t* p, std::size_t len) {
    if (len < datagram_header) return -1;
    std::uint32_t seq = 0, size = 0;
    for (int i = 0; i < 4; ++i) {
        seq |= std::uint32_t{p[i]} << (8 * i);
        size |= std::uint32_t{p[4 + i]} << (8 * i);
    }
    if (size != len || !pattern_matches(p + datagram_header, len - datagram_header, std::uint64_t{seq} * 4096 + size, 0))
        return -1;
    return static_cast<long>(seq);
}

/// A request stream with HTTP/3 datagrams (RFC 9297) both ways: sends `count` datagrams of random
/// sizes to the server's /datagrams, which echoes each, while receiving the echoes until all came
/// or a canceller (any cancellation type, at a random moment) ends the pending receive. Sometimes
/// the stream is reset or dropped mid-way. Datagrams may be lost; each one received must be
/// intact and come once; then the request itself ends cleanly or with a named error.
inline asio::awaitable<void> run_datagrams(context& ctx, h3co::connection& conn, prng& rng, const std::string& label,
                                           h3co::request_stream& stream, std::error_code& ec, std::string& outcome) {
    const auto count = static_cast<std::uint32_t>(rng.between(1, 40));
    // Mostly what fits a packet before path-MTU discovery (about 1150 bytes); now and then more,
    // which may be refused with datagram_too_large.
    std::vector<std::uint32_t> sizes;
    for (std::uint32_t i = 0; i < count; ++i)
        sizes.push_back(static_cast<std::uint32_t>(rng.chance(0.05) ? rng.between(1150, 1500) : rng.between(datagram_header, 1100)));
    const std::uint64_t gap_ms = rng.chance(0.5) ? rng.between(0, 30) : 0;
    const std::uint64_t listen_ms = rng.between(0, 3000);
    static const asio::cancellation_type types[] = {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                                                    asio::cancellation_type::total};
    const auto type = types[rng.below(3)];
    const int ending = static_cast<int>(rng.below(10));  // 0: reset mid-way, 1: dropped mid-way, else finish
    const std::uint32_t stop_at = static_cast<std::uint32_t>(rng.below(count + 1));

    ec = co_await start_request(conn, stream, "POST", "/datagrams", true);
    if (ec) co_return;
    auto [rec, head] = co_await stream.read_response(tuple);
    if (rec) {
        ec = rec;
        co_return;
    }
    auto sig = std::make_shared<asio::cancellation_signal>();
    const auto cid = ctx.begin(label + " canceller");
    asio::co_spawn(conn.get_executor(), cancel_later(ctx, cid, sig, listen_ms, type), asio::detached);

    std::vector<bool> seen(count, false);
    std::uint32_t received = 0;
    auto receiver = [&]() -> asio::awaitable<std::error_code> {
        std::array<std::uint8_t, 2048> buf;
        auto tok = asio::bind_cancellation_slot(sig->slot(), tuple);
        while (received < count) {
            auto b = asio::buffer(buf);
            auto [dec, got] = co_await stream.receive_datagram(b, tok);
            if (dec) co_return dec;
            const long seq = datagram_seq(buf.data(), got);
            if (seq < 0 || static_cast<std::uint32_t>(seq) >= count) {
                ctx.fail(label + ": a datagram of " + std::to_string(got) + " bytes arrived damaged");
                co_return std::error_code{};
            }
            if (seen[static_cast<std::size_t>(seq)]) {
                ctx.fail(label + ": datagram " + std::to_string(seq) + " delivered twice");
                co_return std::error_code{};
            }
            seen[static_cast<std::size_t>(seq)] = true;
            ++received;
        }
        co_return std::error_code{};
    };
    auto sender = [&]() -> asio::awaitable<std::error_code> {
        std::vector<std::uint8_t> d;
        for (std::uint32_t i = 0; i < count; ++i) {
            if (ending < 2 && i == stop_at) {
                // Mid-way: reset, or drop the handle (reset on destroy); the receive must end.
                if (ending == 0) stream.reset();
                else stream = h3co::request_stream();
                co_return make_error_code(asio::error::operation_aborted);
            }
            fill_datagram(d, i, sizes[i]);
            auto b = asio::buffer(d);
            auto [sec] = co_await stream.send_datagram(b, tuple);
            if (sec == h3co::error::datagram_too_large) continue;  // refused, named: the next may fit
            if (sec) co_return sec;
            if (gap_ms) co_await h3co::sleep_for(std::chrono::milliseconds(gap_ms));
        }
        co_return std::error_code{};
    };
    using namespace asio::experimental::awaitable_operators;
    auto r = receiver();
    auto w = sender();
    auto both = std::move(r) && std::move(w);
    auto [rdec, sdec] = co_await std::move(both);
    outcome = std::to_string(received) + "/" + std::to_string(count) + " r=" + describe(rdec) + " s=" + describe(sdec);
    if (!stream.is_open()) {
        ec = make_error_code(asio::error::operation_aborted);
        co_return;
    }
    // The request itself ends as any other: a clean end or a named error.
    auto [fec] = co_await stream.finish(tuple);
    auto body = co_await read_body(stream, 0);
    check_body(ctx, label, body, 0);
    ec = body.ec;
    if (ending >= 2 && !fec && body.ec == h3co::error::eof && sdec && sdec != h3co::error::not_supported &&
        sdec != h3co::error::not_negotiated)
        ctx.fail(label + ": a datagram send failed with " + describe(sdec) + " on a stream that ended cleanly");
}

/// One action on `conn`; `who` names it in the trace.
inline asio::awaitable<void> run_action(context& ctx, h3co::connection& conn, prng& rng, const std::string& who) {
    const auto a = static_cast<action>(rng.below(static_cast<int>(action::count)));
    const std::uint64_t n = body_size(rng);
    // Paced bodies (a pause after each chunk) go in at most 16 chunks, so that an action takes
    // seconds of virtual time, not hours.
    const std::size_t chunk = static_cast<std::size_t>(std::max<std::uint64_t>(rng.between(1, 64 * 1024), n / 16 + 1));
    const std::string label = who + " " + name_of(a) + " " + std::to_string(n);
    h3co::request_stream stream;
    std::error_code ec;
    std::string outcome;
    switch (a) {
    case action::get_all:
    case action::get_part_drop: {
        const std::uint64_t pause = rng.chance(0.2) ? rng.between(1, 20) : 0;
        ec = co_await start_request(conn, stream, "GET",
                                    "/blob/" + std::to_string(n) + "/" + std::to_string(chunk) + "/" + std::to_string(pause),
                                    false);
        if (ec) break;
        auto [rec, head] = co_await stream.read_response(tuple);
        if (rec) {
            ec = rec;
            break;
        }
        const std::uint64_t stop = a == action::get_part_drop ? rng.below(n + 1) : ~0ull;
        auto r = co_await read_body(stream, n, stop);
        if (a == action::get_all || r.bytes < stop) check_body(ctx, label, r, n);
        else if (!r.pattern_ok) ctx.fail(label + ": body bytes differ from what was sent");
        outcome = std::to_string(r.bytes);
        ec = a == action::get_part_drop && r.bytes >= stop ? std::error_code{} : r.ec;
        break;  // get-part-drop: the stream is dropped unread (reset on destroy)
    }
    case action::echo:
    case action::takeover: {
        ec = co_await start_request(conn, stream, "POST", a == action::echo ? "/echo" : "/takeover", true);
        if (ec) break;
        auto reader = [&]() -> asio::awaitable<body_result> {
            auto [rec, head] = co_await stream.read_response(tuple);
            if (rec) co_return body_result{rec, 0, true};
            co_return co_await read_body(stream, n);
        };
        using namespace asio::experimental::awaitable_operators;
        auto w = write_body(stream, n, chunk);
        auto r = reader();
        auto both = std::move(w) && std::move(r);
        auto [wec, res] = co_await std::move(both);
        if (!wec) check_body(ctx, label, res, n);
        else if (!res.pattern_ok) ctx.fail(label + ": body bytes differ from what was sent");
        outcome = std::to_string(res.bytes) + " w=" + describe(wec);
        ec = res.ec;
        break;
    }
    case action::answer_unread: {
        // The server answers without reading the request's body: writes may be stopped.
        ec = co_await start_request(conn, stream,
                                    "POST", "/blob/" + std::to_string(n) + "/" + std::to_string(chunk) + "/0", true);
        if (ec) break;
        auto reader = [&]() -> asio::awaitable<body_result> {
            auto [rec, head] = co_await stream.read_response(tuple);
            if (rec) co_return body_result{rec, 0, true};
            co_return co_await read_body(stream, n);
        };
        using namespace asio::experimental::awaitable_operators;
        auto w = write_body(stream, body_size(rng), chunk);
        auto r = reader();
        auto both = std::move(w) && std::move(r);
        auto [wec, res] = co_await std::move(both);
        check_body(ctx, label, res, n);
        outcome = std::to_string(res.bytes) + " w=" + describe(wec);
        ec = res.ec;
        break;
    }
    case action::reset: {
        ec = co_await start_request(conn, stream, "GET", "/reset", false);
        if (ec) break;
        auto [rec, head] = co_await stream.read_response(tuple);
        if (!rec) ctx.fail(label + ": a reset stream gave a response " + std::to_string(head.status));
        ec = rec;
        break;
    }
    case action::cancel_read: {
        ec = co_await start_request(conn, stream, "GET", "/blob/" + std::to_string(n) + "/" + std::to_string(chunk) + "/5",
                                    false);
        if (ec) break;
        auto sig = std::make_shared<asio::cancellation_signal>();
        static const asio::cancellation_type types[] = {asio::cancellation_type::terminal,
                                                        asio::cancellation_type::partial,
                                                        asio::cancellation_type::total};
        const auto type = types[rng.below(3)];
        const auto id = ctx.begin(label + " canceller");
        asio::co_spawn(conn.get_executor(), cancel_later(ctx, id, sig, rng.between(0, 300), type), asio::detached);
        auto tok = asio::bind_cancellation_slot(sig->slot(), tuple);
        auto [rec, head] = co_await stream.read_response(tok);
        if (rec) {
            ec = rec;
            break;
        }
        body_result r;
        std::array<std::uint8_t, 4096> buf;
        for (;;) {
            auto b = asio::buffer(buf);
            auto [rec2, got] = co_await stream.read_some(b, tok);
            if (!pattern_matches(buf.data(), got, n, r.bytes)) r.pattern_ok = false;
            r.bytes += got;
            if (rec2) {
                r.ec = rec2;
                break;
            }
        }
        check_body(ctx, label, r, n);
        outcome = std::to_string(r.bytes);
        ec = r.ec;
        break;
    }
    case action::trailers: {
        ec = co_await start_request(conn, stream, "GET", "/trailers/" + std::to_string(n % 100'000), false);
        if (ec) break;
        auto [rec, head] = co_await stream.read_response(tuple);
        if (rec) {
            ec = rec;
            break;
        }
        auto r = co_await read_body(stream, n % 100'000);
        check_body(ctx, label, r, n % 100'000);
        if (r.ec == h3co::error::eof) {
            auto t = stream.trailers().find("x-len");
            if (!t || *t != std::to_string(n % 100'000)) ctx.fail(label + ": trailers missing after a clean end");
        }
        ec = r.ec;
        break;
    }
    case action::interim: {
        ec = co_await start_request(conn, stream, "GET", "/interim/" + std::to_string(n % 100'000), false);
        if (ec) break;
        auto [iec, ihead] = co_await stream.read_interim(tuple);
        if (!iec && ihead.status != 103) ctx.fail(label + ": interim status " + std::to_string(ihead.status));
        auto [rec, head] = co_await stream.read_response(tuple);
        if (rec) {
            ec = rec;
            break;
        }
        if (!iec && head.status != 200) ctx.fail(label + ": final status " + std::to_string(head.status));
        auto r = co_await read_body(stream, n % 100'000);
        check_body(ctx, label, r, n % 100'000);
        ec = r.ec;
        break;
    }
    case action::datagrams:
        co_await run_datagrams(ctx, conn, rng, label, stream, ec, outcome);
        break;
    case action::count:
        break;
    }
    ctx.record(label, describe(ec) + (outcome.empty() ? "" : " " + outcome));
    if (ctx.inject_failure && a == action::trailers && ec == h3co::error::eof)
        ctx.fail(label + ": injected failure (a trailers body read to its end)");
    if (conn.is_open() || conn.close_error()) {
        ctx.check_ledger(label, conn.stats());
        check_stream_memory(ctx, label, h3co::testing::stream_memory_of(conn));
    }
}

/// An idle timeout's upper bound as ngtcp2 applies it: the larger of the negotiated timeout and
/// three PTOs (RFC 9000 §10.1), the PTO estimated from `s`, with ngtcp2's 25 ms maximum ACK delay.
inline std::uint64_t idle_bound_ms(const h3co::connection_stats& s, std::uint64_t idle_ms) {
    const auto pto_ms = static_cast<std::uint64_t>((s.smoothed_rtt + 4 * s.rtt_variance).count() / 1'000'000) + 25;
    return std::max(idle_ms, 3 * pto_ms);
}

/// The idle-timeout move (scenario::idle_at_ns): `conn`, connected with `options` (an idle
/// timeout of a few seconds and no keep-alive), runs a few actions, then waits on a response the
/// server pauses for 20 s, with a datagram receive pending on the same stream: the connection must
/// end (error::idle_timeout, or another named error), both operations with it, once each, and
/// what is started on it afterwards must fail with a named error. Then `pool`, with the same
/// options, makes a request, stays quiet past its idle timeout, and must connect anew for the
/// next: a request sent on the pooled connection that ended fails the scenario.
inline asio::awaitable<void> run_idle(context& ctx, h3co::connection& conn, h3co::client& pool, prng& rng,
                                      std::uint64_t idle_ms, bool connected) {
    const int actions = static_cast<int>(rng.between(0, 3));
    for (int a = 0; a < actions; ++a) {
        auto arng = rng.fork();
        const std::string who = "idle a" + std::to_string(a);
        const auto aid = ctx.begin(who);
        co_await run_action(ctx, conn, arng, who);
        ctx.end(aid);
    }
    {
        // The quiet: 100 bytes of a 200-byte response, then 20 s of nothing from the server.
        const std::string label = "idle quiet";
        h3co::request_stream stream;
        auto ec = co_await start_request(conn, stream, "GET", "/blob/200/100/20000", false);
        body_result r{ec, 0, true};
        std::error_code dec;
        bool dgram_waited = false;
        h3co::connection_stats before;
        if (!ec) {
            auto [rec, head] = co_await stream.read_response(tuple);
            before = conn.stats();
            if (rec) r.ec = rec;
            else {
                auto reader = [&]() -> asio::awaitable<body_result> { co_return co_await read_body(stream, 200); };
                auto dgram = [&]() -> asio::awaitable<std::error_code> {
                    std::array<std::uint8_t, 2048> buf;
                    auto b = asio::buffer(buf);
                    auto [e, got] = co_await stream.receive_datagram(b, tuple);
                    (void)got;
                    co_return e;
                };
                using namespace asio::experimental::awaitable_operators;
                auto rd = reader();
                auto dg = dgram();
                auto both = std::move(rd) && std::move(dg);
                auto [body, d] = co_await std::move(both);
                r = body;
                dec = d;
                dgram_waited = true;
                check_body(ctx, label, r, 200);
            }
        }
        const std::uint64_t bound = idle_bound_ms(before, idle_ms);
        ctx.record(label, describe(r.ec) + " " + std::to_string(r.bytes) + " datagram " + describe(dec) + " closed " +
                              describe(conn.close_error()));
        // Ended cleanly after the server's 20 s pause: nothing ended the quiet connection, although
        // its idle timeout (and three PTOs) are well within the pause and the server's keep-alive
        // (5 s) cannot have come first.
        if (r.ec == h3co::error::eof && bound + before.smoothed_rtt.count() / 1'000'000 < 4'000)
            ctx.fail(label + ": the response came through 20 s of quiet; the idle timeout is " + std::to_string(idle_ms) +
                     " ms (at most " + std::to_string(bound) + " ms with three PTOs)");
        if (dgram_waited && !dec) ctx.fail(label + ": a datagram receive completed with a datagram nobody sent");
        if (connected && !conn.is_open()) {
            if (!conn.close_error()) ctx.fail(label + ": the connection ended without a named error");
            h3co::request_stream late;
            auto lec = co_await start_request(conn, late, "GET", "/blob/10/10/0", false);
            ctx.record(label, "after the end: " + describe(lec));
            if (!lec) ctx.fail(label + ": a request stream opened on a connection that had ended");
        }
    }
    {
        // The pool: a request, quiet past the idle timeout, the next request on a new connection.
        const std::string label = "idle pool";
        h3co::request req;
        req.method = "GET";
        req.url = "https://127.0.0.1:443/blob/300/100/0";
        auto [e1, resp1] = co_await pool.request(req, tuple);
        std::error_code b1 = e1;
        if (!e1) b1 = (co_await read_body(resp1, 300)).ec;
        const std::string url = "https://127.0.0.1:443/";
        auto [ce, first] = co_await pool.connection_for(url, tuple);
        if (ce || b1 != h3co::error::eof) {
            ctx.record(label, "first " + describe(b1) + " connection " + describe(ce));
            co_return;
        }
        const std::uint64_t quiet = 3 * idle_bound_ms(first.stats(), idle_ms) + 2'000;
        co_await h3co::sleep_for(std::chrono::milliseconds(quiet));
        const bool ended = !first.is_open();
        const std::uint64_t asked_at = ctx.now();
        auto [e2, resp2] = co_await pool.request(req, tuple);
        const std::uint64_t answered_in = ctx.now() - asked_at;
        std::error_code b2 = e2;
        if (!e2) {
            auto r2 = co_await read_body(resp2, 300);
            check_body(ctx, label, r2, 300);
            b2 = r2.ec;
        }
        ctx.record(label, "quiet " + std::to_string(quiet) + " ms: ended " + describe(first.close_error()) + ", next " +
                              describe(b2));
        if (!ended)
            ctx.fail(label + ": the pooled connection stayed open through " + std::to_string(quiet) +
                     " ms of quiet with an idle timeout of " + std::to_string(idle_ms) + " ms");
        else if (e2 && e2 == first.close_error() && answered_in < idle_ms)
            // Sooner than a new connection's idle timeout could end it: it went to the old one. (A
            // new connection may itself time out in a lossy handshake: seed 618, 1.x.)
            ctx.fail(label + ": the next request went to the pooled connection that had ended (" + describe(e2) + " after " +
                     std::to_string(answered_in) + " ms)");
    }
}

/// A pipe-fed upload through an h3co::client pool: a slow producer writes the body while the
/// request is in flight; the server's /sink answers with what it got.
inline asio::awaitable<void> run_pipe_upload(context& ctx, h3co::client& client, prng& rng, const std::string& who) {
    const std::uint64_t n = body_size(rng);
    // At most 16 paused chunks, as run_action's: 512-byte chunks 30 ms apart made a 5 MB upload
    // take minutes of virtual time with nothing else completing, a hang to the stall check
    // (seed 34624 on cf49c5a, docs/testing.md).
    const std::size_t chunk = static_cast<std::size_t>(std::max<std::uint64_t>(rng.between(512, 64 * 1024), n / 16 + 1));
    const std::uint64_t pause = rng.between(0, 30);
    const std::string label = who + " pipe-upload " + std::to_string(n);
    auto ex = co_await asio::this_coro::executor;
    auto [reader, writer] = h3co::make_pipe(ex, static_cast<std::size_t>(rng.between(1024, 256 * 1024)));
    auto produce = [](h3co::pipe_writer w, std::uint64_t n, std::size_t chunk, std::uint64_t pause)
        -> asio::awaitable<std::error_code> {
        std::vector<std::uint8_t> buf;
        for (std::uint64_t off = 0; off < n;) {
            const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, n - off));
            fill_body(buf, n, off, len);
            auto b = asio::buffer(buf.data(), len);
            auto [ec, written] = co_await w.write(b, tuple);
            (void)written;
            if (ec) co_return ec;
            off += len;
            if (pause) co_await h3co::sleep_for(std::chrono::milliseconds(pause));
        }
        w.close();
        co_return std::error_code{};
    };
    h3co::request req;
    req.method = "POST";
    req.url = "https://127.0.0.1:443/sink";
    req.headers.push_back({"x-len", std::to_string(n)});
    using namespace asio::experimental::awaitable_operators;
    auto p = produce(std::move(writer), n, chunk, pause);
    auto r = client.request(req, std::move(reader), tuple);
    auto both = std::move(p) && std::move(r);
    auto [pec, result] = co_await std::move(both);
    auto& [rec, response] = result;
    std::string outcome = "w=" + describe(pec);
    std::error_code ec = rec;
    if (!rec) {
        std::string body;
        std::array<char, 256> buf;
        for (;;) {
            auto b = asio::buffer(buf);
            auto [bec, got] = co_await response.read_some(b, tuple);
            body.append(buf.data(), got);
            if (bec) {
                ec = bec;
                break;
            }
        }
        if (ec == h3co::error::eof && response.status == 200 && body != std::to_string(n) + ":ok")
            ctx.fail(label + ": server got '" + body + "' for a body of " + std::to_string(n));
        outcome += " " + body;
    }
    ctx.record(label, describe(ec) + " " + outcome);
}

}  // namespace h3co_sim
