// h3get: `curl` for GET over HTTP/3. Streams a response body to stdout or to a file.
//
//   h3get [-I] [-o FILE] [-H 'name: value']... [--cacert FILE | --insecure]
//         [--connect-timeout SECONDS] [--session-file FILE] [--quiet] URL
//
// The body is written as it arrives, one read at a time (never held whole). Each read waits for the
// previous chunk to be written, and the stream's receive window only reopens as we read, so a slow
// disk or a slow reader of stdout slows the server down instead of filling memory. With -o, the body
// goes to a temporary file next to FILE that is renamed to FILE once the whole body has arrived: a
// failed or interrupted download never leaves a truncated FILE behind, nor clobbers an existing one;
// the file (then its directory) is fsync()ed around the rename, so a crash does not either.
// -I sends HEAD and prints the status line and the fields like `curl -I`. When stderr is a terminal
// (and the body does not go to one), a progress line shows bytes, rate and, with a content-length,
// percentage and ETA.
// With --session-file, the server's TLS tickets and transport parameters are kept in FILE: a
// repeat run resumes, and sends its GET in 0-RTT when the ticket allows it (if the server rejects
// the early data, the GET goes again after the handshake).
//
// Like `curl --fail`, a non-2xx status writes no body: h3get says so on stderr and exits with 5.
// Exit codes (examples/common/client_cli.hpp, shared with h3upload): 0 success (2xx), 2 usage,
// 3 connection (resolve, refused, timeout, lost), 4 TLS (certificate verification or handshake),
// 5 HTTP (non-2xx status, stream reset, a body not matching its content-length), 6 local I/O (the
// output file or stdout).
#include <h3co/h3co.hpp>

#include "../common/client_cli.hpp"
#include "../common/fd_stream.hpp"
#include "../common/progress.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

namespace {

using asio::experimental::as_tuple;
using namespace examples;  // exit codes, flags, fd_stream, progress_meter

const std::string usage_text = std::string(
    "usage: h3get [-I] [-o FILE] [-H 'name: value']... [--cacert FILE | --insecure]\n"
    "             [--connect-timeout SECONDS] [--session-file FILE] [--quiet] URL\n"
    "\n"
    "GETs URL (https://host[:port]/path) over HTTP/3 and writes the body to stdout, as it arrives.\n"
    "A non-2xx status writes no body and exits with 5 (like curl --fail).\n"
    "\n"
    "  -o, --output FILE      write the body to FILE instead (through a temporary file next to\n"
    "                         it, renamed to FILE once the whole body has arrived)\n"
    "  -I, --head             send HEAD; print the status line and the response fields\n") +
    client_flags_text + "\n" + exit_codes_text;

struct options {
    bool head = false;
    std::string output = "-";  // "-": stdout
    client_flags common;
    h3co::url_parts where;
    std::string url;
};

options parse_args(int argc, char** argv) {
    options opt;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::cout << usage_text;
            std::exit(exit_ok);
        } else if (parse_client_flag(argc, argv, i, opt.common)) {
        } else if (arg == "-I" || arg == "--head") {
            opt.head = true;
        } else if (arg == "-o" || arg == "--output") {
            if (i + 1 >= argc) throw usage_error("missing value for " + arg);
            opt.output = argv[++i];
        } else if (arg.size() > 1 && arg[0] == '-') {
            throw usage_error("unknown option " + arg);
        } else {
            positional.push_back(arg);
        }
    }
    if (positional.size() != 1) throw usage_error("want one URL");
    opt.url = positional[0];
    opt.where = check_client_args(opt.common, opt.url);
    return opt;
}

/// Where the body goes: stdout, or a temporary file next to the -o FILE that commit() renames to
/// FILE. Dropped without commit(), it deletes the temporary file.
class body_sink {
public:
    body_sink(asio::any_io_executor ex, const std::string& path) {
        if (path == "-") {
            out_.emplace(ex, STDOUT_FILENO, false);
            return;
        }
        std::random_device random;
        for (int attempt = 0; attempt < 8 && fd_ < 0; ++attempt) {
            char suffix[32];
            std::snprintf(suffix, sizeof suffix, ".h3get-%08x", static_cast<unsigned>(random()));
            temp_ = path + suffix;
            fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);  // the umask applies
            if (fd_ < 0 && errno != EEXIST) break;
        }
        if (fd_ < 0) {
            const int err = errno;
            temp_.clear();
            throw std::system_error(err, std::generic_category(), "cannot create a file next to " + path);
        }
        path_ = path;
        out_.emplace(ex, fd_, false);
    }
    body_sink(const body_sink&) = delete;
    body_sink& operator=(const body_sink&) = delete;
    ~body_sink() {
        out_.reset();
        if (fd_ >= 0) ::close(fd_);
        if (!temp_.empty()) ::unlink(temp_.c_str());  // not committed: no partial file is left
    }

    fd_stream& stream() { return *out_; }
    /// True when the body would go to a terminal (then no progress line is drawn over it).
    bool is_terminal() const { return ::isatty(out_->native_handle()) == 1; }
    const std::string& name() const { return path_.empty() ? stdout_name : path_; }

    /// The whole body is there: flush the temporary file to disk, close it, rename it to FILE and
    /// flush the directory. Without the first fsync a crash soon after the rename can leave FILE
    /// empty or partial (the rename reaches the disk before the data on ext4, XFS, btrfs).
    std::error_code commit() {
        if (temp_.empty()) return {};
        out_.reset();
        int rc = ::fsync(fd_);
        int err = errno;
        if (::close(fd_) != 0 && rc == 0) {  // close reports a failed delayed write (NFS, a full disk)
            rc = -1;
            err = errno;
        }
        fd_ = -1;
        if (rc != 0) return {err, std::generic_category()};
        if (::rename(temp_.c_str(), path_.c_str()) != 0) return {errno, std::generic_category()};
        temp_.clear();
        return sync_directory();
    }

private:
    /// fsync()s the directory holding FILE, so that the rename itself is durable. Best effort where
    /// it cannot be done: a directory we may write but not read (open fails), a file system that
    /// cannot sync a directory (EINVAL); FILE is complete by then.
    std::error_code sync_directory() const {
        const auto slash = path_.rfind('/');
        const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
        const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return {};
        std::error_code ec;
        if (::fsync(fd) != 0 && errno != EINVAL) ec = {errno, std::generic_category()};
        ::close(fd);
        return ec;
    }

    static inline const std::string stdout_name = "stdout";
    std::optional<fd_stream> out_;
    int fd_ = -1;
    std::string path_;  // FILE (empty: stdout)
    std::string temp_;  // the temporary file while it exists
};

std::optional<std::uint64_t> content_length(const h3co::fields& headers) {
    const auto value = headers.find("content-length");
    if (!value) return std::nullopt;
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
    if (ec != std::errc{} || end != value->data() + value->size()) return std::nullopt;
    return n;
}

/// A refusal's body is usually a short reason ("403 forbidden: ..."): show its start on stderr.
asio::awaitable<void> show_error_body(h3co::request_stream& stream) {
    std::string text;
    std::array<char, 1024> buf;
    while (text.size() < buf.size()) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf.data(), buf.size() - text.size()), as_tuple(asio::use_awaitable));
        text.append(buf.data(), n);
        if (ec) break;
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (!text.empty()) std::cerr << "h3get: " << text << '\n';
}

asio::awaitable<int> get(const options& opt, body_sink& out) {
    auto ex = co_await asio::this_coro::executor;

    std::optional<std::pair<std::error_code, h3co::connection>> connected;
    const auto session = load_session("h3get", opt.common);
    try {
        const h3co::client_tls tls = make_tls(opt.common);  // named: see "Known compiler issue" in the docs
        connected.emplace(co_await connect_within(opt.where, tls, opt.common.connect_timeout, session, true));
    } catch (const std::exception& e) {  // configuration: an unreadable or invalid CA file
        std::cerr << "h3get: TLS configuration: " << e.what() << '\n';
        co_return exit_local_io;
    }
    auto& [cec, conn] = *connected;
    if (cec) {
        std::cerr << "h3get: cannot connect to " << opt.where.host << ':' << opt.where.port << ": " << describe(cec) << '\n';
        co_return classify(cec);
    }

    h3co::request req;
    req.method = opt.head ? "HEAD" : "GET";
    req.url = opt.url;
    req.headers = opt.common.headers;
    h3co::response_head head;
    // A GET sent in a 0-RTT that the server refuses goes again by itself, after the handshake.
    auto [ec, stream] = co_await conn.open_request_stream(as_tuple(asio::use_awaitable));
    if (!ec) std::tie(ec) = co_await stream.send_header(req, as_tuple(asio::use_awaitable));
    if (!ec) std::tie(ec) = co_await stream.finish(as_tuple(asio::use_awaitable));  // no request body
    if (!ec) std::tie(ec, head) = co_await stream.read_response(as_tuple(asio::use_awaitable));
    save_session("h3get", opt.common, session.get());  // the tickets came with the handshake
    if (!opt.common.quiet && session && conn.stats().early_data_offered)
        std::cerr << "h3get: 0-RTT " << (conn.stats().early_data_accepted ? "accepted" : "rejected") << '\n';
    if (ec) {
        std::cerr << "h3get: the request failed: " << describe(ec) << '\n';
        co_return classify(ec);
    }
    const bool success = head.status >= 200 && head.status <= 299;

    if (opt.head) {  // like curl -I: the status line and the fields
        std::string text = "HTTP/3 " + std::to_string(head.status) + "\n";
        for (const auto& f : head.headers) text += f.name + ": " + f.value + "\n";
        text += "\n";
        if (auto wec = co_await out.stream().write(asio::buffer(text)); wec || (wec = out.commit())) {
            std::cerr << "h3get: writing " << out.name() << ": " << wec.message() << '\n';
            co_return exit_local_io;
        }
        conn.close();
        co_return success ? exit_ok : exit_http;
    }
    if (!success) {
        std::cerr << "h3get: the server answered " << head.status << '\n';
        co_await show_error_body(stream);
        conn.close();
        co_return exit_http;
    }

    std::uint64_t received = 0;
    std::optional<progress_meter> meter;
    if (!opt.common.quiet && ::isatty(STDERR_FILENO) && !out.is_terminal())
        meter.emplace(ex, [&received] { return received; }, content_length(head.headers));

    std::vector<char> buf(64 * 1024);
    for (;;) {
        auto [rec, n] = co_await stream.read_some(asio::buffer(buf), as_tuple(asio::use_awaitable));
        if (n > 0) {
            // The next read waits for this write: a slow disk or pipe slows the server down.
            if (auto wec = co_await out.stream().write(asio::buffer(buf.data(), n))) {
                meter.reset();  // ends the progress line
                std::cerr << "h3get: writing " << out.name() << ": " << wec.message() << '\n';
                co_return exit_local_io;  // dropping the stream resets it: the server stops sending
            }
            received += n;
        }
        if (rec == h3co::error::eof) break;
        if (rec) {
            meter.reset();
            std::cerr << "h3get: the body failed after " << received << " bytes: " << describe(rec) << '\n';
            co_return classify(rec);
        }
    }
    if (meter) meter->finish();
    if (auto wec = out.commit()) {
        std::cerr << "h3get: writing " << out.name() << ": " << wec.message() << '\n';
        co_return exit_local_io;
    }
    conn.close();
    co_return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    try {
        opt = parse_args(argc, argv);
    } catch (const usage_error& e) {
        std::cerr << "h3get: " << e.what() << "\n" << usage_text;
        return exit_usage;
    }

    asio::io_context io;
    std::optional<body_sink> out;  // destroyed before io: it deletes an unfinished temporary file
    try {
        out.emplace(io.get_executor(), opt.output);
    } catch (const std::exception& e) {
        std::cerr << "h3get: " << e.what() << '\n';
        return exit_local_io;
    }
    return run_client("h3get", io, get(opt, *out));
}
