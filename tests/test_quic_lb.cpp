// QUIC-LB unencrypted connection IDs (detail/quic_lb.hpp) against the draft's own test vectors,
// and the rules of its first octet: config rotation, length self-description, unroutable IDs.
#include <h3co/detail/quic_lb.hpp>

#include <catch2/catch.hpp>

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

}  // namespace quic_lb_test
