// A UDP relay between one client and a server on 127.0.0.1 that keeps each datagram's ECN mark:
// it reads the mark (IP_RECVTOS) and sends the datagram on with the same one (an IP_TOS cmsg), as
// an ECN-capable router does. It counts the datagrams of each mark per direction, and separately
// those that begin with a short header (1-RTT packets: the handshake is over by then).
//
// It runs on the io_context it is given; stop it with close() on that context's thread.
#pragma once

#include "support/test_support.hpp"

#include <h3co/detail/io/udp_receive.hpp>
#include <h3co/detail/io/udp_send.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace test {

class ecn_relay {
public:
    using counts = std::map<int, std::uint64_t>;  ///< ECN codepoint (0 not-ECT, 1 ECT(1), 2 ECT(0), 3 CE) -> datagrams
    static constexpr int not_ect = 0, ect1 = 1, ect0 = 2, ce = 3;

    /// What went one way.
    struct direction_counts {
        counts all;       ///< every datagram
        counts one_rtt;   ///< datagrams whose first packet has a short header (after the handshake)
        std::uint64_t ect_one_rtt() const { return at(one_rtt, ect0) + at(one_rtt, ect1) + at(one_rtt, ce); }
        static std::uint64_t at(const counts& c, int k) { return c.count(k) ? c.at(k) : 0; }
        /// "all: not-ECT 3, ECT(0) 120, ...; 1-RTT: ..." for a test's INFO.
        std::string describe() const {
            const auto one = [](const counts& c) {
                return "not-ECT " + std::to_string(at(c, not_ect)) + ", ECT(1) " + std::to_string(at(c, ect1)) +
                       ", ECT(0) " + std::to_string(at(c, ect0)) + ", CE " + std::to_string(at(c, ce));
            };
            return "all: " + one(all) + "; 1-RTT: " + one(one_rtt);
        }
    };

    ecn_relay(asio::io_context& io, const asio::ip::udp::endpoint& server)
        : client_side_(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          server_side_(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), server_(server) {
        for (auto* s : {&client_side_, &server_side_}) {
            s->non_blocking(true);
            REQUIRE(h3co::detail::enable_ecn_receive(s->native_handle(), false));
        }
        pump(client_side_, true);
        pump(server_side_, false);
    }
    ecn_relay(const ecn_relay&) = delete;
    ecn_relay& operator=(const ecn_relay&) = delete;

    std::uint16_t port() const { return client_side_.local_endpoint().port(); }
    void close() {
        std::error_code ignored;
        client_side_.close(ignored);
        server_side_.close(ignored);
    }

    direction_counts to_server, to_client;
    /// Sends that failed (the relay's own; a datagram lost here would be the relay's fault).
    std::uint64_t send_errors = 0;

private:
    void pump(asio::ip::udp::socket& in, bool upstream) {
        in.async_wait(asio::socket_base::wait_read, [this, &in, upstream](std::error_code ec) {
            if (ec) return;
            for (;;) {
                asio::ip::udp::endpoint from;
                socklen_t from_len = static_cast<socklen_t>(from.capacity());
                const auto got = h3co::detail::receive_datagrams(in.native_handle(), buffer_.data(), buffer_.size(),
                                                                 from.data(), from_len, ec);
                if (ec) break;
                from.resize(from_len);
                if (upstream) client_ = from;
                if (!upstream && !client_) continue;
                auto& count = upstream ? to_server : to_client;
                ++count.all[got.ecn];
                if (got.len > 0 && (buffer_[0] & 0x80) == 0) ++count.one_rtt[got.ecn];
                auto& out = upstream ? server_side_ : client_side_;
                const auto to = upstream ? server_ : *client_;
                const auto sent = h3co::detail::send_segments(out.native_handle(), to.data(),
                                                              static_cast<socklen_t>(to.size()), to.data(),
                                                              buffer_.data(), got.len, got.len, got.ecn, features_);
                if (sent.sent != got.len) ++send_errors;
            }
            pump(in, upstream);
        });
    }

    asio::ip::udp::socket client_side_, server_side_;
    asio::ip::udp::endpoint server_;
    std::optional<asio::ip::udp::endpoint> client_;
    std::array<std::uint8_t, 65536> buffer_{};
    h3co::detail::send_features features_{false, true};  // no GSO: one datagram per receive
};

}  // namespace test
