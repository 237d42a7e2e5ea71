// What the command-line clients (h3upload, h3get) share: exit codes, the flags they have in common,
// connecting with a timeout, and running the main coroutine.
#pragma once

#include <h3co/h3co.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>

namespace examples {

/// The exit codes of h3upload and h3get.
enum exit_code : int {
    exit_ok = 0,          ///< a 2xx response, completely transferred
    exit_usage = 2,       ///< bad command line
    exit_connection = 3,  ///< resolve, refused, timeout, connection lost
    exit_tls = 4,         ///< certificate verification or handshake
    exit_http = 5,        ///< non-2xx status, stream reset or stopped, a malformed response (content-length)
    exit_local_io = 6,    ///< a local file, stdin or stdout
};

/// The exit-code lines of the usage texts.
constexpr const char* exit_codes_text =
    "exit codes: 0 ok (2xx), 2 usage, 3 connection, 4 TLS, 5 HTTP (non-2xx, stream reset or\n"
    "            stopped, a malformed response), 6 local I/O\n";

/// Thrown by the argument parsers; the tool prints it with its usage and exits with exit_usage.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The flags both clients take.
struct client_flags {
    h3co::fields headers;                                       ///< -H 'name: value', repeatable
    std::string ca_file;                                        ///< --cacert FILE
    bool insecure = false;                                      ///< --insecure, -k
    bool quiet = false;                                         ///< --quiet, -q: no progress line
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);  ///< --connect-timeout S
    std::string session_file;  ///< --session-file FILE: TLS tickets and transport parameters kept between runs
    bool early_data = false;   ///< send the request in 0-RTT when a ticket allows it (the tool decides)
};

constexpr const char* client_flags_text =
    "  -H 'name: value'       add a request header (repeatable)\n"
    "  --cacert FILE          trust only the CA certificates in FILE (PEM)\n"
    "  --insecure, -k         do not verify the server's certificate (test servers only)\n"
    "  --connect-timeout S    give up connecting after S seconds (default 10)\n"
    "  --quiet, -q            no progress line (it is shown only when stderr is a terminal)\n"
    "  --session-file FILE    keep TLS session tickets and the server's transport parameters in\n"
    "                         FILE (mode 0600): a later run resumes, and may send in 0-RTT\n";

/// "Name: value" as an HTTP/3 field (name lowercased, leading blanks of the value dropped).
inline h3co::field parse_header(const std::string& line) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) throw usage_error("-H wants 'name: value', got '" + line + "'");
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });  // HTTP/3: lowercase
    const auto start = line.find_first_not_of(" \t", colon + 1);
    return h3co::field{std::move(name), start == std::string::npos ? std::string{} : line.substr(start)};
}

/// If argv[i] is one of the common flags, takes it (and its value: ++i) into `flags` and returns
/// true. Throws usage_error for a bad value.
inline bool parse_client_flag(int argc, char** argv, int& i, client_flags& flags) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw usage_error("missing value for " + arg);
        return argv[++i];
    };
    if (arg == "-H" || arg == "--header") {
        flags.headers.push_back(parse_header(value()));
    } else if (arg == "--cacert") {
        flags.ca_file = value();
    } else if (arg == "-k" || arg == "--insecure") {
        flags.insecure = true;
    } else if (arg == "-q" || arg == "--quiet") {
        flags.quiet = true;
    } else if (arg == "--session-file") {
        flags.session_file = value();
    } else if (arg == "--connect-timeout") {
        const std::string v = value();
        char* end = nullptr;
        const double seconds = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || *end != '\0' || !(seconds > 0) || seconds > 1e6)
            throw usage_error("--connect-timeout takes seconds > 0");
        flags.connect_timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
    } else {
        return false;
    }
    return true;
}

/// Checks what the flags and the URL must satisfy together; throws usage_error.
inline h3co::url_parts check_client_args(const client_flags& flags, const std::string& url) {
    if (!flags.ca_file.empty() && flags.insecure) throw usage_error("--cacert and --insecure exclude each other");
    auto parts = h3co::parse_authority(url);
    if (url.rfind("https://", 0) != 0 || !parts) throw usage_error("URL must be https://host[:port]/path");
    return *parts;
}

inline h3co::client_tls make_tls(const client_flags& flags) {
    h3co::client_tls tls = flags.insecure ? h3co::client_tls::insecure_no_certificate_verification() : h3co::client_tls{};
    tls.ca_file = flags.ca_file;
    return tls;
}

inline bool is_tls_failure(std::error_code ec) {
    if (ec.category() == h3co::tls_category()) return true;
    if (ec == h3co::error::handshake_failed || ec == h3co::error::alpn_mismatch) return true;
    // A TLS alert the peer closed the connection with (QUIC CRYPTO_ERROR 0x100-0x1ff).
    return ec.category() == h3co::quic_category() && ec.value() >= 0x100 && ec.value() <= 0x1ff;
}

/// The exit code of a connection or stream failure.
inline int classify(std::error_code ec) {
    if (is_tls_failure(ec)) return exit_tls;
    if (ec.category() == h3co::h3_category()) return exit_http;
    // The exchange failed, not the connection: a malformed or mismatched message, a stream stopped
    // or timed out by the server, a request h3co refused to send.
    if (ec == h3co::error::stream_stopped || ec == h3co::error::content_length_mismatch ||
        ec == h3co::error::body_too_large || ec == h3co::error::header_too_large ||
        ec == h3co::error::invalid_request || ec == h3co::error::request_timeout)
        return exit_http;
    return exit_connection;  // resolve_failed, connection_refused, timeouts, connection_closed, ...
}

/// "h3co.tls: unknown issuer": the category tells where an error comes from.
inline std::string describe(std::error_code ec) { return std::string(ec.category().name()) + ": " + ec.message(); }

/// The tickets kept in --session-file (an empty cache if the file does not exist yet; a file that
/// is not a session cache is reported and ignored); null without --session-file.
inline std::shared_ptr<h3co::session_cache> load_session(const char* name, const client_flags& flags) {
    if (flags.session_file.empty()) return nullptr;
    auto cache = std::make_shared<h3co::session_cache>();
    std::ifstream in(flags.session_file, std::ios::binary);
    if (!in) return cache;
    const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (auto ec = cache->import_bytes(bytes))
        std::cerr << name << ": ignoring " << flags.session_file << ": " << ec.message() << '\n';
    return cache;
}

/// Writes `cache` to --session-file: a temporary file (mode 0600: tickets let their holder resume
/// as this client) renamed over it, so that a crash never leaves half a file. Failures are
/// reported, not fatal: the transfer itself succeeded.
inline void save_session(const char* name, const client_flags& flags, const h3co::session_cache* cache) {
    if (flags.session_file.empty() || !cache) return;
    const auto bytes = cache->export_bytes();
    const std::string temp = flags.session_file + ".tmp";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    for (std::size_t off = 0; ok && off < bytes.size();) {
        const auto n = ::write(fd, bytes.data() + off, bytes.size() - off);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        off += ok ? static_cast<std::size_t>(n) : 0;
    }
    if (fd >= 0 && ::close(fd) != 0) ok = false;
    if (ok && ::rename(temp.c_str(), flags.session_file.c_str()) == 0) return;
    std::cerr << name << ": cannot write " << flags.session_file << ": " << std::strerror(errno) << '\n';
    ::unlink(temp.c_str());
}

/// Connects to `where`, giving up after `timeout` with asio::error::timed_out: the connect
/// operation is raced against a timer with `||`, which cancels the loser; a cancelled connect
/// abandons its handshake at once (a name lookup, once the resolver answers). The handshake also
/// gets `timeout` (connection_options::handshake_timeout), so the attempt ends then by itself too.
/// Throws std::runtime_error for a TLS configuration error (an unreadable CA file).
/// With `session`: tickets come from and go to it, and 0-RTT is tried when `early_data`.
inline asio::awaitable<std::pair<std::error_code, h3co::connection>> connect_within(
    const h3co::url_parts& where, const h3co::client_tls& tls, std::chrono::milliseconds timeout,
    std::shared_ptr<h3co::session_cache> session = nullptr, bool early_data = false) {
    using namespace asio::experimental::awaitable_operators;
    using asio::experimental::as_tuple;
    auto ex = co_await asio::this_coro::executor;
    h3co::connection_options options;
    options.handshake_timeout = timeout;
    options.session_cache = std::move(session);
    options.early_data = early_data && options.session_cache;
    // Made first and awaited by name: its std::string arguments are never temporaries inside a
    // co_await expression (g++ 12, docs/getting-started.md).
    auto connecting = h3co::connect(ex, where.host, where.port, tls, options, as_tuple(asio::use_awaitable));
    asio::steady_timer timer(ex, timeout);
    auto first = co_await (std::move(connecting) || timer.async_wait(asio::use_awaitable));
    if (first.index() == 1) co_return std::pair<std::error_code, h3co::connection>{asio::error::timed_out, h3co::connection{}};
    auto [ec, conn] = std::move(std::get<0>(first));
    co_return std::pair<std::error_code, h3co::connection>{ec, std::move(conn)};
}

/// Runs a client's main coroutine on `io` and returns the exit code: the coroutine's result, or, if
/// it threw, the code for its error. SIGINT or SIGTERM stops the io_context (exit 128 + signal):
/// whatever is open is dropped, so a request in flight is reset and the server sees it cancelled.
inline int run_client(const char* name, asio::io_context& io, asio::awaitable<int> main_coroutine) {
    std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is an I/O error (exit 6), not a silent death
    int rc = exit_local_io;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int signal_number) {
        if (ec) return;
        rc = 128 + signal_number;
        io.stop();
    });
    asio::co_spawn(io, std::move(main_coroutine), [&](std::exception_ptr e, int result) {
        rc = result;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::system_error& err) {
                std::cerr << name << ": " << describe(err.code()) << '\n';
                rc = classify(err.code());
            } catch (const std::exception& err) {
                std::cerr << name << ": " << err.what() << '\n';
                rc = exit_connection;
            }
        }
        signals.cancel();
    });
    io.run();
    return rc;
}

}  // namespace examples
