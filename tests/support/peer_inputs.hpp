// What tests against the independent gtls peers prepare for them: bodies to serve or upload,
// written to files, and a UDP port to tell a peer to listen on.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace test {

/// `n` bytes from a seeded generator: a body whose every byte is checked.
inline std::string pseudo_random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(gen() & 0xff);
    return s;
}

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

/// A port that was free on 127.0.0.1 a moment ago (UDP), for a peer that cannot bind port 0.
inline std::uint16_t free_udp_port() {
    asio::io_context io;
    asio::ip::udp::socket s(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return s.local_endpoint().port();
}

}  // namespace test
