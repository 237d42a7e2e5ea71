// QUIC-LB connection IDs (detail/quic_lb.hpp) against the draft's own test vectors (unencrypted,
// single-pass and four-pass encrypted; draft-ietf-quic-load-balancers, editor's copy after -21),
// and the rules of its first octet: config rotation, length self-description, unroutable IDs.
#include "support/peer_inputs.hpp"
#include "support/session_pair.hpp"
#include "support/test_support.hpp"
#include "support/worker_threads.hpp"

#include <h3co/detail/connection_id.hpp>
#include <h3co/detail/quic_lb.hpp>

#include <catch2/catch.hpp>
#include <openssl/aes.h>

#include <map>
#include <memory>
#include <set>
#include <thread>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace quic_lb_test {

using test::settle_handoffs;
using test::stop_first;
using test::worker_threads;

namespace lb = h3co::detail::quic_lb;

std::vector<std::uint8_t> hex(const std::string& s) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < s.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
    return out;
}

TEST_CASE("quic-lb: the draft's unencrypted test vector encodes and decodes", "[quic-lb]") {
    // "Unencrypted CIDs": cr_bits 0, sid c4605e, nonce 4504cc4f, cid 07c4605e4504cc4f (the server
    // encodes the CID length: 7 octets follow the first). The draft's second row (cr_bits 1) is not
    // used: its sid and nonce columns (10 and 9 hex digits) cannot both be octet strings, and its
    // cid's first octet 0x20 encodes no length although every vector should.
    lb::plaintext_config c;
    c.config_rotation = 0;
    c.server_id = hex("c4605e");
    c.nonce_length = 4;
    REQUIRE(lb::valid(c));
    REQUIRE(lb::cid_length(c) == 8);
    const auto nonce = hex("4504cc4f");
    std::vector<std::uint8_t> cid(lb::cid_length(c));
    REQUIRE(lb::encode(c, nonce, cid));
    CHECK(cid == hex("07c4605e4504cc4f"));

    const auto d = lb::decode(cid, 3);
    REQUIRE(d);
    CHECK(d->config_rotation == 0);
    CHECK(std::vector<std::uint8_t>(d->server_id.begin(), d->server_id.end()) == hex("c4605e"));
    CHECK(std::vector<std::uint8_t>(d->nonce.begin(), d->nonce.end()) == nonce);
}

TEST_CASE("quic-lb: config rotation and length self-description in the first octet", "[quic-lb]") {
    lb::plaintext_config c;
    c.config_rotation = 6;  // the highest routable codepoint
    c.server_id = hex("0102030405");
    c.nonce_length = 12;
    const std::vector<std::uint8_t> nonce(12, 0xab);
    std::vector<std::uint8_t> cid(lb::cid_length(c));
    REQUIRE(cid.size() == 18);
    REQUIRE(lb::encode(c, nonce, cid));
    CHECK(cid[0] == (6 << 5 | 17));
    auto d = lb::decode(cid, 5);
    REQUIRE(d);
    CHECK(d->config_rotation == 6);
    CHECK(std::vector<std::uint8_t>(d->server_id.begin(), d->server_id.end()) == c.server_id);

    c.encode_length = false;  // then the low 5 bits are the server's random bits
    REQUIRE(lb::encode(c, nonce, cid, 0x15));
    CHECK(cid[0] == (6 << 5 | 0x15));
    d = lb::decode(cid, 5);
    REQUIRE(d);
    CHECK(d->config_rotation == 6);
}

TEST_CASE("quic-lb: invalid configurations and unroutable connection IDs are refused", "[quic-lb]") {
    lb::plaintext_config c;
    c.server_id = hex("01");
    c.nonce_length = 4;
    CHECK(lb::valid(c));
    std::vector<std::uint8_t> cid(lb::cid_length(c));
    const std::vector<std::uint8_t> short_nonce(3, 0);
    CHECK_FALSE(lb::encode(c, short_nonce, cid));  // the nonce must have the configured length

    auto bad = c;
    bad.config_rotation = lb::unroutable_config;  // reserved for servers with no configuration
    CHECK_FALSE(lb::valid(bad));
    bad = c;
    bad.server_id.clear();
    CHECK_FALSE(lb::valid(bad));
    bad = c;
    bad.nonce_length = 3;
    CHECK_FALSE(lb::valid(bad));
    bad = c;
    bad.server_id.assign(16, 1);  // 16 + 4 > 19 octets after the first
    CHECK_FALSE(lb::valid(bad));

    const auto failover = hex("e7c4605e4504cc4f");  // config rotation 0b111: unroutable
    CHECK_FALSE(lb::decode(failover, 3));
    const auto too_short = hex("07c4605e4504cc");  // no room for a 4-octet nonce after the server ID
    CHECK_FALSE(lb::decode(too_short, 3));
    CHECK_FALSE(lb::decode({}, 3));
}

std::array<std::uint8_t, 16> key_of(const std::string& s) {
    const auto bytes = hex(s);
    std::array<std::uint8_t, 16> k{};
    std::copy(bytes.begin(), bytes.end(), k.begin());
    return k;
}

/// Encodes `sid` and `nonce` under `key` with `cr_bits`; checks the CID against `expected`, then
/// decodes it back to the server ID and nonce.
void check_encrypted_vector(std::uint8_t cr_bits, const std::string& sid, const std::string& nonce,
                            const std::string& key, const std::string& expected) {
    INFO("sid " << sid << " nonce " << nonce);
    lb::config c;
    c.config_rotation = cr_bits;
    c.server_id = hex(sid);
    c.nonce_length = nonce.size() / 2;
    c.key = key_of(key);
    REQUIRE(lb::valid(c));
    const lb::codec codec(c);
    std::vector<std::uint8_t> cid(codec.length());
    REQUIRE(codec.encode(hex(nonce), cid));
    CHECK(cid == hex(expected));

    std::vector<std::uint8_t> plain(codec.length() - 1);
    REQUIRE(codec.decode(cid, plain));
    CHECK(plain == hex(sid + nonce));
}

TEST_CASE("quic-lb: the draft's four-pass encryption example, step by step", "[quic-lb]") {
    // "Encryption Example": a 7-octet plaintext, odd, so the middle octet is split by nibbles.
    check_encrypted_vector(0, "31441a", "9c69c275", "fdf726a9893ec05c0632d3956680baf0", "0767947d29be054a");
}

TEST_CASE("quic-lb: the draft's encrypted test vectors encode and decode", "[quic-lb]") {
    const std::string key = "8f95f09245765f80256934e50c66207f";
    // Four passes, server ID shorter than the nonce (7 octets, odd).
    check_encrypted_vector(0, "ed793a", "ee080dbf", key, "0720b1d07b359d3c");
    // Four passes, server ID longer than the nonce: a load balancer needs the fourth pass too.
    check_encrypted_vector(1, "ed793a51d49b8f5fab65", "ee080dbf48", key, "2fcc381bc74cb4fbad2823a3d1f8fed2");
    // Server ID + nonce = 16 octets: single-pass AES-128-ECB.
    check_encrypted_vector(2, "ed793a51d49b8f5f", "ee080dbf48c0d1e5", key, "504dd2d05a7b0de9b2b9907afb5ecf8cc3");
    // 18 octets, even, four passes. The draft prints this CID with first octet 0x12 (config
    // rotation 0) although its cr_bits column says 3: the octets after the first are its
    // ciphertext exactly; the first octet here follows the cr_bits column (0x72 = 3 << 5 | 18).
    check_encrypted_vector(3, "ed793a51d49b8f5fab", "ee080dbf48c0d1e55d", key,
                           "725779c9cc86beb3a3a4a3ca96fce4bfe0cdbc");
}

TEST_CASE("quic-lb: an encrypted CID hides its server ID and decodes only under its own config", "[quic-lb]") {
    lb::config c;
    c.config_rotation = 2;
    c.server_id = hex("0a0b");
    c.nonce_length = 6;
    c.key = key_of("000102030405060708090a0b0c0d0e0f");
    const lb::codec codec(c);
    std::vector<std::uint8_t> a(codec.length()), b(codec.length());
    REQUIRE(codec.encode(hex("000000000001"), a));
    REQUIRE(codec.encode(hex("000000000002"), b));
    CHECK(a[0] == (2 << 5 | 8));
    // Consecutive nonces (a counter) give unrelated ciphertexts, server ID octets included.
    CHECK(std::vector<std::uint8_t>(a.begin() + 1, a.begin() + 3) != hex("0a0b"));
    CHECK(std::vector<std::uint8_t>(a.begin() + 1, a.end()) != std::vector<std::uint8_t>(b.begin() + 1, b.end()));

    std::vector<std::uint8_t> plain(codec.length() - 1);
    REQUIRE(codec.decode(b, plain));
    CHECK(plain == hex("0a0b000000000002"));
    auto other_rotation = b;
    other_rotation[0] = static_cast<std::uint8_t>(3 << 5 | 8);
    CHECK_FALSE(codec.decode(other_rotation, plain));  // another configuration's CID
    CHECK_FALSE(codec.decode(std::span<const std::uint8_t>(b).first(5), plain));  // too short
}

// ---- a real server issuing QUIC-LB connection IDs -----------------------------------------------

/// A load balancer's view, written from the draft's "Load Balancer Actions" independently of
/// detail/quic_lb.hpp: the server ID of `cid`, or nothing if it is not routable under this
/// configuration (other config rotation bits, other length).
struct test_balancer {
    std::uint8_t config_rotation = 0;
    std::size_t sid_len = 0;
    std::size_t nonce_len = 0;
    std::optional<std::array<std::uint8_t, 16>> key;

    /// The plaintext server ID and nonce (what a server reads); a balancer would stop at the
    /// server ID.
    std::optional<std::vector<std::uint8_t>> plaintext(std::span<const std::uint8_t> cid) const {
        const std::size_t len = sid_len + nonce_len;
        if (cid.size() != 1 + len || (cid[0] >> 5) != config_rotation || (cid[0] & 0x1f) != len) return std::nullopt;
        std::vector<std::uint8_t> out(cid.begin() + 1, cid.end());
        if (!key) return out;
        AES_KEY k;
        if (len == 16) {  // single pass: one AES-ECB block
            AES_set_decrypt_key(key->data(), 128, &k);
            AES_decrypt(out.data(), out.data(), &k);
            return out;
        }
        AES_set_encrypt_key(key->data(), 128, &k);
        const std::size_t half = (len + 1) / 2;
        const bool odd = len % 2 == 1;
        std::vector<std::uint8_t> left(out.begin(), out.begin() + half), right(out.end() - half, out.end());
        if (odd) {
            left[half - 1] &= 0xf0;
            right[0] &= 0x0f;
        }
        const auto pass = [&](std::uint8_t n, const std::vector<std::uint8_t>& from, std::vector<std::uint8_t>& to) {
            std::array<std::uint8_t, 16> in{}, res;
            std::copy(from.begin(), from.end(), in.begin());
            in[14] = static_cast<std::uint8_t>(len);
            in[15] = n;
            AES_encrypt(in.data(), res.data(), &k);
            for (std::size_t i = 0; i < half; ++i) to[i] ^= res[i];
        };
        pass(4, right, left);  // left_1
        if (odd) left[half - 1] &= 0xf0;
        pass(3, left, right);  // right_1
        if (odd) right[0] &= 0x0f;
        pass(2, right, left);  // left_0
        if (odd) left[half - 1] &= 0xf0;
        pass(1, left, right);  // right_0: a balancer needs it only for a server ID longer than left_0
        if (odd) right[0] &= 0x0f;
        std::vector<std::uint8_t> plain(left.begin(), left.end());
        if (odd) {
            plain.back() |= right[0];
            plain.insert(plain.end(), right.begin() + 1, right.end());
        } else {
            plain.insert(plain.end(), right.begin(), right.end());
        }
        return plain;
    }
};

/// A UDP relay for one client that records the connection IDs the server issued as they cross
/// the wire: the Source Connection ID of every long-header packet from the server (Initial,
/// Handshake, Retry) and the Destination Connection ID of every short-header packet from the
/// client (which can only be one the server gave it).
class recording_relay : public std::enable_shared_from_this<recording_relay> {
public:
    using udp = asio::ip::udp;
    recording_relay(asio::io_context& io, udp::endpoint server, std::size_t cid_len)
        : client_side_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          server_side_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), server_(server), cid_len_(cid_len) {}

    void start() {
        up();
        down();
    }
    void close() {
        std::error_code ignored;
        client_side_.close(ignored);
        server_side_.close(ignored);
    }
    std::uint16_t port() const { return client_side_.local_endpoint().port(); }
    std::set<std::vector<std::uint8_t>> cids;  ///< every server-issued ID seen
    std::size_t retries = 0;                   ///< Retry packets seen

private:
    void up() {
        client_side_.async_receive_from(asio::buffer(up_), client_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (ec) return;
            if (n > self->cid_len_ && (self->up_[0] & 0x80) == 0)
                self->cids.emplace(self->up_.begin() + 1, self->up_.begin() + 1 + static_cast<std::ptrdiff_t>(self->cid_len_));
            std::error_code ignored;
            self->server_side_.send_to(asio::buffer(self->up_.data(), n), self->server_, 0, ignored);
            self->up();
        });
    }
    void down() {
        server_side_.async_receive_from(asio::buffer(down_), from_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (ec) return;
            const auto& d = self->down_;
            if (n > 7 && (d[0] & 0x80) != 0) {
                const std::size_t dcid_len = d[5];
                if (n > 7 + dcid_len) {
                    const std::size_t scid_len = d[6 + dcid_len];
                    const auto at = d.begin() + 7 + static_cast<std::ptrdiff_t>(dcid_len);
                    if (n >= 7 + dcid_len + scid_len) self->cids.emplace(at, at + static_cast<std::ptrdiff_t>(scid_len));
                }
                if (((d[0] >> 4) & 0x3) == 0x3) ++self->retries;  // QUIC v1 long packet type 3: Retry
            }
            std::error_code ignored;
            self->client_side_.send_to(asio::buffer(d.data(), n), self->client_, 0, ignored);
            self->down();
        });
    }

    udp::socket client_side_, server_side_;
    udp::endpoint server_, client_, from_;
    std::size_t cid_len_;
    std::array<std::uint8_t, 65536> up_{}, down_{};
};

/// POST /echo answers with the request body; each client checks it is byte-exact.
void add_echo(h3co::server& server) {
    server.handle("/echo", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        std::string body;
        std::array<char, 16 * 1024> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
            body.append(buf.data(), n);
            if (ec) break;
        }
        co_await res.send_header(200, tuple);
        co_await res.write(asio::buffer(body), tuple);
    });
}

/// POSTs 40 KB and a bit to /echo on `conn`; empty when the answer is byte-exact, else what failed.
asio::awaitable<std::string> echo_once(h3co::connection& conn, int tag) {
    const std::string body = test::pseudo_random_bytes(40 * 1024 + 31 * static_cast<std::size_t>(tag), static_cast<std::uint32_t>(tag));
    auto [oec, stream] = co_await conn.open_request_stream(tuple);
    if (oec) co_return "open: " + oec.message();
    const h3co::request req{.method = "POST", .url = "/echo"};
    auto [hec] = co_await stream.send_header(req, tuple);
    if (hec) co_return "send_header: " + hec.message();
    auto [wec, written] = co_await stream.write(asio::buffer(body), tuple);
    if (wec) co_return "write: " + wec.message();
    auto [fec] = co_await stream.finish(tuple);
    if (fec) co_return "finish: " + fec.message();
    auto [rec, head] = co_await stream.read_response(tuple);
    if (rec || head.status != 200) co_return "read_response: " + rec.message();
    std::string got;
    std::array<char, 16 * 1024> buf;
    for (;;) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        got.append(buf.data(), n);
        if (ec == h3co::error::eof) break;
        if (ec) co_return "read: " + ec.message();
    }
    if (got != body) co_return "not byte-exact";
    co_return std::string{};
}

struct fleet_outcome {
    std::vector<std::string> failures;
    std::vector<std::shared_ptr<recording_relay>> relays;
};

/// `n` clients at once, each through its own recording relay, each echoing 40 KB plus a bit.
fleet_outcome run_clients(std::uint16_t port, int n, std::size_t cid_len) {
    asio::io_context io;
    fleet_outcome out;
    const asio::ip::udp::endpoint server(asio::ip::make_address("127.0.0.1"), port);
    int pending = n;
    auto one = [&](int tag, std::uint16_t to) -> asio::awaitable<void> {
        auto [cec, conn] = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), to, test::trusting_test_ca(), tuple);
        if (cec) {
            out.failures.push_back("connect " + std::to_string(tag) + ": " + cec.message());
        } else {
            auto failure = co_await echo_once(conn, tag);
            if (!failure.empty()) out.failures.push_back(std::to_string(tag) + ": " + failure);
            conn.close();
        }
        --pending;
    };
    for (int i = 0; i < n; ++i) {
        auto relay = std::make_shared<recording_relay>(io, server, cid_len);
        relay->start();
        out.relays.push_back(relay);
        asio::co_spawn(io, one(i, relay->port()), asio::detached);
    }
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (pending > 0 && std::chrono::steady_clock::now() < deadline) io.run_for(50ms);
    REQUIRE(pending == 0);  // a hang is a failure
    for (auto& r : out.relays) r->close();
    io.run_for(20ms);
    return out;
}

/// A 2-worker server with `lb`, 48 clients through recording relays: every body byte-exact, and
/// every connection ID seen on the wire decodes (with `balancer`) to the server ID, with a
/// worker's ID in the nonce's first octet. Returns the server's stats.
h3co::server_stats serve_and_decode(const h3co::quic_lb_config& lb, const test_balancer& balancer,
                                    h3co::address_validation validation) {
    worker_threads w(2);
    h3co::server_options limits;
    limits.load_balancing = lb;
    limits.address_validation = validation;
    limits.max_connections_per_address = 1000;  // every client is 127.0.0.1
    limits.max_running_handlers_per_address = 1000;
    h3co::server server(w.executors(), test::server_identity(), {}, limits);
    add_echo(server);
    const auto port = server.listen("127.0.0.1", 0).port();
    stop_first guard{w};
    w.start();

    constexpr int clients = 48;
    const auto outcome = run_clients(port, clients, 1 + lb.server_id.size() + lb.nonce_length);
    for (const auto& f : outcome.failures) FAIL_CHECK(f);
    std::size_t seen = 0, retries = 0;
    std::set<int> workers_named;
    for (const auto& relay : outcome.relays) {
        CHECK_FALSE(relay->cids.empty());
        retries += relay->retries;
        for (const auto& cid : relay->cids) {
            ++seen;
            const auto plain = balancer.plaintext(cid);
            REQUIRE(plain);
            CHECK(std::vector<std::uint8_t>(plain->begin(), plain->begin() + static_cast<std::ptrdiff_t>(lb.server_id.size())) ==
                  lb.server_id);
            const int worker = (*plain)[lb.server_id.size()];
            CHECK(worker < 2);
            workers_named.insert(worker);
        }
    }
    CHECK(seen >= static_cast<std::size_t>(clients));
    CHECK(workers_named.size() == 2);  // 2^-47 that every connection landed on one worker
    if (validation == h3co::address_validation::always) CHECK(retries == static_cast<std::size_t>(clients));
    settle_handoffs(server);
    w.stop();
    const auto stats = server.stats();
    CHECK(stats.connections_accepted == static_cast<std::uint64_t>(clients));
    return stats;
}

TEST_CASE("quic-lb: a 2-worker server issues plaintext QUIC-LB IDs, Retry included, that a balancer decodes", "[quic-lb]") {
    h3co::quic_lb_config lb;
    lb.config_rotation = 1;
    lb.server_id = {0x5e, 0x11, 0x42};
    lb.nonce_length = 6;
    const test_balancer balancer{1, 3, 6, std::nullopt};
    const auto stats = serve_and_decode(lb, balancer, h3co::address_validation::always);
    if (stats.kernel_steering) {
        // The kernel read the worker from the nonce's first octet: no datagram needed a hand-off.
        for (const auto& worker : stats.workers) CHECK(worker.handoffs_sent == 0);
    } else {
        WARN("the kernel refused the reuseport BPF program: only the fallback was tested here");
    }
}

TEST_CASE("quic-lb: a 2-worker server issues encrypted QUIC-LB IDs, four-pass and single-pass", "[quic-lb]") {
    h3co::quic_lb_config lb;
    lb.config_rotation = 2;
    lb.key = std::string("\x8f\x95\xf0\x92\x45\x76\x5f\x80\x25\x69\x34\xe5\x0c\x66\x20\x7f", 16);
    std::array<std::uint8_t, 16> key;
    std::copy(lb.key.begin(), lb.key.end(), key.begin());
    SECTION("four passes, 11 octets (odd)") {
        lb.server_id = {0xed, 0x79, 0x3a, 0x51, 0xd4};
        lb.nonce_length = 6;
    }
    SECTION("single pass, 16 octets") {
        lb.server_id = {0xed, 0x79, 0x3a, 0x51};
        lb.nonce_length = 12;
    }
    const test_balancer balancer{2, lb.server_id.size(), lb.nonce_length, key};
    const auto stats = serve_and_decode(lb, balancer, h3co::address_validation::when_busy);
    // The kernel cannot read an encrypted worker: the workers hand datagrams on, counted.
    CHECK_FALSE(stats.kernel_steering);
    std::uint64_t sent = 0, received = 0;
    for (const auto& worker : stats.workers) {
        sent += worker.handoffs_sent;
        received += worker.handoffs_received;
    }
    CHECK(sent == received);
}

TEST_CASE("quic-lb: the server's factory puts the worker in the nonce, never repeats an ID, and finds the owner", "[quic-lb]") {
    // What every ID a connection issues goes through (its first, NEW_CONNECTION_ID's, a Retry's).
    for (const bool encrypted : {false, true}) {
        INFO("encrypted " << encrypted);
        h3co::quic_lb_config lb;
        lb.config_rotation = 4;
        lb.server_id = {0x0a, 0x0b};
        lb.nonce_length = 5;
        std::optional<std::array<std::uint8_t, 16>> key;
        if (encrypted) {
            lb.key = std::string(16, '\x42');
            key.emplace();
            key->fill(0x42);
        }
        h3co::detail::check_quic_lb_config(lb);
        const test_balancer balancer{4, 2, 5, key};
        for (int worker = 0; worker < 3; ++worker) {
            h3co::detail::cid_factory factory(lb, worker);
            REQUIRE(factory.length() == 8);
            CHECK(factory.worker_offset().has_value() == !encrypted);
            std::set<std::vector<std::uint8_t>> made;
            for (int i = 0; i < 2000; ++i) {
                std::vector<std::uint8_t> cid(factory.length());
                factory.make(cid.data());
                made.insert(cid);
                const auto plain = balancer.plaintext(cid);
                REQUIRE(plain);
                CHECK((*plain)[0] == 0x0a);
                CHECK((*plain)[1] == 0x0b);
                CHECK((*plain)[2] == worker);  // the nonce's first octet
                CHECK(factory.owner(cid.data(), cid.size(), 3) == static_cast<std::size_t>(worker));
                if (!encrypted) CHECK(cid[*factory.worker_offset()] == worker);  // what the kernel reads
            }
            if (encrypted) CHECK(made.size() == 2000);  // a counter: never the same nonce twice
            else CHECK(made.size() > 1990);             // 4 random octets: a repeat is rare (the server retries it)
        }
    }
    // Without QUIC-LB: 18 random octets, the worker at byte 1.
    h3co::detail::cid_factory plain(std::nullopt, 1);
    std::vector<std::uint8_t> cid(plain.length());
    plain.make(cid.data());
    CHECK(cid.size() == 18);
    CHECK(cid[1] == 1);
    CHECK(plain.owner(cid.data(), cid.size(), 2) == 1);
}

// ---- a fleet: servers sharing server_options::secret ---------------------------------------------

/// A relay that sends a client's datagrams to server A until A answers with a Retry, and to
/// server B from then on: the client's second Initial, with A's Retry token, reaches B, as when
/// a balancer routes it to another machine of the fleet.
class switching_relay : public std::enable_shared_from_this<switching_relay> {
public:
    using udp = asio::ip::udp;
    switching_relay(asio::io_context& io, udp::endpoint a, udp::endpoint b)
        : client_side_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          server_side_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), a_(a), b_(b) {}
    void start() {
        up();
        down();
    }
    void close() {
        std::error_code ignored;
        client_side_.close(ignored);
        server_side_.close(ignored);
    }
    std::uint16_t port() const { return client_side_.local_endpoint().port(); }
    bool switched = false;

private:
    void up() {
        client_side_.async_receive_from(asio::buffer(up_), client_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (ec) return;
            std::error_code ignored;
            self->server_side_.send_to(asio::buffer(self->up_.data(), n), self->switched ? self->b_ : self->a_, 0, ignored);
            self->up();
        });
    }
    void down() {
        server_side_.async_receive_from(asio::buffer(down_), from_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (ec) return;
            if (n > 0 && (self->down_[0] & 0xf0) == 0xf0) self->switched = true;  // long header, type 3: Retry
            std::error_code ignored;
            self->client_side_.send_to(asio::buffer(self->down_.data(), n), self->client_, 0, ignored);
            self->down();
        });
    }
    udp::socket client_side_, server_side_;
    udp::endpoint a_, b_, client_, from_;
    std::array<std::uint8_t, 65536> up_{}, down_{};
};

asio::awaitable<void> answer_200(h3co::server_request&, h3co::response& res) { co_await res.send_header(200, tuple); }

/// GET /hello on a new connection to `port` with `options`; the status (or -1) and the
/// connection's NEW_TOKEN token.
asio::awaitable<std::pair<int, std::string>> hello(std::uint16_t port, h3co::connection_options options) {
    const auto ex = co_await asio::this_coro::executor;
    const std::string host = "127.0.0.1";
    const auto tls = test::trusting_test_ca();
    auto [ec, conn] = co_await h3co::connect(ex, host, port, tls, options, tuple);
    if (ec) co_return std::pair(-1, std::string{});
    auto [oec, stream] = co_await conn.open_request_stream(tuple);
    const h3co::request req{.method = "GET", .url = "/hello"};
    auto [hec] = co_await stream.send_header(req, tuple);
    auto [fec] = co_await stream.finish(tuple);
    auto [rec, head] = co_await stream.read_response(tuple);
    const int status = oec || hec || fec || rec ? -1 : head.status;
    // The NEW_TOKEN frame follows the handshake: wait for it, bounded.
    for (int tries = 0; tries < 2000 && conn.address_token().empty(); ++tries) co_await h3co::sleep_for(1ms);
    auto token = conn.address_token();
    conn.close();
    co_return std::pair(status, std::move(token));
}

TEST_CASE("quic-lb: servers sharing a secret accept each other's Retry and NEW_TOKEN tokens", "[quic-lb][fleet]") {
    // Two machines of a fleet: each with its own QUIC-LB server ID, one shared secret.
    asio::io_context io;
    const auto options_for = [](std::uint8_t server_id) {
        h3co::server_options limits;
        limits.address_validation = h3co::address_validation::always;
        limits.secret = std::string(32, 'f');
        h3co::quic_lb_config lb;
        lb.server_id = {server_id};
        lb.nonce_length = 8;
        limits.load_balancing = lb;
        return limits;
    };
    h3co::server a(test::executor(io), test::server_identity(), {}, options_for(1));
    h3co::server b(test::executor(io), test::server_identity(), {}, options_for(2));
    a.handle("/hello", answer_200);
    b.handle("/hello", answer_200);
    const auto a_end = a.listen("127.0.0.1", 0);
    const auto b_end = b.listen("127.0.0.1", 0);
    auto relay = std::make_shared<switching_relay>(io, a_end, b_end);
    relay->start();

    std::pair<int, std::string> first, second;
    test::run(io, [&]() -> asio::awaitable<void> {
        // A sends the Retry; the client's next Initial, with A's token, reaches B.
        const h3co::connection_options no_token;  // named: g++ 12 mishandles temporaries in co_await
        first = co_await hello(relay->port(), no_token);
        // B's NEW_TOKEN token lets the next connection skip A's Retry.
        h3co::connection_options with_token;
        with_token.address_token = first.second;
        second = co_await hello(a_end.port(), with_token);
    }());
    relay->close();
    CHECK(relay->switched);
    CHECK(first.first == 200);
    CHECK(a.stats().retries_sent == 1);
    CHECK(b.stats().retry_tokens_accepted == 1);
    CHECK(b.stats().invalid_tokens == 0);
    CHECK(b.stats().connections_accepted == 1);
    CHECK_FALSE(first.second.empty());
    CHECK(second.first == 200);
    CHECK(a.stats().address_tokens_accepted == 1);
    CHECK(a.stats().retries_sent == 1);  // none for the second connection
    CHECK(a.stats().connections_accepted == 1);
}

TEST_CASE("quic-lb: the IDs in NEW_CONNECTION_ID frames come from the server's factory, in the draft's format", "[quic-lb]") {
    // Sans-I/O: the session's get_new_connection_id callback, which no client on the wire uses
    // unless it migrates. 18-octet IDs, as the pair's server starts with.
    h3co::quic_lb_config lb;
    lb.config_rotation = 5;
    lb.server_id = {0xc4, 0x60, 0x5e};
    lb.nonce_length = 14;
    lb.key = std::string(16, '\x07');
    std::array<std::uint8_t, 16> key;
    key.fill(0x07);
    auto factory = std::make_shared<h3co::detail::cid_factory>(lb, 1);
    REQUIRE(factory->length() == h3co::detail::server_cid_length);
    test::sans_io::pair_config config;
    config.server_cid_maker = [factory](std::uint8_t* out, std::size_t len) {
        REQUIRE(len == factory->length());
        factory->make(out);
    };
    test::sans_io::session_pair pair(config);
    REQUIRE(pair.handshake());
    for (int i = 0; i < 50; ++i) pair.step();
    REQUIRE(pair.server());

    const test_balancer balancer{5, 3, 14, key};
    std::size_t issued = 0;
    for (const auto& id : pair.server()->connection_ids) {
        const std::vector<std::uint8_t> cid(id.begin(), id.end());
        if (const auto plain = balancer.plaintext(cid)) {
            ++issued;
            CHECK(std::vector<std::uint8_t>(plain->begin(), plain->begin() + 3) == lb.server_id);
            CHECK((*plain)[3] == 1);  // the worker
        }
    }
    // All but the pair's own random first SCID and the client's first DCID: at least one, as many
    // as the client's active_connection_id_limit allows.
    CHECK(issued >= 1);
    CHECK(issued + 2 == pair.server()->connection_ids.size());
    pair.shutdown();
}

TEST_CASE("quic-lb: an invalid load-balancing configuration is refused at construction, naming the field", "[quic-lb]") {
    asio::io_context io;
    const auto refused = [&](const h3co::quic_lb_config& lb, const std::string& field) {
        h3co::server_options limits;
        limits.load_balancing = lb;
        try {
            h3co::server server(test::executor(io), test::server_identity(), {}, limits);
            FAIL("accepted: " << field);
        } catch (const std::invalid_argument& e) {
            CHECK_THAT(e.what(), Catch::Contains(field));
        }
    };
    h3co::quic_lb_config good;
    good.server_id = {1};
    good.nonce_length = 4;
    {
        h3co::server_options limits;
        limits.load_balancing = good;
        h3co::server server(test::executor(io), test::server_identity(), {}, limits);  // no throw
    }
    auto bad = good;
    bad.config_rotation = 7;
    refused(bad, "config_rotation");
    bad = good;
    bad.server_id.clear();
    refused(bad, "server_id");
    bad = good;
    bad.nonce_length = 3;
    refused(bad, "nonce_length");
    bad = good;
    bad.server_id.assign(16, 1);
    refused(bad, "server_id and nonce_length");
    bad = good;
    bad.key = "too short";
    refused(bad, "key");
}

}  // namespace quic_lb_test
