// Faults on the path: through a seeded lossy relay, uploads and downloads stay byte-exact under
// loss, reordering, duplication and corruption, during the handshake and during the transfer; a
// path that goes silent ends in a timeout error, never a hang; and a long, quiet upload is kept
// alive by PINGs while its stream is open.
#include "support/lossy_relay.hpp"
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <cstdlib>
#include <random>
#include <tuple>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using dir = test::lossy_relay::direction;

namespace faults_test {

/// `n` pseudo-random bytes, the same for the same seed.
std::string make_body(std::size_t n, std::uint32_t seed) {
    std::string s(n, '\0');
    std::mt19937 gen(seed);
    for (std::size_t i = 0; i < n; i += 4) {
        const std::uint32_t v = gen();
        for (std::size_t k = 0; k < 4 && i + k < n; ++k) s[i + k] = static_cast<char>(v >> (8 * k));
    }
    return s;
}

struct fnv1a {
    std::uint64_t value = 14695981039346656037ull;
    void update(const char* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) value = (value ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
    }
    static std::uint64_t of(const std::string& s) {
        fnv1a h;
        h.update(s.data(), s.size());
        return h.value;
    }
};

/// What the upload handler saw.
struct upload_seen {
    std::size_t bytes = 0;
    std::uint64_t hash = 0;
    std::error_code end;  ///< how the body ended: eof, or the error
    clock_type::time_point ended_at;
    int count = 0;  ///< requests that finished reading
};

constexpr std::uint32_t download_seed = 7;

/// A server with the test's routes on 127.0.0.1, and a relay in front of it.
///   /upload          reads the body, hashes it, answers 200 with x-bytes and x-fnv.
///   /download/<n>    answers 200 and n pseudo-random bytes (make_body(n, download_seed)).
struct rig {
    explicit rig(asio::io_context& io, const h3co::connection_options& options = {}, std::uint32_t seed = 20240601)
        : server(test::executor(io), test::server_identity(), options),
          relay(io, server.listen("127.0.0.1", 0), seed) {
        server.handle("/upload", [seen = seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            std::vector<char> buf(64 * 1024);
            fnv1a hash;
            std::size_t total = 0;
            std::error_code end;
            for (;;) {
                auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
                hash.update(buf.data(), n);
                total += n;
                if (ec) {
                    end = ec;
                    break;
                }
            }
            seen->bytes = total;
            seen->hash = hash.value;
            seen->end = end;
            seen->ended_at = clock_type::now();
            ++seen->count;
            if (end != h3co::error::eof) co_return;
            const h3co::fields answer{{"x-bytes", std::to_string(total)}, {"x-fnv", std::to_string(hash.value)}};
            co_await res.send_header(200, answer);
        });
        server.handle("/download/", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            const std::size_t n = std::stoul(req.path().substr(std::string("/download/").size()));
            const std::string body = make_body(n, download_seed);
            co_await res.send_header(200);
            for (std::size_t off = 0; off < body.size(); off += 64 * 1024)
                co_await res.write(asio::buffer(body.data() + off, std::min<std::size_t>(64 * 1024, body.size() - off)));
        });
    }

    std::shared_ptr<upload_seen> seen = std::make_shared<upload_seen>();
    h3co::server server;
    test::lossy_relay relay;
};

/// Connects to the relay. Arguments are references to the caller's named values: no string-holding
/// temporary may sit inside a co_await (g++ 12, docs/getting-started.md).
asio::awaitable<h3co::connection> connect_to(std::uint16_t port, const h3co::connection_options& options) {
    const std::string host = "127.0.0.1";
    const h3co::client_tls tls = test::trusting_test_ca();
    auto ex = co_await asio::this_coro::executor;
    auto op = h3co::connect(ex, host, port, tls, options);  // the string copies die here, before the co_await
    co_return co_await std::move(op);
}

/// connect_to(), for a connect that may fail: its error and the connection (empty then).
asio::awaitable<std::tuple<std::error_code, h3co::connection>> try_connect_to(std::uint16_t port,
                                                                           const h3co::connection_options& options) {
    const std::string host = "127.0.0.1";
    const h3co::client_tls tls = test::trusting_test_ca();
    auto ex = co_await asio::this_coro::executor;
    auto op = h3co::connect(ex, host, port, tls, options, tuple);  // the string copies die here, before the co_await
    co_return co_await std::move(op);
}

/// Opens a stream on `conn` and sends POST /upload's header; the body stays open.
asio::awaitable<h3co::request_stream> start_upload(h3co::connection& conn) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = "/upload"};
    co_await stream.send_header(req);
    co_return stream;
}

/// POSTs `body` to /upload in 64 KiB writes, then reads the answer (status and the handler's
/// x-bytes / x-fnv) and its (empty) body to the end.
asio::awaitable<h3co::response_head> upload(h3co::connection& conn, const std::string& body) {
    auto stream = co_await start_upload(conn);
    for (std::size_t off = 0; off < body.size(); off += 64 * 1024)
        co_await stream.write(asio::buffer(body.data() + off, std::min<std::size_t>(64 * 1024, body.size() - off)));
    co_await stream.finish();
    auto head = co_await stream.read_response();
    std::array<char, 256> buf;
    for (;;) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        if (ec == h3co::error::eof) break;
        if (ec) throw std::system_error(ec);
    }
    co_return head;
}

/// GETs /download/<n> and returns the whole body.
asio::awaitable<std::string> download(h3co::connection& conn, std::size_t n) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "GET", .url = "/download/" + std::to_string(n)};
    co_await stream.send_header(req);
    co_await stream.finish();
    auto head = co_await stream.read_response();
    if (head.status != 200) throw std::runtime_error("download: status " + std::to_string(head.status));
    std::string got;
    got.reserve(n);
    std::vector<char> buf(64 * 1024);
    for (;;) {
        auto [ec, m] = co_await stream.read_some(asio::buffer(buf), tuple);
        got.append(buf.data(), m);
        if (ec == h3co::error::eof) break;
        if (ec) throw std::system_error(ec);
    }
    co_return got;
}

/// One upload of `up` bytes and one download of `down` bytes on `conn`, both checked byte for byte.
asio::awaitable<void> round_trip(h3co::connection& conn, rig& r, std::size_t up, std::size_t down) {
    const std::string body = make_body(up, static_cast<std::uint32_t>(up));
    const auto head = co_await upload(conn, body);
    CHECK(head.status == 200);
    CHECK(head.headers.find("x-bytes") == std::optional<std::string_view>(std::to_string(body.size())));
    CHECK(head.headers.find("x-fnv") == std::optional<std::string_view>(std::to_string(fnv1a::of(body))));
    CHECK(r.seen->end == h3co::error::eof);
    CHECK(r.seen->bytes == body.size());
    CHECK(r.seen->hash == fnv1a::of(body));

    const std::string got = co_await download(conn, down);
    CHECK(got.size() == down);
    CHECK(fnv1a::of(got) == fnv1a::of(make_body(down, download_seed)));
}

/// Runs `io` until `done()` holds or `limit` passes; returns whether it holds.
template <class Predicate>
bool settle_until(asio::io_context& io, Predicate done, clock_type::duration limit) {
    const auto deadline = clock_type::now() + limit;
    while (!done() && clock_type::now() < deadline) test::settle(io, 20ms);
    return done();
}

double rate(std::uint64_t part, std::uint64_t whole) { return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0.0; }


TEST_CASE("faults: uploads and downloads are byte-exact at 5%, 10% and 25% loss", "[faults]") {
    const double loss = GENERATE(0.05, 0.10, 0.25);
    CAPTURE(loss);
    asio::io_context io;
    rig r(io);
    // Smaller bodies at 25% loss: the congestion controller crawls there, and the suite must stay quick.
    const std::size_t size = loss > 0.2 ? 1024 * 1024 : 2 * 1024 * 1024;
    const h3co::connection_options options;
    const test::fault_policy lossy{.drop = loss};
    r.relay.set(lossy);  // from the first datagram: the handshake is lossy too
    const auto started = clock_type::now();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        co_await round_trip(conn, r, size, size);
    }(), 40s);
    const auto took = std::chrono::duration<double>(clock_type::now() - started).count();
    for (const auto d : {dir::to_server, dir::to_client}) {
        const auto& c = r.relay.counters(d);
        CAPTURE(d == dir::to_server, c.received, c.dropped, took);
        CHECK(c.received > 100);
        // The loss really happened, at about the rate asked for.
        CHECK(rate(c.dropped, c.received) > loss * 0.5);
        CHECK(rate(c.dropped, c.received) < loss * 1.6);
    }
}

TEST_CASE("faults: reordering, duplication and jitter keep both directions byte-exact", "[faults]") {
    asio::io_context io;
    rig r(io);
    const h3co::connection_options options;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        const test::fault_policy shuffled{.drop = 0.02, .duplicate = 0.10, .reorder = 0.15, .jitter = 2ms};
        r.relay.set(shuffled);
        co_await round_trip(conn, r, 2 * 1024 * 1024, 2 * 1024 * 1024);
    }(), 40s);
    for (const auto d : {dir::to_server, dir::to_client}) {
        const auto& c = r.relay.counters(d);
        CAPTURE(d == dir::to_server, c.received, c.reordered, c.duplicated, c.delayed);
        CHECK(c.reordered > 10);
        CHECK(c.duplicated > 10);
        CHECK(c.delayed > 10);
    }
}

TEST_CASE("faults: 1% corrupted datagrams are rejected and the data stays byte-exact", "[faults]") {
    asio::io_context io;
    rig r(io);
    const h3co::connection_options options;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        const test::fault_policy corrupting{.corrupt = 0.01};
        r.relay.set(corrupting);
        co_await round_trip(conn, r, 2 * 1024 * 1024, 2 * 1024 * 1024);
    }(), 40s);
    for (const auto d : {dir::to_server, dir::to_client}) {
        const auto& c = r.relay.counters(d);
        CAPTURE(d == dir::to_server, c.received, c.corrupted);
        CHECK(c.corrupted > 0);
    }
    CHECK(r.relay.total().corrupted >= 10);
}

TEST_CASE("faults: each kind of fault during the handshake, then mixed faults during the transfer", "[faults]") {
    // Each kind is made certain in both directions while the handshake runs: the first datagram
    // each way (the client's Initial, the server's first flight) is lost or corrupted, or every
    // datagram is duplicated, or every pair is swapped.
    const std::string kind = GENERATE(std::string("loss"), std::string("duplication"), std::string("reordering"),
                                      std::string("corruption"));
    CAPTURE(kind);
    asio::io_context io;
    rig r(io);
    const h3co::connection_options options;
    test::fault_policy handshake;
    if (kind == "loss") handshake = {.drop_next = 1};
    if (kind == "duplication") handshake = {.duplicate = 1.0};
    if (kind == "reordering") handshake = {.reorder = 1.0};
    if (kind == "corruption") handshake = {.corrupt = 0.1, .corrupt_next = 1};
    r.relay.set(handshake);
    test::relay_counters up, down;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        up = r.relay.counters(dir::to_server);
        down = r.relay.counters(dir::to_client);
        const test::fault_policy transfer{.drop = 0.08, .duplicate = 0.05, .reorder = 0.05, .corrupt = 0.01, .jitter = 1ms};
        r.relay.set(transfer);
        co_await round_trip(conn, r, 1024 * 1024, 1024 * 1024);
        const test::fault_policy clean;
        r.relay.set(clean);  // so that the client's CONNECTION_CLOSE surely arrives
    }(), 40s);
    // The client's connection is closed (its handle died); the server lets go of every session,
    // including any a damaged Initial may have started.
    const bool released = settle_until(io, [&] { return r.server.connection_count() == 0; }, 2s);
    CAPTURE(r.server.connection_count(), r.server.dropped_datagrams());
    CHECK(released);
    CAPTURE(up.received, up.dropped, up.duplicated, up.reordered, up.corrupted);
    CAPTURE(down.received, down.dropped, down.duplicated, down.reordered, down.corrupted);
    for (const auto* c : {&up, &down}) {
        if (kind == "loss") CHECK(c->dropped >= 1);
        if (kind == "duplication") CHECK(c->duplicated >= 1);
        if (kind == "reordering") CHECK(c->reordered >= 1);
        if (kind == "corruption") CHECK(c->corrupted >= 1);
    }
    // And the transfer went through its own faults.
    const auto all = r.relay.total();
    CHECK(all.dropped > up.dropped + down.dropped);
    CHECK(all.duplicated > up.duplicated + down.duplicated);
    CHECK(all.reordered > up.reordered + down.reordered);
    CHECK(all.corrupted > up.corrupted + down.corrupted);
}

TEST_CASE("faults: a blackhole after the handshake ends in idle_timeout on both sides, not a hang", "[faults]") {
    asio::io_context io;
    h3co::connection_options options;
    options.idle_timeout = 2s;
    rig r(io, options);
    std::error_code client_error;
    clock_type::time_point blackholed_at, failed_at;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        auto stream = co_await start_upload(conn);
        const std::string first = make_body(64 * 1024, 1);
        co_await stream.write(asio::buffer(first));
        co_await h3co::sleep_for(100ms);  // the handler is running and reading
        REQUIRE(r.relay.counters(dir::to_server).forwarded > 0);
        r.relay.blackhole(true);
        blackholed_at = clock_type::now();
        // More than the send buffer holds, so a write must wait for acknowledgements that never come.
        const std::string rest = make_body(2 * 1024 * 1024, 2);
        std::error_code ec;
        for (std::size_t off = 0; off < rest.size() && !ec; off += 64 * 1024) {
            auto [wec, n] = co_await stream.write(asio::buffer(rest.data() + off, 64 * 1024), tuple);
            ec = wec;
        }
        if (!ec) std::tie(ec) = co_await stream.finish(tuple);
        if (!ec) std::tie(ec, std::ignore) = co_await stream.read_response(tuple);
        client_error = ec;
        failed_at = clock_type::now();
        CHECK_FALSE(conn.is_open());
        CHECK(conn.close_error() == h3co::error::idle_timeout);
    }(), 15s);
    const auto waited = failed_at - blackholed_at;
    CAPTURE(client_error.message(), std::chrono::duration<double>(waited).count());
    CHECK(client_error == h3co::error::idle_timeout);
    CHECK(waited > 1500ms);
    CHECK(waited < 5s);
    CHECK(r.relay.counters(dir::to_server).blackholed > 0);
    // The server's handler saw its read fail too, with the same timeout, and the server let go.
    CHECK(settle_until(io, [&] { return r.seen->count == 1 && r.server.connection_count() == 0; }, 4s));
    CHECK(r.seen->count == 1);
    CHECK(r.seen->end == h3co::error::idle_timeout);
    CHECK(r.seen->ended_at - blackholed_at < 5s);
    CHECK(r.server.connection_count() == 0);
}

TEST_CASE("faults: a blackhole from the start ends in handshake_timeout, not a hang", "[faults]") {
    asio::io_context io;
    rig r(io);
    r.relay.blackhole(true);
    h3co::connection_options options;
    options.handshake_timeout = 2s;
    std::error_code error;
    const auto started = clock_type::now();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec, conn] = co_await try_connect_to(r.relay.port(), options);
        error = ec;
        CHECK_FALSE(conn.is_open());
    }(), 15s);
    const auto waited = clock_type::now() - started;
    CAPTURE(error.message(), std::chrono::duration<double>(waited).count());
    CHECK(error == h3co::error::handshake_timeout);
    CHECK(waited > 1500ms);
    CHECK(waited < 5s);
    CHECK(r.relay.counters(dir::to_server).blackholed >= 2);  // the Initial and at least one retransmission
    CHECK(r.relay.counters(dir::to_server).forwarded == 0);
    CHECK(r.server.connection_count() == 0);
}

// h3co_sim seed 345 (1.x; 0.12 the same): a client's first Initial arrived damaged, and its intact
// retransmission was then dropped for the damaged one's closing period (3 PTOs, about 3 s), in which
// a short idle timeout ended the client. ngtcp2 answers a first Initial that does not decrypt with
// NGTCP2_ERR_DROP_CONN: that connection never sent a packet, so no closing period protects anything.
TEST_CASE("faults: a damaged copy of the first Initial does not hold up the intact one", "[faults][initial]") {
    asio::io_context io;
    rig r(io);
    const test::fault_policy damaged_first{.corrupt_copy_next = 1};
    r.relay.set(dir::to_server, damaged_first);
    h3co::connection_options options;
    options.handshake_timeout = 2s;  // before the fix, the intact Initials were dropped for about 3 s
    std::error_code error;
    const auto started = clock_type::now();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec, conn] = co_await try_connect_to(r.relay.port(), options);
        error = ec;
        if (!ec) co_await round_trip(conn, r, 1000, 1000);
    }(), 15s);
    const auto took = clock_type::now() - started;
    CAPTURE(error.message(), std::chrono::duration<double>(took).count());
    CHECK(r.relay.counters(dir::to_server).corrupted == 1);
    CHECK_FALSE(error);
    CHECK(took < 1500ms);  // no retransmission was needed: the intact Initial made the connection
}

TEST_CASE("faults: a long, quiet upload outlives several idle timeouts (keep-alive)", "[faults][keepalive]") {
    asio::io_context io;
    h3co::connection_options options;
    options.idle_timeout = 1s;
    rig r(io, options);
    const std::string chunk = make_body(1000, 3);
    constexpr int chunks = 4;
    std::vector<std::uint64_t> quiet_traffic;  // datagrams the relay carried during each pause
    clock_type::duration took{};
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        const auto started = clock_type::now();
        auto stream = co_await start_upload(conn);
        for (int i = 0; i < chunks; ++i) {
            co_await stream.write(asio::buffer(chunk));
            co_await h3co::sleep_for(200ms);  // let the chunk and its ACK go by
            const auto before = r.relay.total().forwarded;
            co_await h3co::sleep_for(1300ms);  // then stay quiet for longer than the idle timeout
            quiet_traffic.push_back(r.relay.total().forwarded - before);
        }
        co_await stream.finish();
        auto head = co_await stream.read_response();
        CHECK(head.status == 200);
        took = clock_type::now() - started;
        CHECK(conn.is_open());
    }(), 20s);
    CHECK(took > 5s);  // five idle timeouts
    CHECK(r.seen->end == h3co::error::eof);
    CHECK(r.seen->bytes == chunks * chunk.size());
    CHECK(r.seen->hash == fnv1a::of([&] {
              std::string all;
              for (int i = 0; i < chunks; ++i) all += chunk;
              return all;
          }()));
    // The connection stayed up because PINGs crossed the relay during every pause.
    REQUIRE(quiet_traffic.size() == chunks);
    for (const auto n : quiet_traffic) CHECK(n >= 2);
}

TEST_CASE("faults: control: with keep-alive slower than the idle timeout, the same quiet upload times out",
          "[faults][keepalive]") {
    // Shows that the test above can fail: its pauses really are longer than the idle timeout.
    asio::io_context io;
    h3co::connection_options options;
    options.idle_timeout = 1s;
    options.keep_alive = 10s;
    rig r(io, options);
    std::error_code error;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        auto stream = co_await start_upload(conn);
        const std::string chunk = make_body(1000, 3);
        co_await stream.write(asio::buffer(chunk));
        co_await h3co::sleep_for(1500ms);
        std::tie(error, std::ignore) = co_await stream.write(asio::buffer(chunk), tuple);
        if (!error) std::tie(error) = co_await stream.finish(tuple);
    }(), 10s);
    CAPTURE(error.message());
    CHECK(error == h3co::error::idle_timeout);
}

TEST_CASE("faults: a blackhole that lifts before the idle timeout: the transfer resumes, byte-exact", "[faults]") {
    asio::io_context io;
    h3co::connection_options options;
    options.idle_timeout = 5s;
    rig r(io, options);
    const std::size_t size = 1024 * 1024;
    std::string got;
    std::uint64_t blackholed = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        // Cut the path after 100 datagrams of the download (about 140 KB of 1 MiB) for 1.5 s (the
        // loss-recovery timer backs off meanwhile), then let it through again.
        r.relay.cut_after(test::lossy_relay::direction::to_client, 100, 1500ms);
        got = co_await download(conn, size);
        blackholed = r.relay.total().blackholed;
        // And the connection is still good for an upload afterwards.
        const std::string body = make_body(256 * 1024, 9);
        const auto head = co_await upload(conn, body);
        CHECK(head.status == 200);
        CHECK(r.seen->hash == fnv1a::of(body));
    }(), 20s);
    CHECK(got.size() == size);
    CHECK(fnv1a::of(got) == fnv1a::of(make_body(size, download_seed)));
    CHECK(blackholed > 0);
}

TEST_CASE("faults: a one-way blackhole (server to client) during a download ends in idle_timeout on both sides",
          "[faults]") {
    asio::io_context io;
    h3co::connection_options options;
    options.idle_timeout = 2s;
    rig r(io, options);
    auto handler_error = std::make_shared<std::error_code>();
    auto handler_done = std::make_shared<clock_type::time_point>();
    // Streams until something fails: the handler's write must fail too once the connection is gone.
    r.server.handle("/endless", [handler_error, handler_done](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        const std::string block = make_body(16 * 1024, 4);
        for (;;) {
            auto [ec, n] = co_await res.write(asio::buffer(block), tuple);
            if (ec) {
                *handler_error = ec;
                *handler_done = clock_type::now();
                co_return;
            }
        }
    });
    std::error_code client_error;
    std::size_t received = 0;
    clock_type::time_point cut_at, failed_at;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = "/endless"};
        co_await stream.send_header(req);
        co_await stream.finish();
        auto head = co_await stream.read_response();
        CHECK(head.status == 200);
        std::vector<char> buf(64 * 1024);
        for (;;) {
            auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
            received += n;
            if (received >= 512 * 1024 && cut_at == clock_type::time_point{}) {
                test::fault_policy cut;
                cut.blackhole = true;
                r.relay.set(dir::to_client, cut);  // the client still reaches the server
                cut_at = clock_type::now();
            }
            if (ec) {
                client_error = ec;
                break;
            }
        }
        failed_at = clock_type::now();
    }(), 15s);
    CAPTURE(client_error.message(), std::chrono::duration<double>(failed_at - cut_at).count());
    CHECK(client_error == h3co::error::idle_timeout);
    CHECK(failed_at - cut_at > 1500ms);
    CHECK(failed_at - cut_at < 5s);
    CHECK(r.relay.counters(dir::to_client).blackholed > 0);
    // The server kept hearing from the client until the client gave up, then timed out in turn.
    CHECK(settle_until(io, [&] { return *handler_error && r.server.connection_count() == 0; }, 4s));
    CAPTURE(handler_error->message());
    CHECK(*handler_error == h3co::error::idle_timeout);
    CHECK(*handler_done - failed_at < 4s);
    CHECK(r.server.connection_count() == 0);
}

TEST_CASE("faults: the pooled client's pipe-fed upload is byte-exact under loss and reordering", "[faults]") {
    asio::io_context io;
    rig r(io);
    const test::fault_policy faulty{.drop = 0.1, .duplicate = 0.05, .reorder = 0.1};
    r.relay.set(faulty);
    h3co::client client(test::executor(io), test::trusting_test_ca());
    const std::string body = make_body(1024 * 1024, 11);
    int status = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [reader, writer] = h3co::make_pipe(test::executor(io));
        asio::co_spawn(io, [&, w = std::move(writer)]() mutable -> asio::awaitable<void> {
            for (std::size_t off = 0; off < body.size(); off += 10000)
                co_await w.write(asio::buffer(body.data() + off, std::min<std::size_t>(10000, body.size() - off)));
            w.close();
        }, asio::detached);
        const h3co::request req{.method = "POST", .url = test::url(r.relay.port(), "/upload", "127.0.0.1")};
        auto response = co_await client.request(req, std::move(reader));
        status = response.status;
    }(), 30s);
    CHECK(status == 200);
    CHECK(r.seen->end == h3co::error::eof);
    CHECK(r.seen->bytes == body.size());
    CHECK(r.seen->hash == fnv1a::of(body));
    CHECK(r.relay.total().dropped > 50);
    // The body pump may still wait for its FIN's acknowledgement (lost in the relay): closing
    // fails it, and running the io_context lets that completion run, so nothing is left pending.
    client.close();
    test::settle(io);
}

TEST_CASE("faults: a slow path (25 ms each way, 10 ms jitter, 2% loss) stays byte-exact", "[faults]") {
    asio::io_context io;
    rig r(io);
    const test::fault_policy slow{.drop = 0.02, .delay = 25ms, .jitter = 10ms};
    r.relay.set(slow);
    const h3co::connection_options options;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        co_await round_trip(conn, r, 1024 * 1024, 1024 * 1024);
    }(), 30s);
    CHECK(r.relay.total().delayed > 500);
    CHECK(r.relay.total().dropped > 10);
}

// Not run by default: the same mixed faults over many seeds, to hunt for rare hangs and corruption.
//   H3CO_FAULT_ROUNDS=50 ./h3co_tests "[faults-stress]"
TEST_CASE("faults: stress, mixed harsh faults over many seeds", "[.][faults-stress]") {
    const char* env = std::getenv("H3CO_FAULT_ROUNDS");
    const int rounds = env ? std::atoi(env) : 10;
    for (int seed = 1; seed <= rounds; ++seed) {
        CAPTURE(seed);
        asio::io_context io;
        rig r(io, {}, static_cast<std::uint32_t>(seed));
        const test::fault_policy harsh{.drop = 0.2, .duplicate = 0.1, .reorder = 0.1, .corrupt = 0.03, .jitter = 2ms};
        r.relay.set(harsh);
        const h3co::connection_options options;
        test::run(io, [&]() -> asio::awaitable<void> {
            auto conn = co_await connect_to(r.relay.port(), options);
            co_await round_trip(conn, r, 512 * 1024, 512 * 1024);
        }(), 60s);
    }
}

TEST_CASE("faults: a blackhole fails every kind of pending operation with idle_timeout and frees every stream",
          "[faults]") {
    const long streams_before = h3co::testing::live_stream_states();
    {
        asio::io_context io;
        h3co::connection_options options;
        options.idle_timeout = 2s;
        options.max_concurrent_streams = 2;  // so that a third open waits for credit
        rig r(io, options);
        std::error_code response_error, open_error, write_error, read_error;
        bool opened = false;
        test::run(io, [&]() -> asio::awaitable<void> {
            auto conn = co_await connect_to(r.relay.port(), options);
            auto a = co_await start_upload(conn);
            auto b = co_await start_upload(conn);
            const std::string some = make_body(1000, 5);
            co_await a.write(asio::buffer(some));
            co_await b.write(asio::buffer(some));
            co_await h3co::sleep_for(100ms);
            r.relay.blackhole(true);
            int pending = 4;
            auto ex = co_await asio::this_coro::executor;
            // a: waits for its response, then a write into a full send buffer. b: a body read. c and
            // d: third and fourth streams wait for credit (the server allows two at a time).
            asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
                std::tie(response_error, std::ignore) = co_await a.read_response(tuple);
                --pending;
            }, asio::detached);
            asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
                std::array<char, 256> buf;
                std::tie(read_error, std::ignore) = co_await b.read_some(asio::buffer(buf), tuple);
                --pending;
            }, asio::detached);
            asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
                auto [ec, c] = co_await conn.open_request_stream(tuple);
                open_error = ec;
                opened = c.is_open();
                --pending;
            }, asio::detached);
            asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
                auto d = co_await conn.open_request_stream(tuple);
                (void)d;
                --pending;
            }, asio::detached);
            co_await h3co::sleep_for(10ms);
            // A write that cannot complete: more than the send buffer, never acknowledged.
            const std::string big = make_body(options.stream_send_buffer + 64 * 1024, 6);
            std::tie(write_error, std::ignore) = co_await a.write(asio::buffer(big), tuple);
            while (pending > 0) co_await h3co::sleep_for(10ms);
        }(), 15s);
        CAPTURE(response_error.message(), read_error.message(), open_error.message(), write_error.message());
        CHECK(response_error == h3co::error::idle_timeout);
        CHECK(read_error == h3co::error::idle_timeout);
        CHECK(open_error == h3co::error::idle_timeout);
        CHECK_FALSE(opened);
        CHECK(write_error == h3co::error::idle_timeout);
        CHECK(settle_until(io, [&] { return r.server.connection_count() == 0; }, 4s));
    }
    // However they ended, every stream's state is gone with its handles.
    CHECK(h3co::testing::live_stream_states() == streams_before);
}

// BUG (library, reported): finish() completes with success as soon as nghttp3 takes the end-of-body
// flag when every data byte was already acknowledged (detail/session.hpp, read_body() sets
// send_state::finished and calls serve_finish()), i.e. before the FIN has been sent, let alone
// acknowledged. Through a blackhole the caller is told the upload ended although the server never
// sees its end. finish() is documented to complete once the peer acknowledged the whole body.
TEST_CASE("faults: finish() does not report success for a FIN the peer never acknowledged", "[faults]") {
    asio::io_context io;
    h3co::connection_options options;
    options.idle_timeout = 2s;
    rig r(io, options);
    std::error_code finish_error;
    clock_type::duration finish_took{};
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await connect_to(r.relay.port(), options);
        auto stream = co_await start_upload(conn);
        const std::string body = make_body(1000, 8);
        co_await stream.write(asio::buffer(body));
        co_await h3co::sleep_for(200ms);  // every body byte is acknowledged by now
        r.relay.blackhole(true);
        const auto started = clock_type::now();
        std::tie(finish_error) = co_await stream.finish(tuple);
        finish_took = clock_type::now() - started;
    }(), 15s);
    // The server never saw the end of the body: its read failed when the connection timed out.
    CHECK(settle_until(io, [&] { return r.seen->count == 1; }, 4s));
    CHECK(r.seen->end == h3co::error::idle_timeout);
    CHECK(r.relay.counters(dir::to_server).blackholed > 0);
    CAPTURE(finish_error.message(), std::chrono::duration<double>(finish_took).count());
    CHECK(finish_error == h3co::error::idle_timeout);
}

TEST_CASE("faults: a one-way blackhole from the start: handshake_timeout, and the server drops its half-open session",
          "[faults]") {
    asio::io_context io;
    h3co::connection_options options;
    options.handshake_timeout = 2s;
    rig r(io, options);
    test::fault_policy cut;
    cut.blackhole = true;
    r.relay.set(dir::to_client, cut);  // the server hears the client, the client never hears back
    std::error_code error;
    std::size_t half_open = 0;
    test::run(io, [&]() -> asio::awaitable<void> {
        auto [ec, conn] = co_await try_connect_to(r.relay.port(), options);
        error = ec;
        half_open = r.server.connection_count();
    }(), 15s);
    CAPTURE(error.message());
    CHECK(error == h3co::error::handshake_timeout);
    CHECK(half_open <= 1);
    CHECK(r.relay.counters(dir::to_server).forwarded > 0);
    CHECK(r.relay.counters(dir::to_client).blackholed > 0);
    CHECK(settle_until(io, [&] { return r.server.connection_count() == 0; }, 4s));
}

TEST_CASE("faults: after a blackhole ends a pooled connection, the client's next request connects afresh", "[faults]") {
    asio::io_context io;
    h3co::connection_options options;
    options.idle_timeout = 2s;
    rig r(io, options);
    h3co::client client(test::executor(io), test::trusting_test_ca(), options);
    std::error_code failed;
    int status = 0;
    std::string got;
    test::run(io, [&]() -> asio::awaitable<void> {
        // 4 MiB: far more than the receive windows, so the first body cannot have arrived whole.
        const h3co::request big{.method = "GET", .url = test::url(r.relay.port(), "/download/4194304", "127.0.0.1")};
        const h3co::request req{.method = "GET", .url = test::url(r.relay.port(), "/download/100000", "127.0.0.1")};
        {
            auto response = co_await client.request(big);
            CHECK(response.status == 200);
            r.relay.blackhole(true);
            std::vector<char> buf(64 * 1024);
            for (;;) {
                auto [ec, n] = co_await response.read_some(asio::buffer(buf), tuple);
                if (ec) {
                    failed = ec;
                    break;
                }
            }
        }
        r.relay.blackhole(false);
        auto response = co_await client.request(req);
        status = response.status;
        std::vector<char> buf(64 * 1024);
        for (;;) {
            auto [ec, n] = co_await response.read_some(asio::buffer(buf), tuple);
            got.append(buf.data(), n);
            if (ec == h3co::error::eof) break;
            if (ec) throw std::system_error(ec);
        }
    }(), 15s);
    CAPTURE(failed.message());
    CHECK(failed == h3co::error::idle_timeout);
    CHECK(status == 200);
    CHECK(got == make_body(100000, download_seed));
    client.close();
}

}  // namespace faults_test
