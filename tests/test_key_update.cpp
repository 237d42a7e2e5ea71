// Key updates (RFC 9001 §6): connection_options::key_update_interval makes an endpoint update its
// 1-RTT keys on a schedule, and the other side follows. A 64 MiB upload and a 64 MiB download on
// one connection, with updates started by the client, by the server, then by both, arrive
// byte-exact, and the stats show the updates on both sides.
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

using namespace std::chrono_literals;

namespace key_update_test {

constexpr std::uint64_t body_size = 64 * 1024 * 1024;
constexpr std::uint64_t interval = 200;  ///< packets: far shorter than a transfer, so ngtcp2's 3 PTO rule paces the updates
constexpr std::size_t chunk_size = 64 * 1024;

/// The body's bytes at [offset, offset + n) (offset and n multiples of 8): 64-bit words numbered
/// by position, so that a lost, repeated or misplaced block anywhere shows.
void fill(std::vector<char>& buf, std::uint64_t offset, std::size_t n) {
    buf.resize(n);
    for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t z = (offset + i) / 8 + 0x9e3779b97f4a7c15ull;  // splitmix64 of the word's index
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        std::memcpy(buf.data() + i, &z, 8);
    }
}

/// Checks a body as it streams in: its length and every byte against fill().
struct body_check {
    std::uint64_t bytes = 0;
    std::uint64_t wrong_bytes = 0;
    std::vector<char> pending;  ///< bytes not yet a whole number of words
    std::vector<char> expected;

    void feed(const char* p, std::size_t n) {
        pending.insert(pending.end(), p, p + n);
        const std::size_t whole = pending.size() / 8 * 8;
        if (whole == 0) return;
        fill(expected, bytes, whole);
        for (std::size_t i = 0; i < whole; ++i) wrong_bytes += pending[i] != expected[i];
        bytes += whole;
        pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(whole));
    }
    bool exact(std::uint64_t size) const { return bytes == size && pending.empty() && wrong_bytes == 0; }
};

struct server_seen {
    body_check upload;
    std::error_code upload_end;
    h3co::connection_stats stats;  ///< the connection's, once both transfers were over
};

/// What one connection moved both ways, and both sides' numbers once it was all over.
struct outcome {
    std::shared_ptr<server_seen> server = std::make_shared<server_seen>();
    int upload_status = 0;
    int download_status = 0;
    int end_status = 0;
    body_check download;
    h3co::connection_stats client;
};

outcome transfer(const h3co::connection_options& client_options, const h3co::connection_options& server_options) {
    asio::io_context io;
    outcome out;
    h3co::server server(test::executor(io), test::server_identity(), server_options);
    server.handle("/up", [seen = out.server](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        std::vector<char> buf(chunk_size);
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            seen->upload.feed(buf.data(), n);
            if (ec) {
                seen->upload_end = ec;
                break;
            }
        }
        seen->stats = req.connection_stats();
        co_await res.send_header(seen->upload_end == h3co::error::eof ? 200 : 400);
    });
    server.handle("/down", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        std::vector<char> chunk;
        for (std::uint64_t done = 0; done < body_size; done += chunk_size) {
            fill(chunk, done, chunk_size);
            co_await res.write(asio::buffer(chunk));
        }
    });
    // Last on the connection: the server's numbers once both transfers are over.
    server.handle("/end", [seen = out.server](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        seen->stats = req.connection_stats();
        co_await res.send_header(200);
    });
    const auto port = server.listen("127.0.0.1", 0).port();

    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port,
                                           test::trusting_test_ca(), client_options);
        {
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "POST", .url = test::url(port, "/up", "127.0.0.1")};
            co_await stream.send_header(req);
            std::vector<char> chunk;
            for (std::uint64_t done = 0; done < body_size; done += chunk_size) {
                fill(chunk, done, chunk_size);
                co_await stream.write(asio::buffer(chunk));
            }
            co_await stream.finish();
            const auto head = co_await stream.read_response();
            out.upload_status = head.status;
        }
        {
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "GET", .url = test::url(port, "/down", "127.0.0.1")};
            co_await stream.send_header(req);
            co_await stream.finish();
            const auto head = co_await stream.read_response();
            out.download_status = head.status;
            std::vector<char> buf(chunk_size);
            for (;;) {
                auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
                out.download.feed(buf.data(), n);
                if (ec == h3co::error::eof) break;
                if (ec) throw std::system_error(ec);
            }
        }
        {
            auto stream = co_await conn.open_request_stream();
            const h3co::request req{.method = "GET", .url = test::url(port, "/end", "127.0.0.1")};
            co_await stream.send_header(req);
            co_await stream.finish();
            const auto head = co_await stream.read_response();
            out.end_status = head.status;
        }
        out.client = conn.stats();
        conn.close();
    }(), 100s);
    test::settle(io, 100ms);
    return out;
}

h3co::connection_options updating() {
    h3co::connection_options o;
    o.key_update_interval = interval;
    return o;
}

void check_bodies(const outcome& out) {
    CHECK(out.upload_status == 200);
    CHECK(out.download_status == 200);
    CHECK(out.end_status == 200);
    CHECK(out.server->upload_end == h3co::error::eof);
    CHECK(out.server->upload.bytes == body_size);
    CHECK(out.server->upload.wrong_bytes == 0);
    CHECK(out.server->upload.exact(body_size));
    CHECK(out.download.bytes == body_size);
    CHECK(out.download.wrong_bytes == 0);
    CHECK(out.download.exact(body_size));
}

/// `initiator` started at least `least` updates, and `follower` derived a key generation for each
/// (but perhaps the last, which may have been in flight when its numbers were taken).
void check_followed(const h3co::connection_stats& initiator, const h3co::connection_stats& follower,
                    std::uint64_t least) {
    CHECK(initiator.key_updates_initiated >= least);
    CHECK(follower.key_generations_derived + 1 >= initiator.key_updates_initiated);
    CHECK(follower.key_generations_derived >= least);
}

TEST_CASE("key update: without an interval nobody starts one and a long transfer keeps its keys", "[key-update]") {
    const auto out = transfer({}, {});
    check_bodies(out);
    CHECK(out.client.key_updates_initiated == 0);
    CHECK(out.server->stats.key_updates_initiated == 0);
    // Only the generation ngtcp2 derives ahead once the handshake is confirmed.
    CHECK(out.client.key_generations_derived <= 1);
    CHECK(out.server->stats.key_generations_derived <= 1);
}

TEST_CASE("key update: client-started updates across a 64 MiB upload and download", "[key-update]") {
    const auto out = transfer(updating(), {});
    check_bodies(out);
    INFO("client initiated " << out.client.key_updates_initiated << ", derived " << out.client.key_generations_derived
                             << "; server derived " << out.server->stats.key_generations_derived);
    check_followed(out.client, out.server->stats, 4);
    CHECK(out.server->stats.key_updates_initiated == 0);
}

TEST_CASE("key update: server-started updates across a 64 MiB upload and download", "[key-update]") {
    const auto out = transfer({}, updating());
    check_bodies(out);
    INFO("server initiated " << out.server->stats.key_updates_initiated << ", derived "
                             << out.server->stats.key_generations_derived << "; client derived "
                             << out.client.key_generations_derived);
    check_followed(out.server->stats, out.client, 4);
    CHECK(out.client.key_updates_initiated == 0);
}

TEST_CASE("key update: both sides start updates across a 64 MiB upload and download", "[key-update]") {
    const auto out = transfer(updating(), updating());
    check_bodies(out);
    const auto& c = out.client;
    const auto& s = out.server->stats;
    INFO("client initiated " << c.key_updates_initiated << ", derived " << c.key_generations_derived
                             << "; server initiated " << s.key_updates_initiated << ", derived "
                             << s.key_generations_derived);
    CHECK(c.key_updates_initiated + s.key_updates_initiated >= 4);
    CHECK(c.key_updates_initiated >= 1);
    CHECK(s.key_updates_initiated >= 1);
    // Every update gave both sides a new generation. Both may start the same one at once (each
    // before the other's first packet under it arrived), so the two counts overlap: each side's
    // own count is a lower bound, not their sum.
    CHECK(c.key_generations_derived + 1 >= std::max(c.key_updates_initiated, s.key_updates_initiated));
    CHECK(s.key_generations_derived + 1 >= std::max(c.key_updates_initiated, s.key_updates_initiated));
    CHECK(c.key_generations_derived >= 4);
    CHECK(s.key_generations_derived >= 4);
}

}  // namespace key_update_test
