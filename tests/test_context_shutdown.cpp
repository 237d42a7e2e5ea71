// Destroying the io_context frees every coroutine waiting in an h3co operation, as it does for
// Asio's own operations: each waiting handler is destroyed without being invoked, the frames
// unwind (their RAII runs), and every connection, stream and operation is freed. Each frame below
// holds a sentinel that counts its destruction; the io_context is destroyed while they all wait.
#include "support/test_support.hpp"

#include <asio/steady_timer.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace context_shutdown_test {

/// What the frames report: how many reached their last wait, and how many were destroyed.
struct tally {
    int created = 0;
    int waiting = 0;
    int destroyed = 0;
    int finished = 0;  ///< frames that ran to their end (none should: they wait until destroyed)
    std::vector<std::string> errors;
};

/// Counts its destruction: in a coroutine frame, it dies when the frame does.
struct sentinel {
    tally* t;
    explicit sentinel(tally& to) : t(&to) { ++t->created; }
    sentinel(const sentinel&) = delete;
    sentinel& operator=(const sentinel&) = delete;
    ~sentinel() { ++t->destroyed; }
};

h3co::connection_options small_buffers() {
    h3co::connection_options o;
    // A write of several MiB can never complete while the peer reads nothing: the send buffer
    // stays small, and the peer's window grows only as it reads.
    o.stream_send_buffer = 64 * 1024;
    o.max_stream_send_buffer = 64 * 1024;
    o.max_connection_send_buffer = 64 * 1024;
    // A second request on a connection waits in open_request_stream().
    o.max_concurrent_streams = 1;
    return o;
}

/// The completion for every spawned frame: a frame that ends (or throws) is a failure.
auto record(tally& t, const char* what) {
    return [&t, what](std::exception_ptr e) {
        ++t.finished;
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            t.errors.push_back(std::string(what) + ": " + ex.what());
        }
    };
}

/// Owns the server and keeps it alive until the io_context goes: waits on an Asio timer that never
/// fires (Asio frees the frame), or on an h3co pipe nobody writes to (h3co must).
asio::awaitable<void> own_server([[maybe_unused]] std::unique_ptr<h3co::server> server, tally& t, bool on_pipe) {
    sentinel s(t);
    const auto ex = co_await asio::this_coro::executor;
    if (on_pipe) {
        auto [reader, writer] = h3co::make_pipe(ex);
        std::array<char, 16> buf;
        ++t.waiting;
        co_await reader.read_some(asio::buffer(buf));
    } else {
        asio::steady_timer forever(ex, 24h);
        ++t.waiting;
        co_await forever.async_wait(asio::use_awaitable);
    }
}

h3co::server::handler_type read_body_handler(tally& t) {
    // Reads the 5 bytes the client sent, then waits for more that never come.
    return [&t](h3co::server_request& req, h3co::response&) -> asio::awaitable<void> {
        sentinel s(t);
        std::array<char, 64> buf;
        for (std::size_t got = 0; got < 5;) got += co_await req.read_some(asio::buffer(buf));
        ++t.waiting;
        co_await req.read_some(asio::buffer(buf));
    };
}

h3co::server::handler_type trickle_handler(tally& t) {
    // Answers 200 with 5 bytes of body, then waits for a request body that never comes.
    return [&t](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        sentinel s(t);
        co_await res.send_header(200);
        co_await res.write(asio::buffer("hello", 5));
        std::array<char, 64> buf;
        ++t.waiting;
        co_await req.read_some(asio::buffer(buf));
    };
}

h3co::server::handler_type flood_handler(tally& t) {
    // Writes 4 MiB to a client that reads nothing: blocked by flow control.
    return [&t](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        sentinel s(t);
        std::vector<char> big(4 << 20, 'x');
        co_await res.send_header(200);
        ++t.waiting;
        co_await res.write(asio::buffer(big));
    };
}

asio::awaitable<h3co::connection> connect_to(std::uint16_t port) {
    co_return co_await h3co::connect(co_await asio::this_coro::executor, std::string("127.0.0.1"), port,
                                     test::trusting_test_ca(), small_buffers());
}

h3co::request post(std::uint16_t port, const std::string& path) {
    return h3co::request{.method = "POST", .url = test::url(port, path, "127.0.0.1")};
}

/// Waits in read_response(): the handler never answers.
asio::awaitable<void> wait_in_read_response(std::uint16_t port, tally& t) {
    sentinel s(t);
    auto conn = co_await connect_to(port);
    auto stream = co_await conn.open_request_stream();
    co_await stream.send_header(post(port, "/read-body"));
    co_await stream.write(asio::buffer("12345", 5));
    ++t.waiting;
    co_await stream.read_response();
}

/// Waits in read_some() on the response body: the server sent 5 bytes and nothing more.
asio::awaitable<void> wait_in_read(std::uint16_t port, tally& t) {
    sentinel s(t);
    auto conn = co_await connect_to(port);
    auto stream = co_await conn.open_request_stream();
    co_await stream.send_header(post(port, "/trickle"));
    co_await stream.read_response();
    std::array<char, 64> buf;
    for (std::size_t got = 0; got < 5;) got += co_await stream.read_some(asio::buffer(buf));
    ++t.waiting;
    co_await stream.read_some(asio::buffer(buf));
}

/// Waits in write(): 4 MiB to a handler that reads nothing.
asio::awaitable<void> wait_in_write(std::uint16_t port, tally& t) {
    sentinel s(t);
    auto conn = co_await connect_to(port);
    auto stream = co_await conn.open_request_stream();
    std::vector<char> big(4 << 20, 'y');
    co_await stream.send_header(post(port, "/flood"));
    ++t.waiting;
    co_await stream.write(asio::buffer(big));
}

/// Waits in open_request_stream(): the server allows one request at a time, and the first waits.
asio::awaitable<void> wait_in_open(std::uint16_t port, tally& t) {
    sentinel s(t);
    auto conn = co_await connect_to(port);
    auto first = co_await conn.open_request_stream();
    co_await first.send_header(post(port, "/read-body"));
    co_await first.write(asio::buffer("12345", 5));
    ++t.waiting;
    auto second = co_await conn.open_request_stream();
}

/// Waits in a pipe's read_some(), holding both ends.
asio::awaitable<void> wait_in_pipe(tally& t) {
    sentinel s(t);
    auto [reader, writer] = h3co::make_pipe(co_await asio::this_coro::executor);
    std::array<char, 64> buf;
    ++t.waiting;
    co_await reader.read_some(asio::buffer(buf));
}

TEST_CASE("context shutdown: destroying the io_context frees every waiting h3co operation",
          "[context-shutdown]") {
    const bool server_on_pipe = GENERATE(false, true);
    INFO("the server's owner waits on " << (server_on_pipe ? "an h3co pipe" : "an Asio timer"));
    const long streams_before = h3co::testing::live_stream_states();
    const long connections_before = h3co::testing::live_connections();
    const long ops_before = h3co::testing::live_pending_ops();
    tally t;
    int frames = 0;
    int waits = 0;
    auto io = std::make_unique<asio::io_context>();
    {
        auto server = std::make_unique<h3co::server>(test::executor(*io), test::server_identity(), small_buffers());
        server->handle("/read-body", read_body_handler(t));
        server->handle("/trickle", trickle_handler(t));
        server->handle("/flood", flood_handler(t));
        const auto port = server->listen("127.0.0.1", 0).port();
        asio::co_spawn(*io, own_server(std::move(server), t, server_on_pipe), record(t, "server"));
        asio::co_spawn(*io, wait_in_read_response(port, t), record(t, "read_response"));
        asio::co_spawn(*io, wait_in_read(port, t), record(t, "read"));
        asio::co_spawn(*io, wait_in_write(port, t), record(t, "write"));
        asio::co_spawn(*io, wait_in_open(port, t), record(t, "open"));
        asio::co_spawn(*io, wait_in_pipe(t), record(t, "pipe"));
        frames = 6 + 4;  // and the handlers: two /read-body, /trickle, /flood
        waits = frames;
    }
    // Until every frame waits where it can wait forever (each counts itself just before).
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (t.waiting < waits && t.finished == 0 && std::chrono::steady_clock::now() < deadline) {
        io->restart();
        io->run_for(10ms);
    }
    INFO(Catch::Detail::stringify(t.errors));
    REQUIRE(t.finished == 0);
    REQUIRE(t.waiting == waits);
    REQUIRE(t.destroyed == 0);
    CHECK(h3co::testing::live_connections() - connections_before == 8);  // 4 clients, 4 server sides
    CHECK(h3co::testing::live_pending_ops() > ops_before);

    io.reset();  // not run to completion: destroyed while everything waits

    CHECK(t.finished == 0);  // no handler was invoked
    CHECK(t.created == frames);
    CHECK(t.destroyed == frames);
    CHECK(h3co::testing::live_pending_ops() == ops_before);
    CHECK(h3co::testing::live_stream_states() == streams_before);
    CHECK(h3co::testing::live_connections() == connections_before);
}

h3co::server::handler_type datagram_handler(tally& t) {
    // Answers 200, then waits for a datagram that never comes.
    return [&t](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        sentinel s(t);
        co_await res.send_header(200);
        auto stream = res.take_over();
        std::array<char, 64> buf;
        ++t.waiting;
        co_await stream.receive_datagram(asio::buffer(buf));
    };
}

/// Waits in receive_datagram(): the server sends none.
asio::awaitable<void> wait_in_receive_datagram(std::uint16_t port, tally& t, const h3co::connection_options& o) {
    sentinel s(t);
    auto conn = co_await h3co::connect(co_await asio::this_coro::executor, std::string("127.0.0.1"), port,
                                       test::trusting_test_ca(), o);
    auto stream = co_await conn.open_request_stream();
    co_await stream.send_header(post(port, "/datagram"));
    co_await stream.read_response();
    std::array<char, 64> buf;
    ++t.waiting;
    co_await stream.receive_datagram(asio::buffer(buf));
}

TEST_CASE("context shutdown: destroying the io_context frees frames waiting in receive_datagram (1.x)",
          "[context-shutdown]") {
    if (std::string(H3CO_TEST_STACK) != "1.x") {
        WARN("HTTP/3 datagrams need the ngtcp2 1.x stack");
        return;
    }
    const long streams_before = h3co::testing::live_stream_states();
    const long connections_before = h3co::testing::live_connections();
    const long ops_before = h3co::testing::live_pending_ops();
    h3co::connection_options o;
    o.h3_datagrams = true;
    tally t;
    auto io = std::make_unique<asio::io_context>();
    {
        auto server = std::make_unique<h3co::server>(test::executor(*io), test::server_identity(), o);
        server->handle("/datagram", datagram_handler(t));
        const auto port = server->listen("127.0.0.1", 0).port();
        asio::co_spawn(*io, own_server(std::move(server), t, true), record(t, "server"));
        asio::co_spawn(*io, wait_in_receive_datagram(port, t, o), record(t, "receive_datagram"));
    }
    const int frames = 3;  // the server's owner, the client, the handler
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (t.waiting < frames && t.finished == 0 && std::chrono::steady_clock::now() < deadline) {
        io->restart();
        io->run_for(10ms);
    }
    INFO(Catch::Detail::stringify(t.errors));
    REQUIRE(t.finished == 0);
    REQUIRE(t.waiting == frames);
    CHECK(h3co::testing::live_connections() - connections_before == 2);

    io.reset();

    CHECK(t.finished == 0);
    CHECK(t.created == frames);
    CHECK(t.destroyed == frames);
    CHECK(h3co::testing::live_pending_ops() == ops_before);
    CHECK(h3co::testing::live_stream_states() == streams_before);
    CHECK(h3co::testing::live_connections() == connections_before);
}

h3co::server::handler_type echo_handler() {
    return [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        const auto body = co_await test::read_all(req);
        co_await res.send_header(200);
        co_await res.write(asio::buffer(body));
    };
}

/// One whole request: connect, upload 100 KB, read the echo.
asio::awaitable<void> one_request(std::uint16_t port, tally& t) {
    sentinel s(t);
    auto conn = co_await connect_to(port);
    auto stream = co_await conn.open_request_stream();
    std::vector<char> body(100 * 1000, 'z');
    co_await stream.send_header(post(port, "/echo"));
    co_await stream.write(asio::buffer(body));
    co_await stream.finish();
    co_await stream.read_response();
    const auto echoed = co_await test::read_all(stream);
    if (echoed.size() != body.size()) t.errors.push_back("short echo: " + std::to_string(echoed.size()));
}

/// Runs one request for `steps` handlers (all of it when `steps` is negative), then destroys the
/// io_context. Returns how many handlers ran.
int request_then_destroy(int steps) {
    const long streams_before = h3co::testing::live_stream_states();
    const long connections_before = h3co::testing::live_connections();
    const long ops_before = h3co::testing::live_pending_ops();
    tally t;
    int ran = 0;
    {
        auto io = std::make_unique<asio::io_context>();
        auto server = std::make_unique<h3co::server>(test::executor(*io), test::server_identity(), small_buffers());
        server->handle("/echo", echo_handler());
        const auto port = server->listen("127.0.0.1", 0).port();
        asio::co_spawn(*io, own_server(std::move(server), t, true), record(t, "server"));
        asio::co_spawn(*io, one_request(port, t), record(t, "request"));
        // Handler by handler, so that the io_context goes at every kind of point: handshake,
        // connect completing, request half sent, response posted, ...
        while ((steps < 0 || ran < steps) && t.finished == 0) {
            if (io->run_one_for(5s) == 0) break;
            ++ran;
        }
        if (steps < 0) REQUIRE(t.finished == 1);  // the request completed
    }
    INFO("destroyed after " << ran << " handlers");
    INFO(Catch::Detail::stringify(t.errors));
    CHECK(t.errors.empty());
    CHECK(t.destroyed == t.created);
    CHECK(h3co::testing::live_pending_ops() == ops_before);
    CHECK(h3co::testing::live_stream_states() == streams_before);
    CHECK(h3co::testing::live_connections() == connections_before);
    return ran;
}

TEST_CASE("context shutdown: destroying the io_context at any point of a request frees everything",
          "[context-shutdown]") {
    const int all = request_then_destroy(-1);
    REQUIRE(all > 10);
    const int stride = std::max(1, all / 40);
    for (int steps = 0; steps < all; steps += stride) request_then_destroy(steps);
}

}  // namespace context_shutdown_test
