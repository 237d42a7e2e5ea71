// UDP send errors: an error that concerns one send (EPERM from a firewall, ENETUNREACH, EMSGSIZE)
// leaves GSO and ECN on for every later send; only the errors that say the kernel cannot do them
// (EIO/EINVAL for a GSO send, EINVAL for the ECN cmsg) switch them off. Every error and fallback is
// counted, and a server reports them in stats(). The errors are injected through
// udp_detail::send_fault, which fails chosen messages before they reach the kernel.
#include "support/test_support.hpp"

#include <h3co/detail/io/udp_send.hpp>

#include <atomic>
#include <cstring>
#include <vector>

namespace send_errors_test {

using udp = asio::ip::udp;
namespace ud = h3co::detail::udp_detail;

bool has_cmsg(const msghdr& msg, int level, int type) {
    for (auto* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(const_cast<msghdr*>(&msg), cm))
        if (cm->cmsg_level == level && cm->cmsg_type == type) return true;
    return false;
}
bool is_gso(const msghdr& msg) { return has_cmsg(msg, SOL_UDP, UDP_SEGMENT); }
bool is_marked(const msghdr& msg) { return has_cmsg(msg, IPPROTO_IP, IP_TOS) || has_cmsg(msg, IPPROTO_IPV6, IPV6_TCLASS); }

// What the installed fault does: fail `remaining` messages that match with `err`.
std::atomic<int> fault_errno{0};
std::atomic<int> fault_remaining{0};
enum class match { any, gso, marked, unconnected };
std::atomic<match> fault_match{match::any};

int fault(const msghdr& msg) {
    bool hit = false;
    switch (fault_match.load()) {
    case match::any: hit = true; break;
    case match::gso: hit = is_gso(msg); break;
    case match::marked: hit = is_marked(msg); break;
    case match::unconnected: hit = msg.msg_name != nullptr; break;  // the server's sends, not the client's
    }
    if (!hit) return 0;
    if (fault_remaining.load() > 0 && fault_remaining.fetch_sub(1) > 0) return fault_errno.load();
    return 0;
}

/// Installs the fault for the scope: `count` matching messages fail with `err` (-1: all of them).
struct injected {
    injected(int err, match m, int count) {
        fault_errno = err;
        fault_match = m;
        fault_remaining = count < 0 ? 1 << 30 : count;
        ud::send_fault = &fault;
    }
    ~injected() { ud::send_fault = nullptr; }
};

udp::socket loopback_socket(asio::io_context& io) {
    udp::socket s(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    s.non_blocking(true);
    return s;
}

std::size_t drain(udp::socket& s) {
    std::size_t n = 0;
    std::vector<std::uint8_t> buf(65536);
    for (std::error_code ec; s.receive(asio::buffer(buf), 0, ec), !ec;) ++n;
    return n;
}

/// Sends 4 datagrams of 1000 bytes (one GSO message while GSO is on), marked ECT(0).
h3co::detail::send_result send_four(udp::socket& from, const udp::endpoint& to, h3co::detail::send_features& f) {
    static const std::vector<std::uint8_t> data(4000, 0x5a);
    return h3co::detail::send_segments(from.native_handle(), to.data(), static_cast<socklen_t>(to.size()), to.data(),
                                       data.data(), data.size(), 1000, 2, f);
}

TEST_CASE("send errors: EPERM or ENETUNREACH leave GSO and ECN on and are counted", "[send-errors]") {
    asio::io_context io;
    auto sender = loopback_socket(io);
    auto receiver = loopback_socket(io);
    const auto to = receiver.local_endpoint();
    const int err = GENERATE(EPERM, ENETUNREACH, EACCES, EMSGSIZE);
    CAPTURE(err);
    h3co::detail::send_features f{true, true};
    {
        const injected once(err, match::any, 1);
        const auto r = send_four(sender, to, f);
        CHECK(r.sent == 4000);
        CHECK_FALSE(r.would_block);
    }
    CHECK(f.gso);
    CHECK(f.ecn);
    CHECK(f.send_errors == 1);
    CHECK(f.gso_fallbacks == 0);
    CHECK(f.ecn_fallbacks == 0);
    CHECK(drain(receiver) == 4);  // the failed GSO message went again, packet by packet

    // Without GSO, the one packet that failed is lost; ECN stays on.
    h3co::detail::send_features plain{false, true};
    {
        const injected once(err, match::any, 1);
        CHECK(send_four(sender, to, plain).sent == 4000);
    }
    CHECK(plain.ecn);
    CHECK(plain.send_errors == 1);
    CHECK(plain.ecn_fallbacks == 0);
    CHECK(drain(receiver) == 3);
}

TEST_CASE("send errors: EIO or EINVAL on a GSO send switch GSO off and count the fallback", "[send-errors]") {
    asio::io_context io;
    auto sender = loopback_socket(io);
    auto receiver = loopback_socket(io);
    const auto to = receiver.local_endpoint();
    const int err = GENERATE(EIO, EINVAL);
    CAPTURE(err);
    h3co::detail::send_features f{true, true};
    {
        const injected always(err, match::gso, -1);  // this "device" never segments
        CHECK(send_four(sender, to, f).sent == 4000);
        CHECK(send_four(sender, to, f).sent == 4000);
    }
    CHECK_FALSE(f.gso);
    CHECK(f.ecn);  // the ECN mark was not the cause
    CHECK(f.gso_fallbacks == 1);
    CHECK(f.ecn_fallbacks == 0);
    CHECK(f.send_errors >= 1);
    CHECK(drain(receiver) == 8);
}

TEST_CASE("send errors: EINVAL on the ECN mark switches ECN off and counts the fallback", "[send-errors]") {
    asio::io_context io;
    auto sender = loopback_socket(io);
    auto receiver = loopback_socket(io);
    const auto to = receiver.local_endpoint();
    const bool gso = GENERATE(true, false);
    CAPTURE(gso);
    h3co::detail::send_features f{gso, true};
    {
        const injected always(EINVAL, match::marked, -1);  // this kernel takes no TOS cmsg
        CHECK(send_four(sender, to, f).sent == 4000);
        CHECK(send_four(sender, to, f).sent == 4000);
    }
    CHECK_FALSE(f.ecn);
    CHECK(f.gso == gso);  // GSO was not the cause
    CHECK(f.ecn_fallbacks == 1);
    CHECK(f.gso_fallbacks == 0);
    CHECK(drain(receiver) == 8);
}

TEST_CASE("send errors: a server counts send errors in stats() and keeps GSO and ECN", "[send-errors]") {
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    server.handle("/down", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        const std::string chunk(64 * 1024, 'd');
        for (int i = 0; i < 8; ++i) co_await res.write(asio::buffer(chunk));
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    const injected errors(EPERM, match::unconnected, 3);  // the server's first three sends
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = "/down"};  // not a temporary: GCC 12 frees those twice in co_await
        co_await stream.send_header(req);
        co_await stream.finish();
        const auto head = co_await stream.read_response();
        CHECK(head.status == 200);
        const std::string body = co_await test::read_all(stream);
        CHECK(body.size() == 8 * 64 * 1024);
    }());
    const auto stats = server.stats();
    CHECK(stats.udp_send_errors == 3);
    CHECK(stats.gso_fallbacks == 0);
    CHECK(stats.ecn_fallbacks == 0);
}

}  // namespace send_errors_test
