// The quic-interop-runner's cases (github.com/quic-interop/quic-interop-runner, its README's
// test-case list) against ngtcp2's example peers, in both roles: an h3co client with gtlsserver,
// and gtlsclient with an h3co server. Each cell is one test case tagged [interop-matrix], the
// case's [im-<case>] and the role's [im-as-client] or [im-as-server], so that
// tests/cmake/interop_matrix.sh can print the matrix (docs/interop.md shows it). Cells that other
// files already hold carry the same tags there (test_interop.cpp, test_interop_loss.cpp).
//
// Network cases go through the lossy relay (tests/support/lossy_relay.hpp). Bodies are compared
// byte for byte; the relay's counters show that the fault happened.
#include "support/ecn_relay.hpp"
#include "support/gtls_peer.hpp"

#include <h3co/session_cache.hpp>

#include <asio/steady_timer.hpp>

#include <functional>
#include <mutex>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace interop_matrix_test {

constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);
/// GnuTLS priority string for TLS 1.3 with ChaCha20-Poly1305 only (gtls peers' --ciphers).
const std::string gnutls_chacha_only = "--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305";

std::string file_name(std::size_t i) { return "f" + std::to_string(i); }
std::string file_content(std::size_t size, std::size_t i) {
    return test::pseudo_random_bytes(size, 7000 + static_cast<std::uint32_t>(i));
}

// ---------------------------------------------------------------------------------------------
// h3co client -> relay -> gtlsserver

struct client_case {
    std::vector<std::string> peer_options;  ///< gtlsserver's
    std::string peer_chain = "server.pem";  ///< gtlsserver's certificate chain and key (test certificates)
    std::string peer_key = "server.key";
    test::fault_policy faults;              ///< the relay's, both directions
    std::function<void(test::lossy_relay&)> arm;  ///< further relay set-up (a cut, say)
    h3co::connection_options options;
    h3co::tls_ciphers ciphers = h3co::tls_ciphers::library_default;
    std::vector<std::size_t> file_sizes{1024};  ///< the files each connection GETs
    int connections = 1;
    bool concurrent = false;  ///< a connection's GETs all at once rather than one after another
    std::chrono::seconds limit{30};
};

struct client_outcome {
    int bodies_expected = 0;
    int bodies_exact = 0;
    std::vector<h3co::connection_stats> stats;  ///< per connection that was made
    std::vector<std::string> ciphers;
    test::relay_counters relay;
    test::amplification_counters amplification;
    std::uint32_t rebindings = 0;
    std::string errors;
    std::string peer_log;
};

/// One GET on `conn`; counts an exact body, or says what went wrong.
asio::awaitable<void> get_one(h3co::connection& conn, std::uint16_t port, std::string path, const std::string& expected,
                              client_outcome& out) {
    const char* step = "open";
    try {
        auto stream = co_await conn.open_request_stream();
        const h3co::request req{.method = "GET", .url = test::url(port, path, "127.0.0.1")};
        step = "send_header";
        co_await stream.send_header(req);
        step = "finish";
        // gtlsserver may answer and stop our sending (H3_NO_ERROR, RFC 9114 §4.1.1) before our
        // FIN arrives: finish() then reports it, and the response stays readable.
        auto [fin_ec] = co_await stream.finish(as_tuple);
        (void)fin_ec;
        step = "read_response";
        const auto head = co_await stream.read_response();
        step = "read body";
        const auto body = co_await test::read_all(stream);
        if (head.status == 200 && body == expected) ++out.bodies_exact;
        else out.errors += path + ": status " + std::to_string(head.status) + ", " + std::to_string(body.size()) + " bytes\n";
    } catch (const std::system_error& e) {
        out.errors += path + " at " + step + ": " + e.code().category().name() + ": " + e.what() + "\n";
    }
}

client_outcome run_as_client(const client_case& c) {
    test::temp_dir dir;
    fs::create_directory(dir.path / "htdocs");
    std::vector<std::string> files;
    for (std::size_t i = 0; i < c.file_sizes.size(); ++i) {
        files.push_back(file_content(c.file_sizes[i], i));
        test::write_file(dir.path / "htdocs" / file_name(i), files.back());
    }
    test::gtls_server peer(dir.path / "htdocs", dir.path / "gtlsserver.log", c.peer_options, c.peer_chain, c.peer_key);
    asio::io_context io;
    const auto ex = test::executor(io);
    test::run(io, test::wait_until_answering(ex, peer.port), 10s);  // straight, not through the relay

    client_outcome out;
    test::lossy_relay relay(io, peer.endpoint());
    relay.set(c.faults);
    if (c.arm) c.arm(relay);
    const auto port = relay.port();
    test::run(io, [&]() -> asio::awaitable<void> {
        auto tls = test::trusting_test_ca();
        tls.ciphers = c.ciphers;
        const std::string host = "127.0.0.1";
        const auto options = c.options;
        for (int n = 0; n < c.connections; ++n) {
            out.bodies_expected += static_cast<int>(files.size());
            auto [ec, conn] = co_await h3co::connect(ex, host, port, tls, options, as_tuple);
            if (ec) {
                out.errors += "connect " + std::to_string(n) + ": " + ec.message() + "\n";
                continue;
            }
            if (c.concurrent) {
                // All GETs at once; a timer that the last one to finish cancels.
                auto remaining = files.size();
                asio::steady_timer all_done(ex, std::chrono::steady_clock::time_point::max());
                for (std::size_t i = 0; i < files.size(); ++i)
                    asio::co_spawn(ex, get_one(conn, port, "/" + file_name(i), files[i], out),
                                   [&](std::exception_ptr) {
                                       if (--remaining == 0) all_done.cancel();
                                   });
                co_await all_done.async_wait(as_tuple);
            } else {
                for (std::size_t i = 0; i < files.size(); ++i) co_await get_one(conn, port, "/" + file_name(i), files[i], out);
            }
            out.stats.push_back(conn.stats());
            out.ciphers.push_back(conn.tls_cipher());
            conn.close();
        }
    }(), c.limit);
    out.relay = relay.total();
    out.amplification = relay.amplification();
    out.rebindings = relay.rebindings();
    relay.close();
    test::settle(io);
    out.peer_log = test::read_file(peer.log);
    return out;
}

#define H3CO_REPORT_CLIENT(out)                                                                              \
    INFO("errors:\n" << (out).errors << "relay: received " << (out).relay.received << ", dropped "           \
                     << (out).relay.dropped << ", corrupted " << (out).relay.corrupted << ", blackholed "   \
                     << (out).relay.blackholed << ", delayed " << (out).relay.delayed << ", retries "       \
                     << (out).relay.retries << "\ngtlsserver log:\n"                                         \
                     << (out).peer_log)

TEST_CASE("interop matrix: handshake: an h3co client with gtlsserver", "[interop-matrix][im-handshake][im-as-client]") {
    const client_case c;
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == out.bodies_expected);
    REQUIRE(out.stats.size() == 1);
    CHECK_FALSE(out.stats[0].resumed);
}

TEST_CASE("interop matrix: transfer: an h3co client with gtlsserver", "[interop-matrix][im-transfer][im-as-client]") {
    client_case c;
    c.file_sizes = {2 * 1024 * 1024, 3 * 1024 * 1024, 1024 * 1024};  // beyond the initial windows
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == 3);
    CHECK(out.bodies_exact == out.bodies_expected);
}

TEST_CASE("interop matrix: retry: an h3co client with gtlsserver", "[interop-matrix][im-retry][im-as-client]") {
    client_case c;
    c.peer_options = {"-V"};  // --validate-addr: a Retry for every Initial without a token
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == out.bodies_expected);
    CHECK(out.relay.retries >= 1);
}

TEST_CASE("interop matrix: resumption: an h3co client with gtlsserver", "[interop-matrix][im-resumption][im-as-client]") {
    client_case c;
    c.options.session_cache = std::make_shared<h3co::session_cache>();
    c.options.early_data = false;
    c.connections = 2;
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == out.bodies_expected);
    REQUIRE(out.stats.size() == 2);
    CHECK_FALSE(out.stats[0].resumed);
    CHECK(out.stats[1].resumed);
    CHECK_FALSE(out.stats[1].early_data_offered);
}

TEST_CASE("interop matrix: http3: an h3co client with gtlsserver", "[interop-matrix][im-http3][im-as-client]") {
    client_case c;
    c.file_sizes = {5000, 300000, 70000};
    c.concurrent = true;
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == 3);
}

TEST_CASE("interop matrix: multiplexing: an h3co client with gtlsserver", "[interop-matrix][im-multiplexing][im-as-client]") {
    client_case c;
    // More requests at once than gtlsserver's stream limit (100): the client waits for credit.
    c.file_sizes.assign(300, 32);
    c.concurrent = true;
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == 300);
}

TEST_CASE("interop matrix: chacha20: an h3co client with gtlsserver", "[interop-matrix][im-chacha20][im-as-client]") {
    client_case c;
    c.peer_options = {gnutls_chacha_only};
    c.ciphers = h3co::tls_ciphers::chacha20_poly1305_only;
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == out.bodies_expected);
    REQUIRE(out.ciphers.size() == 1);
    CHECK(out.ciphers[0] == "TLS_CHACHA20_POLY1305_SHA256");
}

TEST_CASE("interop matrix: handshakecorruption: an h3co client with gtlsserver, 30% corrupted",
          "[interop-matrix][im-handshakecorruption][im-as-client]") {
    client_case c;
    c.faults.corrupt = 0.30;
    c.connections = 5;
    c.options.handshake_timeout = 20s;
    c.limit = 90s;
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == out.bodies_expected);
    CHECK(out.relay.corrupted >= out.relay.received / 10);
}

TEST_CASE("interop matrix: transfercorruption: an h3co client with gtlsserver, 2% corrupted",
          "[interop-matrix][im-transfercorruption][im-as-client]") {
    client_case c;
    c.faults.corrupt = 0.02;
    c.file_sizes = {2 * 1024 * 1024};
    c.limit = 60s;
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == 1);
    CHECK(out.relay.corrupted >= 5);
}

TEST_CASE("interop matrix: blackhole: an h3co client with gtlsserver, the path cut for 2 s mid-transfer",
          "[interop-matrix][im-blackhole][im-as-client]") {
    client_case c;
    c.file_sizes = {4 * 1024 * 1024};
    c.arm = [](test::lossy_relay& r) { r.cut_after(test::lossy_relay::direction::to_client, 400, 2000ms); };
    c.limit = 60s;
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == 1);
    CHECK(out.relay.blackholed > 0);
}

TEST_CASE("interop matrix: longrtt: an h3co client with gtlsserver at 1.5 s RTT", "[interop-matrix][im-longrtt][im-as-client]") {
    client_case c;
    c.faults.delay = 750ms;  // each way
    c.options.handshake_timeout = 30s;
    c.file_sizes = {1024, 200000};
    c.limit = 60s;
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == out.bodies_expected);
    REQUIRE(out.stats.size() == 1);
    CHECK(out.stats[0].smoothed_rtt >= 1400ms);
}

/// A NAT in front of the client: after 30 datagrams from it, the server sees it come from `from`.
std::function<void(test::lossy_relay&)> nat_rebinding_to(const char* from) {
    return [from](test::lossy_relay& r) { r.rebind_after(30, asio::ip::make_address(from)); };
}

TEST_CASE("interop matrix: rebind-port: an h3co client with gtlsserver, its port changed by a NAT mid-download",
          "[interop-matrix][im-rebind-port][im-as-client]") {
    client_case c;
    c.file_sizes = {4 * 1024 * 1024};
    c.arm = nat_rebinding_to("127.0.0.1");
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == 1);
    CHECK(out.rebindings == 1);
}

TEST_CASE("interop matrix: rebind-addr: an h3co client with gtlsserver, its address changed by a NAT mid-download",
          "[interop-matrix][im-rebind-addr][im-as-client]") {
    client_case c;
    c.file_sizes = {4 * 1024 * 1024};
    c.arm = nat_rebinding_to("127.0.0.2");
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == 1);
    CHECK(out.rebindings == 1);
}

TEST_CASE("interop matrix: connectionmigration: an h3co client follows gtlsserver's preferred address",
          "[interop-matrix][im-connectionmigration][im-as-client]") {
    client_case c;
    c.peer_options = {"--preferred-ipv4-addr=127.0.0.2:" + std::to_string(test::free_udp_port())};
    c.file_sizes = {4 * 1024 * 1024};
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    CHECK(out.bodies_exact == 1);
    REQUIRE(out.stats.size() == 1);
    CHECK(out.stats[0].paths_validated >= 1);  // it validated the preferred address and moved
}

// ---------------------------------------------------------------------------------------------
// ecn, both roles. The runner reads the marks from a packet capture; here the ECN relay
// (tests/support/ecn_relay.hpp) reads each datagram's mark, forwards it with the same mark, and
// counts the marks per direction. Neither ngtcp2 stack exposes its ECN validation state, and h3co
// has no such stat: but ngtcp2 marks at most 10 datagrams (NGTCP2_ECN_MAX_NUM_VALIDATION_PKTS)
// before the peer's ACK_ECN counts have validated the path, and marks every datagram once they
// have. So more than 10 ECT-marked 1-RTT datagrams from a side means that side validated ECN
// (on the h3co side: its peer echoed the marks; on the gtls side: h3co echoed them).

/// Both directions after the handshake: well beyond the 10 of the validation burst marked (the
/// smaller direction, ACKs, carries about a hundred in these 4 MiB), and nearly all of them.
void check_ecn_validated(const test::ecn_relay& relay) {
    using r = test::ecn_relay;
    const auto up = relay.to_server.ect_one_rtt(), down = relay.to_client.ect_one_rtt();
    const auto up_plain = r::direction_counts::at(relay.to_server.one_rtt, r::not_ect);
    const auto down_plain = r::direction_counts::at(relay.to_client.one_rtt, r::not_ect);
    INFO("to the server: " << relay.to_server.describe() << "\nto the client: " << relay.to_client.describe());
    CHECK(up > 50);
    CHECK(down > 50);
    CHECK(up > 10 * up_plain);
    CHECK(down > 10 * down_plain);
    // Nothing on loopback sets CE, and ngtcp2 sends ECT(0) only.
    CHECK(r::direction_counts::at(relay.to_server.all, r::ce) + r::direction_counts::at(relay.to_client.all, r::ce) == 0);
    CHECK(relay.send_errors == 0);
}

TEST_CASE("interop matrix: ecn: an h3co client with gtlsserver, marks kept both ways and validated",
          "[interop-matrix][im-ecn][im-as-client]") {
    test::temp_dir dir;
    fs::create_directory(dir.path / "htdocs");
    const auto file = file_content(4 * 1024 * 1024, 0);
    test::write_file(dir.path / "htdocs" / "f0", file);
    test::gtls_server peer(dir.path / "htdocs", dir.path / "gtlsserver.log");
    asio::io_context io;
    const auto ex = test::executor(io);
    test::run(io, test::wait_until_answering(ex, peer.port), 10s);
    test::ecn_relay relay(io, peer.endpoint());
    const auto port = relay.port();
    client_outcome out;
    test::run(io, [&]() -> asio::awaitable<void> {
        const auto tls = test::trusting_test_ca();
        const std::string host = "127.0.0.1";
        h3co::connection_options options;
        options.ecn = true;  // the default, said out loud
        auto conn = co_await h3co::connect(ex, host, port, tls, options);
        out.bodies_expected = 1;
        co_await get_one(conn, port, "/f0", file, out);
        conn.close();
    }());
    relay.close();
    test::settle(io);
    INFO("errors:\n" << out.errors << "gtlsserver log:\n" << test::read_file(peer.log));
    CHECK(out.bodies_exact == 1);
    check_ecn_validated(relay);
}

// ---------------------------------------------------------------------------------------------
// amplificationlimit. The runner serves a long certificate chain and drops the client's
// datagrams 2 to 7 (its "--drops_to_server=2,3,4,5,6,7"), so the server, which cannot yet take
// the client's address as validated, must stop at 3 x what it received (RFC 9000 §8.1) with its
// certificate only partly sent; it checks the server's bytes before the client's first Handshake
// packet. Here: big-chain.pem (cmake/make-certs.sh: leaf + 5 padded intermediates, > 10 KB), the
// lossy relay dropping the same datagrams and counting the bytes each way
// (test::amplification_counters).

test::fault_policy runner_amplification_drops() {
    test::fault_policy p;
    p.drop_next_after = 1;  // the client's first datagram passes
    p.drop_next = 6;        // then 2..7 are lost
    return p;
}

#define H3CO_REPORT_AMPLIFICATION(a)                                                                           \
    INFO("before the client's first Handshake packet: server sent " << (a).server_bytes << " bytes in "       \
                                                                    << (a).server_datagrams                  \
                                                                    << " datagrams, client's bytes received " \
                                                                    << (a).client_bytes << ", worst excess over 3x " \
                                                                    << (a).worst_excess)

/// The limit held, and was reached: the server sent close to 3x before the client's Handshake
/// packet (it was blocked with the chain unsent: the chain alone is > 3 x 1200 bytes).
void check_amplification(const test::amplification_counters& a) {
    REQUIRE(a.client_handshake_seen);
    CHECK(a.client_bytes >= 1200);
    CHECK(a.worst_excess <= 0);                   // never above 3x
    CHECK(a.server_bytes <= 3 * a.client_bytes);  // (the same, at the end)
    CHECK(a.server_bytes * 10 >= 25 * a.client_bytes);  // at least 2.5x: it used its allowance
}

TEST_CASE("interop matrix: amplificationlimit: an h3co client verifies gtlsserver's long chain, and the server keeps 3x",
          "[interop-matrix][im-amplificationlimit][im-as-client]") {
    client_case c;
    c.peer_chain = "big-chain.pem";
    c.peer_key = "big-chain.key";
    c.arm = [](test::lossy_relay& r) { r.set(test::lossy_relay::direction::to_server, runner_amplification_drops()); };
    c.file_sizes = {1024 * 1024};
    const auto out = run_as_client(c);
    H3CO_REPORT_CLIENT(out);
    H3CO_REPORT_AMPLIFICATION(out.amplification);
    CHECK(out.bodies_exact == 1);  // the chain verified against ca.pem (client_tls::ca_file)
    CHECK(out.relay.dropped == 6);
    check_amplification(out.amplification);
}

// ---------------------------------------------------------------------------------------------
// gtlsclient -> relay -> h3co server

struct server_case {
    h3co::server_options limits;
    h3co::server_tls tls = test::server_identity();
    test::fault_policy faults;
    std::function<void(test::lossy_relay&)> arm;
    std::vector<std::string> peer_options;  ///< gtlsclient's
    std::vector<std::size_t> file_sizes{1024};  ///< what each gtlsclient run GETs (all in one connection)
    int runs = 1;                               ///< gtlsclient runs, one after another
    std::chrono::milliseconds limit{30000};     ///< per run
};

/// What the server saw of one request.
struct request_seen {
    bool resumed = false;
    bool early_data = false;
    std::string cipher;
    std::uint64_t paths_validated = 0;  ///< by the end of the response
};

struct server_outcome {
    int runs_ok = 0;
    int files_expected = 0;
    int files_exact = 0;
    std::vector<request_seen> requests;
    h3co::server_stats stats;
    test::relay_counters relay;
    test::amplification_counters amplification;
    std::uint32_t rebindings = 0;
    std::string logs;
};

server_outcome run_as_server(server_case c) {
    test::temp_dir dir;
    std::vector<std::shared_ptr<const std::string>> files;
    auto seen = std::make_shared<std::vector<request_seen>>();
    auto guard = std::make_shared<std::mutex>();
    test::relayed_server rs(c.limits, c.tls);
    for (std::size_t i = 0; i < c.file_sizes.size(); ++i) {
        auto content = std::make_shared<const std::string>(file_content(c.file_sizes[i], i));
        files.push_back(content);
        rs.server->handle("/" + file_name(i), [content, seen, guard](h3co::server_request& req, h3co::response& res)
                                                 -> asio::awaitable<void> {
            request_seen r{req.connection_stats().resumed, req.early_data(), req.tls_cipher()};
            co_await res.send_header(200);
            constexpr std::size_t chunk = 64 * 1024;
            for (std::size_t off = 0; off < content->size(); off += chunk)
                co_await res.write(asio::buffer(content->data() + off, std::min(chunk, content->size() - off)));
            co_await res.finish(as_tuple);  // gtlsclient may close before it acknowledged the last packet
            r.paths_validated = req.connection_stats().paths_validated;
            std::lock_guard lock(*guard);
            seen->push_back(std::move(r));
        });
    }
    const auto port = rs.start(c.faults);
    if (c.arm) rs.on_thread([&] { c.arm(*rs.relay); });
    std::vector<std::string> paths;
    for (std::size_t i = 0; i < files.size(); ++i) paths.push_back("/" + file_name(i));

    server_outcome out;
    for (int run = 0; run < c.runs; ++run) {
        const auto downloads = dir.path / ("run" + std::to_string(run));
        fs::create_directory(downloads);
        auto options = c.peer_options;
        options.push_back("--download=" + downloads.string());
        const auto log = dir.path / ("gtlsclient" + std::to_string(run) + ".log");
        const bool ok = test::run_gtlsclient(port, paths, options, log, c.limit);
        out.runs_ok += ok;
        if (!ok) out.logs += "gtlsclient run " + std::to_string(run) + " failed:\n" + test::read_file(log);
        for (std::size_t i = 0; i < files.size(); ++i) {
            ++out.files_expected;
            out.files_exact += test::read_file(downloads / file_name(i)) == *files[i];
        }
    }
    out.relay = rs.on_thread([&] { return rs.relay->total(); });
    out.rebindings = rs.on_thread([&] { return rs.relay->rebindings(); });
    out.amplification = rs.on_thread([&] { return rs.relay->amplification(); });
    out.stats = rs.stop();
    std::lock_guard lock(*guard);
    out.requests = *seen;
    return out;
}

#define H3CO_REPORT_SERVER(out)                                                                              \
    INFO("relay: received " << (out).relay.received << ", dropped " << (out).relay.dropped << ", corrupted " \
                            << (out).relay.corrupted << ", blackholed " << (out).relay.blackholed            \
                            << ", delayed " << (out).relay.delayed << ", retries " << (out).relay.retries    \
                            << "\n"                                                                          \
                            << (out).logs)

TEST_CASE("interop matrix: handshake: gtlsclient with an h3co server", "[interop-matrix][im-handshake][im-as-server]") {
    server_case c;
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == out.files_expected);
    CHECK(out.stats.connections_accepted == 1);
}

TEST_CASE("interop matrix: transfer: gtlsclient with an h3co server", "[interop-matrix][im-transfer][im-as-server]") {
    server_case c;
    c.file_sizes = {2 * 1024 * 1024, 3 * 1024 * 1024, 1024 * 1024};
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == 3);
}

TEST_CASE("interop matrix: retry: gtlsclient with an h3co server", "[interop-matrix][im-retry][im-as-server]") {
    server_case c;
    c.limits.address_validation = h3co::address_validation::always;
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == out.files_expected);
    CHECK(out.stats.retries_sent >= 1);
    CHECK(out.stats.retry_tokens_accepted >= 1);
    CHECK(out.relay.retries >= 1);
}

TEST_CASE("interop matrix: resumption: gtlsclient with an h3co server", "[interop-matrix][im-resumption][im-as-server]") {
    test::temp_dir state;
    server_case c;
    c.runs = 2;
    c.peer_options = {"--session-file=" + (state.path / "session").string(), "--tp-file=" + (state.path / "tp").string(),
                      "--disable-early-data"};
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 2);
    CHECK(out.files_exact == 2);
    REQUIRE(out.requests.size() == 2);
    CHECK_FALSE(out.requests[0].resumed);
    CHECK(out.requests[1].resumed);
    CHECK_FALSE(out.requests[1].early_data);
}

TEST_CASE("interop matrix: http3: gtlsclient with an h3co server", "[interop-matrix][im-http3][im-as-server]") {
    server_case c;
    c.file_sizes = {5000, 300000, 70000};
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == 3);
}

TEST_CASE("interop matrix: multiplexing: gtlsclient with an h3co server", "[interop-matrix][im-multiplexing][im-as-server]") {
    server_case c;
    c.file_sizes.assign(300, 32);  // more streams than the server's initial limit: it grants more as they end
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == 300);
    CHECK(out.stats.connections_accepted == 1);
}

TEST_CASE("interop matrix: chacha20: gtlsclient with an h3co server", "[interop-matrix][im-chacha20][im-as-server]") {
    server_case c;
    c.tls.ciphers = h3co::tls_ciphers::chacha20_poly1305_only;
    c.peer_options = {gnutls_chacha_only};
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == 1);
    REQUIRE(out.requests.size() == 1);
    CHECK(out.requests[0].cipher == "TLS_CHACHA20_POLY1305_SHA256");
}

TEST_CASE("interop matrix: handshakecorruption: gtlsclient with an h3co server, 30% corrupted",
          "[interop-matrix][im-handshakecorruption][im-as-server]") {
    server_case c;
    c.faults.corrupt = 0.30;
    c.runs = 5;
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 5);
    CHECK(out.files_exact == 5);
    CHECK(out.relay.corrupted >= out.relay.received / 10);
}

TEST_CASE("interop matrix: transfercorruption: gtlsclient with an h3co server, 2% corrupted",
          "[interop-matrix][im-transfercorruption][im-as-server]") {
    server_case c;
    c.faults.corrupt = 0.02;
    c.file_sizes = {2 * 1024 * 1024};
    c.limit = 60000ms;
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == 1);
    CHECK(out.relay.corrupted >= 5);
}

TEST_CASE("interop matrix: blackhole: gtlsclient with an h3co server, the path cut for 2 s mid-transfer",
          "[interop-matrix][im-blackhole][im-as-server]") {
    server_case c;
    c.file_sizes = {4 * 1024 * 1024};
    c.arm = [](test::lossy_relay& r) { r.cut_after(test::lossy_relay::direction::to_client, 400, 2000ms); };
    c.limit = 60000ms;
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == 1);
    CHECK(out.relay.blackholed > 0);
}

TEST_CASE("interop matrix: longrtt: gtlsclient with an h3co server at 1.5 s RTT", "[interop-matrix][im-longrtt][im-as-server]") {
    server_case c;
    c.faults.delay = 750ms;
    c.file_sizes = {1024, 200000};
    c.limit = 60000ms;
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == 2);
    CHECK(out.relay.delayed > 0);
}

TEST_CASE("interop matrix: rebind-port: gtlsclient with an h3co server, its port changed by a NAT mid-download",
          "[interop-matrix][im-rebind-port][im-as-server]") {
    server_case c;
    c.file_sizes = {4 * 1024 * 1024};
    c.arm = nat_rebinding_to("127.0.0.1");
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == 1);
    CHECK(out.rebindings == 1);
    REQUIRE(out.requests.size() == 1);
    CHECK(out.requests[0].paths_validated >= 1);  // the server validated the client's new path
}

TEST_CASE("interop matrix: rebind-addr: gtlsclient with an h3co server, its address changed by a NAT mid-download",
          "[interop-matrix][im-rebind-addr][im-as-server]") {
    server_case c;
    c.file_sizes = {4 * 1024 * 1024};
    c.arm = nat_rebinding_to("127.0.0.2");
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == 1);
    CHECK(out.rebindings == 1);
    REQUIRE(out.requests.size() == 1);
    CHECK(out.requests[0].paths_validated >= 1);
}

TEST_CASE("interop matrix: ecn: gtlsclient with an h3co server, marks kept both ways and validated",
          "[interop-matrix][im-ecn][im-as-server]") {
    test::temp_dir dir;
    const auto content = std::make_shared<const std::string>(file_content(4 * 1024 * 1024, 0));
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    h3co::connection_options options;
    options.ecn = true;
    h3co::server server(test::executor(io), test::server_identity(), options);
    server.handle("/f0", [content](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        co_await res.write(asio::buffer(*content));
        co_await res.finish(as_tuple);  // gtlsclient may close before it acknowledged the last packet
    });
    test::ecn_relay relay(io, server.listen("127.0.0.1", 0));
    // Joins the thread however the test ends (a failed REQUIRE throws past the orderly stop).
    struct joiner {
        asio::io_context& io;
        std::thread thread;
        ~joiner() {
            io.stop();
            if (thread.joinable()) thread.join();
        }
    } runner{io, std::thread([&] { io.run(); })};
    const auto downloads = dir.path / "downloads";
    fs::create_directory(downloads);
    const auto log = dir.path / "gtlsclient.log";
    const bool ok = test::run_gtlsclient(relay.port(), {"/f0"}, {"--download=" + downloads.string()}, log, 30000ms);
    std::promise<void> closed;
    asio::post(io, [&] {
        relay.close();
        server.close();
        closed.set_value();
    });
    closed.get_future().wait();
    std::this_thread::sleep_for(100ms);  // close frames go out
    work.reset();
    io.stop();
    runner.thread.join();
    INFO("gtlsclient log:\n" << test::read_file(log));
    CHECK(ok);
    CHECK(test::read_file(downloads / "f0") == *content);
    check_ecn_validated(relay);
}

TEST_CASE("interop matrix: amplificationlimit: gtlsclient with an h3co server serving a long chain keeps 3x",
          "[interop-matrix][im-amplificationlimit][im-as-server]") {
    server_case c;
    c.tls = h3co::server_tls::from_pem_files(test::cert("big-chain.pem"), test::cert("big-chain.key"));
    c.arm = [](test::lossy_relay& r) { r.set(test::lossy_relay::direction::to_server, runner_amplification_drops()); };
    c.file_sizes = {1024 * 1024};
    const auto out = run_as_server(c);
    H3CO_REPORT_SERVER(out);
    H3CO_REPORT_AMPLIFICATION(out.amplification);
    CHECK(out.runs_ok == 1);
    CHECK(out.files_exact == 1);
    CHECK(out.relay.dropped == 6);
    check_amplification(out.amplification);
}

}  // namespace interop_matrix_test
