// The bench's command line (bench/options.hpp): what a child process is passed must give it the
// orchestrator's configuration back, defaults included.
#ifndef H3CO_BENCH_CERT_DIR
#define H3CO_BENCH_CERT_DIR "/nonexistent"
#endif
#ifndef H3CO_BENCH_GTLSSERVER
#define H3CO_BENCH_GTLSSERVER ""
#endif
#ifndef H3CO_BENCH_GTLSCLIENT
#define H3CO_BENCH_GTLSCLIENT ""
#endif
#include "bench/options.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace bench_options_test {

/// What a child parses from the flags `c` passes it.
bench::config through_child(const bench::config& c) {
    std::vector<std::string> args{"h3co_bench", "--role", "server"};
    const auto flags = c.child_flags();
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return bench::parse_args(static_cast<int>(argv.size()), argv.data());
}

TEST_CASE("bench options: a child gets the socket buffer size it was given, and the library's default when none was", "[bench]") {
    const h3co::connection_options library;
    bench::config c;  // no --socket-buffer: the library's default
    CHECK(through_child(c).options().socket_buffer == library.socket_buffer);
    c.socket_buffer = 0;  // the system's default
    CHECK(through_child(c).options().socket_buffer == 0);
    c.socket_buffer = 1 << 20;
    CHECK(through_child(c).options().socket_buffer == (1u << 20));
}

TEST_CASE("bench options: the other connection knobs survive the trip to a child", "[bench]") {
    bench::config c;
    c.ack_threshold = 8;
    c.gso = 4;
    c.gro = 0;
    c.ecn = -1;
    c.cc = "bbr";
    const auto child = through_child(c).options();
    const h3co::connection_options library;
    CHECK(child.ack_threshold == 8);
    CHECK(child.udp_gso_segments == 4);
    CHECK_FALSE(child.udp_gro);
    CHECK(child.ecn == library.ecn);
    CHECK(child.congestion_control == h3co::congestion_control::bbr);
}

}  // namespace bench_options_test
