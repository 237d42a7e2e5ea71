// QUIC-LB connection IDs (detail/quic_lb.hpp) against the draft's own test vectors (unencrypted,
// single-pass and four-pass encrypted; draft-ietf-quic-load-balancers, editor's copy after -21),
// and the rules of its first octet: config rotation, length self-description, unroutable IDs.
#include <h3co/detail/quic_lb.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

namespace quic_lb_test {

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

}  // namespace quic_lb_test
