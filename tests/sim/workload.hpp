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

enum class action { get_all, get_part_drop, echo, answer_unread, reset, cancel_read, trailers, interim, takeover, count };

inline const char* name_of(action a) {
    static const char* names[] = {"get",     "get-part-drop", "echo",     "answer-unread", "reset",
                                  "cancel-read", "trailers", "interim", "takeover"};
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

/// A pipe-fed upload through an h3co::client pool: a slow producer writes the body while the
/// request is in flight; the server's /sink answers with what it got.
inline asio::awaitable<void> run_pipe_upload(context& ctx, h3co::client& client, prng& rng, const std::string& who) {
    const std::uint64_t n = body_size(rng);
    const std::size_t chunk = static_cast<std::size_t>(rng.between(512, 64 * 1024));
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
