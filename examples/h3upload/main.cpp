// h3upload: `curl -T` for HTTP/3. Streams a file or stdin as a request body, prints the response.
//
//   h3upload [-X POST|PUT] [-H 'name: value']... [--cacert FILE | --insecure]
//            [--connect-timeout SECONDS] [--quiet] FILE|- URL
//
// The body is read in chunks on the executor while it is sent (never loaded whole): a regular file
// with read(), which does not block; stdin or a pipe through asio::posix::stream_descriptor. The
// writer waits on the stream's flow control, so the source is read no faster than the server takes
// it. The response status ("HTTP/3 200") and body go to stdout. When stderr is a terminal a progress
// line shows bytes sent, rate and, when the size is known, percentage and ETA.
//
// Exit codes: 0 success (2xx), 2 usage, 3 connection (resolve, refused, timeout, lost),
// 4 TLS (certificate verification or handshake), 5 HTTP (non-2xx status or stream reset),
// 6 local I/O (the file, stdin or stdout).
#include <h3co/h3co.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using asio::experimental::as_tuple;
using clock_type = std::chrono::steady_clock;

enum exit_code : int {
    exit_ok = 0,
    exit_usage = 2,
    exit_connection = 3,
    exit_tls = 4,
    exit_http = 5,
    exit_local_io = 6,
};

constexpr const char* usage_text =
    "usage: h3upload [-X POST|PUT] [-H 'name: value']... [--cacert FILE | --insecure]\n"
    "                [--connect-timeout SECONDS] [--quiet] FILE|- URL\n"
    "\n"
    "Uploads FILE (or stdin for '-') as the streamed body of an HTTP/3 request to URL\n"
    "(https://host[:port]/path) and prints the response status and body to stdout.\n"
    "\n"
    "  -X METHOD              POST or PUT (default PUT, like curl -T)\n"
    "  -H 'name: value'       add a request header (repeatable)\n"
    "  --cacert FILE          trust only the CA certificates in FILE (PEM)\n"
    "  --insecure             do not verify the server's certificate (test servers only)\n"
    "  --connect-timeout S    give up a handshake after S seconds (default 10)\n"
    "  --quiet, -q            no progress line (it is shown only when stderr is a terminal)\n"
    "\n"
    "exit codes: 0 ok (2xx), 2 usage, 3 connection, 4 TLS, 5 HTTP (non-2xx or stream reset),\n"
    "            6 local I/O\n";

struct options {
    std::string method = "PUT";
    h3co::fields headers;
    std::string ca_file;
    bool insecure = false;
    bool quiet = false;
    std::chrono::milliseconds connect_timeout = 10s;
    std::string source;  // a path, or "-" for stdin
    std::string url;
};

[[noreturn]] void usage_error(const std::string& what) {
    std::cerr << "h3upload: " << what << "\n" << usage_text;
    std::exit(exit_usage);
}

options parse_args(int argc, char** argv) {
    options opt;
    std::vector<std::string> positional;
    auto value = [&](int& i, const std::string& flag) -> std::string {
        if (i + 1 >= argc) usage_error("missing value for " + flag);
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::cout << usage_text;
            std::exit(exit_ok);
        } else if (arg == "-X" || arg == "--request") {
            opt.method = value(i, arg);
            if (opt.method != "POST" && opt.method != "PUT") usage_error("-X takes POST or PUT, not " + opt.method);
        } else if (arg == "-H" || arg == "--header") {
            const std::string line = value(i, arg);
            const auto colon = line.find(':');
            if (colon == std::string::npos || colon == 0) usage_error("-H wants 'name: value', got '" + line + "'");
            std::string name = line.substr(0, colon);
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });  // HTTP/3: lowercase
            const auto start = line.find_first_not_of(" \t", colon + 1);
            std::string field_value = start == std::string::npos ? std::string{} : line.substr(start);
            opt.headers.push_back(h3co::field{std::move(name), std::move(field_value)});
        } else if (arg == "--cacert") {
            opt.ca_file = value(i, arg);
        } else if (arg == "-k" || arg == "--insecure") {
            opt.insecure = true;
        } else if (arg == "-q" || arg == "--quiet") {
            opt.quiet = true;
        } else if (arg == "--connect-timeout") {
            const std::string v = value(i, arg);
            char* end = nullptr;
            const double seconds = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end != '\0' || !(seconds > 0)) usage_error("--connect-timeout takes seconds > 0");
            opt.connect_timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
        } else if (arg.size() > 1 && arg[0] == '-' && arg != "-") {
            usage_error("unknown option " + arg);
        } else {
            positional.push_back(arg);
        }
    }
    if (positional.size() != 2) usage_error("want FILE|- and URL");
    if (!opt.ca_file.empty() && opt.insecure) usage_error("--cacert and --insecure exclude each other");
    opt.source = positional[0];
    opt.url = positional[1];
    if (opt.url.rfind("https://", 0) != 0 || !h3co::parse_authority(opt.url)) usage_error("URL must be https://host[:port]/path");
    return opt;
}

/// Where the body comes from. A regular file is read with read(), which never blocks; anything else
/// (a pipe, a terminal, a socket) goes through a stream_descriptor so that waiting for input never
/// blocks the executor.
class body_source {
public:
    body_source(asio::any_io_executor ex, int fd, bool owned) : fd_(fd), owned_(owned), descriptor_(ex) {
        struct stat st {};
        if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
            regular_ = true;
            const off_t pos = ::lseek(fd_, 0, SEEK_CUR);
            size_ = static_cast<std::uint64_t>(st.st_size - (pos > 0 ? pos : 0));
        } else {
            // Asio sets O_NONBLOCK on the descriptor, which is shared with whoever else has it
            // (the shell, for stdin): remember the flags to restore them at the end.
            saved_flags_ = ::fcntl(fd_, F_GETFL);
            const int dup_fd = ::dup(fd_);
            if (dup_fd < 0) throw std::system_error(errno, std::generic_category(), "dup");
            descriptor_.assign(dup_fd);
        }
    }
    body_source(const body_source&) = delete;
    body_source& operator=(const body_source&) = delete;
    ~body_source() {
        std::error_code ignored;
        descriptor_.close(ignored);
        if (saved_flags_ >= 0) ::fcntl(fd_, F_SETFL, saved_flags_);
        if (owned_) ::close(fd_);
    }

    /// Bytes left to send, when known (a regular file).
    std::optional<std::uint64_t> size() const { return regular_ ? std::optional<std::uint64_t>(size_) : std::nullopt; }

    /// Reads at least one byte; asio::error::eof at the end.
    asio::awaitable<std::pair<std::error_code, std::size_t>> read_some(asio::mutable_buffer buf) {
        if (!regular_) {
            auto [ec, n] = co_await descriptor_.async_read_some(buf, as_tuple(asio::use_awaitable));
            co_return std::pair<std::error_code, std::size_t>{ec, n};
        }
        for (;;) {
            const ssize_t n = ::read(fd_, buf.data(), buf.size());
            if (n > 0) co_return std::pair<std::error_code, std::size_t>{std::error_code{}, static_cast<std::size_t>(n)};
            if (n == 0) co_return std::pair<std::error_code, std::size_t>{asio::error::eof, 0};
            if (errno != EINTR) co_return std::pair<std::error_code, std::size_t>{std::error_code(errno, std::generic_category()), 0};
        }
    }

private:
    int fd_;
    bool owned_;
    bool regular_ = false;
    std::uint64_t size_ = 0;
    int saved_flags_ = -1;
    asio::posix::stream_descriptor descriptor_;
};

class progress_meter;

/// What the sender, the receiver and the progress line share (one thread: no locks).
struct transfer {
    std::optional<std::uint64_t> total;
    clock_type::time_point start = clock_type::now();
    bool send_done = false;            // the whole body was sent and acknowledged
    bool response_done = false;        // the response was read to its end (or failed)
    std::error_code send_error;        // the stream failed while sending
    std::error_code local_error;       // reading the body or writing stdout failed
    std::error_code response_error;    // the stream failed while receiving
    int status = 0;
    progress_meter* meter = nullptr;  // set while a progress line is shown
};

std::string human_bytes(double bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    char out[32];
    std::snprintf(out, sizeof out, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return out;
}

std::string progress_line(const transfer& t, std::uint64_t sent, bool final) {
    const double secs = std::chrono::duration<double>(clock_type::now() - t.start).count();
    const double rate = secs > 0 ? static_cast<double>(sent) / secs : 0;
    std::string line = human_bytes(static_cast<double>(sent));
    if (t.total) {
        const double pct = *t.total ? 100.0 * static_cast<double>(sent) / static_cast<double>(*t.total) : 100.0;
        char buf[64];
        std::snprintf(buf, sizeof buf, " / %s (%3.0f%%)", human_bytes(static_cast<double>(*t.total)).c_str(), pct);
        line += buf;
    }
    line += "  " + human_bytes(rate) + "/s";
    if (final) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "  in %.1f s", secs);
        line += buf;
    } else if (t.total && rate > 0 && sent < *t.total) {
        const auto eta = static_cast<long long>(static_cast<double>(*t.total - sent) / rate + 0.5);
        char buf[32];
        std::snprintf(buf, sizeof buf, "  ETA %lld:%02lld", eta / 60, eta % 60);
        line += buf;
    }
    return line;
}

/// The progress line on stderr (a terminal), redrawn every 250 ms until finish().
class progress_meter {
public:
    progress_meter(asio::any_io_executor ex, h3co::http_stream stream, const transfer& t)
        : timer_(std::make_shared<asio::steady_timer>(ex)), stream_(std::move(stream)), t_(t) {
        draw(false);
        arm();
    }
    progress_meter(const progress_meter&) = delete;
    progress_meter& operator=(const progress_meter&) = delete;
    ~progress_meter() { finish(); }

    /// Draws the final line (and a newline) once; later calls do nothing.
    void finish() {
        if (finished_) return;
        finished_ = true;
        timer_->cancel();
        draw(true);
    }

private:
    void arm() {
        timer_->expires_after(250ms);
        // The handler owns the timer and checks the error before touching `this`: a cancelled
        // wait runs after finish(), possibly after the meter is gone.
        timer_->async_wait([this, keep = timer_](std::error_code ec) {
            if (ec) return;
            draw(false);
            arm();
        });
    }
    void draw(bool final) {
        const std::string line = progress_line(t_, stream_.bytes_sent(), final);
        std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
        std::fflush(stderr);
    }

    std::shared_ptr<asio::steady_timer> timer_;
    h3co::http_stream stream_;  // a shared handle: only read for bytes_sent()
    const transfer& t_;
    bool finished_ = false;
};

/// Copies the body source into the stream, then ends it (FIN) and waits for the peer's ACK.
asio::awaitable<void> send_body(h3co::http_stream stream, body_source& body, transfer& t) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
        auto [rec, n] = co_await body.read_some(asio::buffer(buf));
        if (n > 0) {
            auto [wec, written] = co_await stream.write(asio::buffer(buf.data(), n), as_tuple(asio::use_awaitable));
            (void)written;
            if (wec) {
                t.send_error = wec;
                co_return;
            }
        }
        if (rec == asio::error::eof) break;
        if (rec) {
            t.local_error = rec;
            std::cerr << "h3upload: reading the body: " << rec.message() << '\n';
            stream.reset();  // the server must not take half a body for a whole one
            co_return;
        }
    }
    auto [fec] = co_await stream.finish(as_tuple(asio::use_awaitable));
    if (fec)
        t.send_error = fec;
    else
        t.send_done = true;
}

bool write_stdout(const char* data, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(STDOUT_FILENO, data, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

/// Reads the response: status line to stdout, then the body as it arrives.
asio::awaitable<void> receive_response(h3co::request_stream& stream, transfer& t) {
    auto [ec, head] = co_await stream.read_response(as_tuple(asio::use_awaitable));
    if (ec) {
        t.response_error = ec;
        t.response_done = true;
        co_return;
    }
    t.status = head.status;
    if (t.meter) t.meter->finish();  // end the progress line before the response is printed
    const std::string status_line = "HTTP/3 " + std::to_string(head.status) + "\n";
    bool out_ok = write_stdout(status_line.data(), status_line.size());
    std::array<char, 16 * 1024> buf;
    for (;;) {
        auto [rec, n] = co_await stream.read_some(asio::buffer(buf), as_tuple(asio::use_awaitable));
        if (n > 0 && out_ok) out_ok = write_stdout(buf.data(), n);
        if (rec == h3co::error::eof) break;
        if (rec) {
            t.response_error = rec;
            break;
        }
    }
    if (!out_ok) t.local_error = std::error_code(errno, std::generic_category());
    t.response_done = true;
    // A server that refused the request has no use for the rest of the body: stop sending it.
    if ((head.status < 200 || head.status > 299 || t.local_error) && !t.send_done && !t.send_error) stream.reset();
}

bool is_tls_failure(std::error_code ec) {
    if (ec.category() == h3co::tls_category()) return true;
    if (ec == h3co::error::handshake_failed || ec == h3co::error::alpn_mismatch) return true;
    // A TLS alert the peer closed the connection with (QUIC CRYPTO_ERROR 0x100-0x1ff).
    return ec.category() == h3co::quic_category() && ec.value() >= 0x100 && ec.value() <= 0x1ff;
}

/// The exit code of a connection or stream failure.
int classify(std::error_code ec) {
    if (is_tls_failure(ec)) return exit_tls;
    if (ec.category() == h3co::h3_category() || ec == h3co::error::stream_stopped) return exit_http;
    return exit_connection;  // resolve_failed, connection_refused, timeouts, connection_closed, ...
}

std::string describe(std::error_code ec) { return std::string(ec.category().name()) + ": " + ec.message(); }

asio::awaitable<int> upload(const options& opt, body_source& body) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    const auto authority = *h3co::parse_authority(opt.url);

    h3co::client_tls tls = opt.insecure ? h3co::client_tls::insecure_no_certificate_verification() : h3co::client_tls{};
    tls.ca_file = opt.ca_file;
    h3co::connection_options copt;
    copt.handshake_timeout = opt.connect_timeout;

    // The operation is made first and awaited by name: its std::string arguments are never
    // temporaries inside a co_await expression (g++ 12, docs/getting-started.md).
    std::optional<decltype(h3co::connect(ex, authority.host, authority.port, tls, copt, as_tuple(asio::use_awaitable)))> connect_op;
    try {
        connect_op.emplace(h3co::connect(ex, authority.host, authority.port, tls, copt, as_tuple(asio::use_awaitable)));
    } catch (const std::exception& e) {  // configuration: an unreadable or invalid CA file
        std::cerr << "h3upload: TLS configuration: " << e.what() << '\n';
        co_return exit_local_io;
    }
    auto [cec, conn] = co_await std::move(*connect_op);
    if (cec) {
        std::cerr << "h3upload: cannot connect to " << authority.host << ':' << authority.port << ": " << describe(cec) << '\n';
        co_return classify(cec);
    }

    auto [oec, stream] = co_await conn.open_request_stream(as_tuple(asio::use_awaitable));
    if (oec) {
        std::cerr << "h3upload: cannot open a request stream: " << describe(oec) << '\n';
        co_return classify(oec);
    }

    transfer t;
    t.total = body.size();
    h3co::request req;
    req.method = opt.method;
    req.url = opt.url;
    req.headers = opt.headers;
    if (t.total && !req.headers.find("content-length"))
        req.headers.push_back(h3co::field{"content-length", std::to_string(*t.total)});
    auto [hec] = co_await stream.send_header(req, as_tuple(asio::use_awaitable));
    if (hec) {
        std::cerr << "h3upload: cannot send the request: " << describe(hec) << '\n';
        co_return classify(hec);
    }

    t.start = clock_type::now();
    std::optional<progress_meter> meter;
    if (!opt.quiet && ::isatty(STDERR_FILENO)) {
        meter.emplace(ex, stream.share(), t);
        t.meter = &*meter;
    }

    // Full duplex: the response may come while the body is still going out (a refusal does).
    auto sender = send_body(stream.share(), body, t);
    auto receiver = receive_response(stream, t);
    co_await (std::move(sender) && std::move(receiver));

    const auto sent = stream.bytes_sent();
    if (meter) meter->finish();
    conn.close();

    if (t.local_error) co_return exit_local_io;
    if (t.response_error) {
        std::cerr << "h3upload: the response failed: " << describe(t.response_error) << '\n';
        co_return classify(t.response_error);
    }
    if (t.status < 200 || t.status > 299) {
        std::cerr << "h3upload: the server answered " << t.status << '\n';
        co_return exit_http;
    }
    if (t.send_error) {
        // RFC 9114 §4.1: a server may answer in full and stop reading the rest with H3_NO_ERROR.
        std::cerr << "h3upload: the server answered " << t.status << " but stopped the upload after " << sent
                  << " bytes (" << describe(t.send_error) << ")\n";
        co_return t.send_error == h3co::error::stream_stopped ? exit_ok : classify(t.send_error);
    }
    co_return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    const options opt = parse_args(argc, argv);
    std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is an I/O error (exit 6), not a silent death

    int fd = STDIN_FILENO;
    const bool from_stdin = opt.source == "-";
    if (!from_stdin) {
        fd = ::open(opt.source.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            std::cerr << "h3upload: cannot open " << opt.source << ": " << std::strerror(errno) << '\n';
            return exit_local_io;
        }
    }

    asio::io_context io;
    int rc = exit_local_io;
    {
        std::optional<body_source> body;
        try {
            body.emplace(io.get_executor(), fd, !from_stdin);
        } catch (const std::exception& e) {
            std::cerr << "h3upload: " << e.what() << '\n';
            if (!from_stdin) ::close(fd);
            return exit_local_io;
        }

        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](std::error_code ec, int) {
            if (ec) return;
            rc = 128 + SIGINT;
            io.stop();  // destroys the stream: it is reset, the server sees a cancelled request
        });

        asio::co_spawn(io, upload(opt, *body), [&](std::exception_ptr e, int result) {
            rc = result;
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::system_error& err) {
                    std::cerr << "h3upload: " << describe(err.code()) << '\n';
                    rc = classify(err.code());
                } catch (const std::exception& err) {
                    std::cerr << "h3upload: " << err.what() << '\n';
                    rc = exit_connection;
                }
            }
            signals.cancel();
        });
        io.run();
    }  // the body source restores stdin's flags here
    return rc;
}
