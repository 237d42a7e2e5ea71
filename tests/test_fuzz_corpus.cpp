// The fuzz targets (tests/fuzz/) in the ordinary test suite: every committed seed and every input
// that once made a target fail (tests/fuzz/regressions/<target>/, one file per finding, named for
// what it found) runs through the same target function, here built with g++ and, in the sanitizer
// pass, under ASan + UBSan. A target aborts on any failure, and so does this test.
#include "fuzz/h3_exchange.hpp"
#include "fuzz/pipe_ring.hpp"
#include "fuzz/server_datagram.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace fuzz_corpus_test {

namespace fs = std::filesystem;

std::vector<std::uint8_t> load(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs every file of the target's corpus and regressions; returns how many there were.
std::size_t run_all(const std::string& target, const std::function<int(const std::uint8_t*, std::size_t)>& fn) {
    std::size_t files = 0;
    for (const char* kind : {"corpus", "regressions"}) {
        const fs::path dir = fs::path(H3CO_FUZZ_DIR) / kind / target;
        if (!fs::exists(dir)) continue;
        for (const auto& entry : fs::directory_iterator(dir)) {
            if (!entry.is_regular_file()) continue;
            const auto bytes = load(entry.path());
            INFO(entry.path().string());
            CHECK(fn(bytes.data(), bytes.size()) == 0);
            ++files;
        }
    }
    return files;
}

std::string text(const std::vector<std::uint8_t>& v) { return std::string(v.begin(), v.end()); }


TEST_CASE("fuzz corpus: byte_ring", "[fuzz]") { CHECK(run_all("byte_ring", h3co_fuzz::byte_ring_ops) >= 2); }

// The buffer targets' model compares against a fixed byte stream (pipe_ring.hpp): that only shows a
// byte read from the wrong place if no short run of it repeats at another offset a buffer can reach.
TEST_CASE("fuzz model: the byte pattern never repeats within a buffer's reach", "[fuzz]") {
    const auto& stream = h3co_fuzz::pattern();
    constexpr std::size_t run = 8, reach = 20'000 + 8'192 + 10'000;
    std::size_t repeats = 0;
    for (std::size_t shift = 1; shift <= reach; ++shift)
        for (const std::uint64_t at : {std::uint64_t{0}, std::uint64_t{12'345}})
            if (stream.matches(stream.at(at + shift), run, at)) ++repeats;
    CHECK(repeats == 0);
    // A run that crosses the end of the period goes on with the period's first bytes.
    const std::uint8_t* last = stream.at(h3co_fuzz::byte_pattern::period - 4);
    CHECK(std::equal(last + 4, last + 12, stream.at(0)));
}

TEST_CASE("fuzz corpus: pipe", "[fuzz]") { CHECK(run_all("pipe", h3co_fuzz::pipe_ops) >= 3); }

TEST_CASE("fuzz corpus: server_datagram", "[fuzz]") {
    CHECK(run_all("server_datagram", h3co_fuzz::server_datagram) >= 4);
    // The recorded client Initial is one the server accepts and answers (its Initial and Handshake).
    const auto initial = load(fs::path(H3CO_FUZZ_DIR) / "corpus/server_datagram/client_initial_0");
    const auto d = h3co_fuzz::stateless_decisions(initial.data(), initial.size());
    CHECK(d.routable);
    CHECK(d.may_open);
    CHECK(h3co_fuzz::accept_datagram(initial.data(), initial.size(), 1'000 * test::sans_io::ms) >= 1);
    // An empty datagram has no routing key (once an assertion in ngtcp2).
    CHECK_FALSE(h3co_fuzz::stateless_decisions(nullptr, 0).routable);
}

TEST_CASE("fuzz corpus: h3_server_request", "[fuzz]") {
    CHECK(run_all("h3_server_request", h3co_fuzz::h3_server_request) >= 4);
    // The seeds are what they say: a GET is answered by the handler, an over-limit body with 413,
    // an over-limit header block with 431 (their HEADERS frames' QPACK-encoded :status).
    auto& kept = h3co_fuzz::server_request_pair();
    const auto get = load(fs::path(H3CO_FUZZ_DIR) / "corpus/h3_server_request/get");
    const auto answer = h3co_fuzz::h3_server_request_exchange(kept, get.data(), get.size());
    CHECK(answer.receiver_done);
    CHECK(text(answer.client_received).ends_with("ok\n"));
    CHECK(kept.alive());
    // A request stream that begins with a SETTINGS frame is a connection error (H3_FRAME_UNEXPECTED):
    // the pair is replaced and the next input still runs.
    const std::uint8_t settings[] = {0x04, 0x00};
    const auto before = kept.handshakes;
    h3co_fuzz::h3_server_request_exchange(kept, settings, sizeof settings);
    CHECK_FALSE(kept.alive());
    const auto again = h3co_fuzz::h3_server_request_exchange(kept, get.data(), get.size());
    CHECK(kept.handshakes == before + 1);
    CHECK(text(again.client_received).ends_with("ok\n"));
}

TEST_CASE("fuzz corpus: h3_client_response", "[fuzz]") {
    CHECK(run_all("h3_client_response", h3co_fuzz::h3_client_response) >= 4);
    auto& kept = h3co_fuzz::client_response_pair();
    const auto ok = load(fs::path(H3CO_FUZZ_DIR) / "corpus/h3_client_response/encoded_200_body");
    const auto x = h3co_fuzz::h3_client_response_exchange(kept, ok.data(), ok.size());
    CHECK(x.status == 200);
    CHECK(text(x.client_received) == "hello\n");
    // A response whose content-length does not match its body is not delivered as complete.
    const auto bad = load(fs::path(H3CO_FUZZ_DIR) / "corpus/h3_client_response/encoded_content_length_mismatch");
    const auto y = h3co_fuzz::h3_client_response_exchange(kept, bad.data(), bad.size());
    CHECK(y.client_received.size() < 10);
}

}  // namespace fuzz_corpus_test
