// h3upload: `curl -T` for HTTP/3. Streams a file or stdin as a request body, prints the response.
//
//   h3upload [-X POST|PUT] [-H 'name: value']... [--cacert FILE | --insecure]
//            [--connect-timeout SECONDS] [--session-file FILE [--early-data]] [--quiet] FILE|- URL
//
// The body is read in chunks on the executor while it is sent (never loaded whole): a regular file
// with read(), which does not block; stdin or a pipe through asio::posix::stream_descriptor
// (examples/common/fd_stream.hpp). The writer waits on the stream's flow control, so the source is
// read no faster than the server takes it. The response status ("HTTP/3 200") and body go to stdout.
// When stderr is a terminal a progress line shows bytes sent, rate and, when the size is known,
// percentage and ETA.
// With --session-file, TLS tickets and the server's transport parameters are kept in FILE (a
// later run resumes); with --early-data as well, the request and the start of its body go in
// 0-RTT when the ticket allows it. Early data can be replayed by an attacker: use it only for
// uploads that are safe to repeat. A server that will not take it early answers 425 Too Early
// (exit 5: the body, possibly stdin, is not sent twice), or rejects the 0-RTT (exit 3).
//
// Exit codes (examples/common/client_cli.hpp, shared with h3get): 0 success (2xx), 2 usage,
// 3 connection (resolve, refused, timeout, lost), 4 TLS (certificate verification or handshake),
// 5 HTTP (non-2xx status, stream reset, or a 2xx answer that stopped the upload part-way), 6 local
// I/O (the file, stdin or stdout).
#include <h3co/h3co.hpp>

#include "../common/client_cli.hpp"
#include "../common/fd_stream.hpp"
#include "../common/progress.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

using asio::experimental::as_tuple;
using namespace examples;  // exit codes, flags, fd_stream, progress_meter

const std::string usage_text = std::string(
    "usage: h3upload [-X POST|PUT] [-H 'name: value']... [--cacert FILE | --insecure]\n"
    "                [--connect-timeout SECONDS] [--session-file FILE [--early-data]] [--quiet]\n"
    "                FILE|- URL\n"
    "\n"
    "Uploads FILE (or stdin for '-') as the streamed body of an HTTP/3 request to URL\n"
    "(https://host[:port]/path) and prints the response status and body to stdout.\n"
    "\n"
    "  -X METHOD              POST or PUT (default PUT, like curl -T)\n"
    "  --early-data           with --session-file: send in 0-RTT when the ticket allows it (only\n"
    "                         for uploads safe to replay: early data can be replayed)\n") +
    client_flags_text + "\n" + exit_codes_text;

struct options {
    std::string method = "PUT";
    client_flags common;
    h3co::url_parts where;
    std::string source;  // a path, or "-" for stdin
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
        } else if (arg == "-X" || arg == "--request") {
            if (i + 1 >= argc) throw usage_error("missing value for " + arg);
            opt.method = argv[++i];
            if (opt.method != "POST" && opt.method != "PUT") throw usage_error("-X takes POST or PUT, not " + opt.method);
        } else if (arg == "--early-data") {
            opt.common.early_data = true;
        } else if (arg.size() > 1 && arg[0] == '-' && arg != "-") {
            throw usage_error("unknown option " + arg);
        } else {
            positional.push_back(arg);
        }
    }
    if (positional.size() != 2) throw usage_error("want FILE|- and URL");
    if (opt.common.early_data && opt.common.session_file.empty()) throw usage_error("--early-data needs --session-file");
    opt.source = positional[0];
    opt.url = positional[1];
    opt.where = check_client_args(opt.common, opt.url);
    return opt;
}

/// What the sender and the receiver share (one thread: no locks).
struct transfer {
    bool send_done = false;            // the whole body was sent and acknowledged
    std::error_code send_error;        // the stream failed while sending
    std::error_code local_error;       // reading the body or writing stdout failed
    std::error_code response_error;    // the stream failed while receiving
    int status = 0;
    progress_meter* meter = nullptr;   // set while a progress line is shown
};

/// Copies the body source into the stream, then ends it (FIN) and waits for the peer's ACK.
asio::awaitable<void> send_body(h3co::http_stream stream, fd_stream& body, transfer& t) {
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
    // A server that refused the request has no use for the rest of the body: stop sending it.
    if ((head.status < 200 || head.status > 299 || t.local_error) && !t.send_done && !t.send_error) stream.reset();
}

asio::awaitable<int> upload(const options& opt, fd_stream& body) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;

    std::optional<std::pair<std::error_code, h3co::connection>> connected;
    const auto session = load_session("h3upload", opt.common);
    try {
        const h3co::client_tls tls = make_tls(opt.common);  // named: see "Known compiler issue" in the docs
        connected.emplace(
            co_await connect_within(opt.where, tls, opt.common.connect_timeout, session, opt.common.early_data));
    } catch (const std::exception& e) {  // configuration: an unreadable or invalid CA file
        std::cerr << "h3upload: TLS configuration: " << e.what() << '\n';
        co_return exit_local_io;
    }
    auto& [cec, conn] = *connected;
    if (cec) {
        std::cerr << "h3upload: cannot connect to " << opt.where.host << ':' << opt.where.port << ": " << describe(cec) << '\n';
        co_return classify(cec);
    }

    auto [oec, stream] = co_await conn.open_request_stream(as_tuple(asio::use_awaitable));
    if (oec) {
        std::cerr << "h3upload: cannot open a request stream: " << describe(oec) << '\n';
        co_return classify(oec);
    }

    h3co::request req;
    req.method = opt.method;
    req.url = opt.url;
    req.headers = opt.common.headers;
    req.early_data = opt.common.early_data;  // PUT and POST go early only when asked to
    const auto total = body.size_left();
    if (total && !req.headers.find("content-length"))
        req.headers.push_back(h3co::field{"content-length", std::to_string(*total)});
    auto [hec] = co_await stream.send_header(req, as_tuple(asio::use_awaitable));
    if (hec) {
        std::cerr << "h3upload: cannot send the request: " << describe(hec) << '\n';
        co_return classify(hec);
    }

    transfer t;
    std::optional<progress_meter> meter;
    if (!opt.common.quiet && ::isatty(STDERR_FILENO)) {
        meter.emplace(ex, [&stream] { return stream.bytes_sent(); }, total);
        t.meter = &*meter;
    }

    // Full duplex: the response may come while the body is still going out (a refusal does).
    auto sender = send_body(stream.share(), body, t);
    auto receiver = receive_response(stream, t);
    co_await (std::move(sender) && std::move(receiver));

    const auto sent = stream.bytes_sent();
    if (meter) meter->finish();
    save_session("h3upload", opt.common, session.get());
    if (!opt.common.quiet && session && conn.stats().early_data_offered)
        std::cerr << "h3upload: 0-RTT " << (conn.stats().early_data_accepted ? "accepted" : "rejected") << '\n';
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
        // RFC 9114 §4.1: a server may answer in full and stop reading the rest (STOP_SENDING with
        // H3_NO_ERROR). Its answer is complete, but the upload is not: not a success.
        std::cerr << "h3upload: the server answered " << t.status << " but stopped the upload after " << sent
                  << " bytes (" << describe(t.send_error) << "): the body was not all taken\n";
        co_return classify(t.send_error);  // stream_stopped: exit_http
    }
    co_return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    try {
        opt = parse_args(argc, argv);
    } catch (const usage_error& e) {
        std::cerr << "h3upload: " << e.what() << "\n" << usage_text;
        return exit_usage;
    }

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
    std::optional<fd_stream> body;  // destroyed before io: it restores stdin's flags
    try {
        body.emplace(io.get_executor(), fd, !from_stdin);
    } catch (const std::exception& e) {
        std::cerr << "h3upload: " << e.what() << '\n';
        if (!from_stdin) ::close(fd);
        return exit_local_io;
    }
    return run_client("h3upload", io, upload(opt, *body));
}
