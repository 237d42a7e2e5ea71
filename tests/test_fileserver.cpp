// The fileserver example's request handling (examples/fileserver/file_handler.hpp), run in-process
// on an h3co::server: uploads that fail leave nothing behind, GET is paced by the client, and the
// path rules refuse every way out of the root. tests/cmake/fileserver_test.sh covers the same
// server end to end with h3upload and h3get.
#include "support/test_support.hpp"

#include "../examples/common/client_cli.hpp"
#include "../examples/fileserver/file_handler.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/read.hpp>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fileserver_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using asio::experimental::as_tuple;

/// A fresh directory, removed with everything in it at the end.
struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string pattern = (fs::temp_directory_path() / "h3co-fileserver-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = fs::canonical(pattern);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    /// The names in the directory, sorted.
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& entry : fs::directory_iterator(path)) out.push_back(entry.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
};

/// Runs `io` in short slices until `done()` holds; false if it still does not after `limit`.
bool run_until(asio::io_context& io, const std::function<bool()>& done, std::chrono::seconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        io.restart();
        io.run_for(10ms);
    }
    return true;
}

/// A file server on 127.0.0.1 with a fresh root; counts the handlers that have returned.
struct file_server {
    asio::io_context io;
    temp_dir root;
    std::ostringstream log;
    h3co::server server{test::executor(io), test::server_identity()};
    int handlers_done = 0;
    std::uint16_t port = 0;

    file_server() {
        fileserver::file_handler files(root.path.string(), fileserver::resolver::openat2, &log);
        server.handle("/", [files, this](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            struct count_at_end {
                int& n;
                ~count_at_end() { ++n; }
            } counter{handlers_done};
            co_await files(req, res);
        });
        port = server.listen("127.0.0.1", 0).port();
    }
    ~file_server() {
        server.close();
        test::settle(io, 100ms);
    }

    h3co::connection connect() {
        return test::run(io, h3co::connect(test::executor(io), "127.0.0.1", port, test::trusting_test_ca()));
    }
    std::string url(const std::string& path) const { return test::url(port, path, "127.0.0.1"); }
};

/// Sends a request without a body and waits for the response head: one coroutine, as h3get does
/// it, so the FIN leaves with the header. (Separate test::run() calls would let the server answer
/// in between; a finish() called after the server ended the exchange with STOP_SENDING, while more
/// than a stream window of the response is unread, does not complete until the response is read.)
h3co::response_head send_bodyless(asio::io_context& io, h3co::request_stream& stream, const h3co::request& req) {
    auto exchange = [](h3co::request_stream& s, h3co::request r) -> asio::awaitable<h3co::response_head> {
        co_await s.send_header(r);
        co_await s.finish();
        co_return co_await s.read_response();
    };
    return test::run(io, exchange(stream, req));
}

/// Reads a response body to its end: the error that ended it (h3co::error::eof for a complete
/// one) and the number of bytes.
asio::awaitable<std::pair<std::error_code, long long>> read_body(h3co::request_stream& stream) {
    std::vector<char> buf(256 * 1024);
    long long received = 0;
    for (;;) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), as_tuple(asio::use_awaitable));
        received += static_cast<long long>(n);
        if (ec) co_return std::pair<std::error_code, long long>{ec, received};
    }
}

/// The bytes read so far from the file `path` through any descriptor of this process (the server's
/// open file), from /proc/self/fdinfo; nullopt while no descriptor has it open.
std::optional<long long> file_position(const fs::path& path) {
    for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        if (fs::read_symlink(entry.path(), ec) != path || ec) continue;
        std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
        std::string key;
        long long pos = 0;
        while (info >> key)
            if (key == "pos:" && info >> pos) return pos;
    }
    return std::nullopt;
}


TEST_CASE("fileserver: an upload reset mid-body leaves neither the file nor a temporary behind", "[fileserver]") {
    file_server fs_;
    auto conn = fs_.connect();
    auto stream = test::run(fs_.io, conn.open_request_stream());
    const h3co::request req{.method = "PUT", .url = fs_.url("/upload.bin"), .headers = {{"content-length", "4194304"}}};
    test::run(fs_.io, stream.send_header(req));
    const std::vector<char> chunk(256 * 1024, 'x');
    test::run(fs_.io, stream.write(asio::buffer(chunk)));

    // The handler is inside the body: its temporary file exists and has bytes.
    REQUIRE(run_until(fs_.io, [&] {
        const auto names = fs_.root.names();
        return names.size() == 1 && names[0].rfind(".upload.bin.upload-", 0) == 0 && fs::file_size(fs_.root.path / names[0]) > 0;
    }));
    CHECK(fs_.handlers_done == 0);

    stream.reset();
    REQUIRE(run_until(fs_.io, [&] { return fs_.handlers_done == 1; }));
    CHECK(fs_.root.names().empty());
    CHECK(fs_.log.str() == "PUT /upload.bin (ended early)\n");
}

TEST_CASE("fileserver: a body shorter than its content-length leaves nothing behind", "[fileserver]") {
    file_server fs_;
    auto conn = fs_.connect();
    auto stream = test::run(fs_.io, conn.open_request_stream());
    const h3co::request req{.method = "PUT", .url = fs_.url("/short.bin"), .headers = {{"content-length", "100"}}};
    test::run(fs_.io, stream.send_header(req));
    const std::string half(50, 'y');
    test::run(fs_.io, stream.write(asio::buffer(half)));
    auto [ec] = test::run(fs_.io, stream.finish(as_tuple(asio::use_awaitable)));
    (void)ec;  // either way: the server resets the stream (H3_MESSAGE_ERROR)

    REQUIRE(run_until(fs_.io, [&] { return fs_.handlers_done == 1; }));
    CHECK(fs_.root.names().empty());
}

TEST_CASE("fileserver: a complete PUT is renamed into place and GET returns it", "[fileserver]") {
    file_server fs_;
    auto conn = fs_.connect();
    std::string body(300 * 1024 + 7, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 31 % 251);

    auto put = test::run(fs_.io, conn.open_request_stream());
    const h3co::request put_req{.method = "PUT", .url = fs_.url("/data.bin"), .headers = {}};
    test::run(fs_.io, put.send_header(put_req));
    test::run(fs_.io, put.write(asio::buffer(body)));
    test::run(fs_.io, put.finish());
    CHECK(test::run(fs_.io, put.read_response()).status == 201);
    CHECK(fs_.root.names() == std::vector<std::string>{"data.bin"});

    auto get = test::run(fs_.io, conn.open_request_stream());
    const h3co::request get_req{.method = "GET", .url = fs_.url("/data.bin"), .headers = {}};
    const auto head = send_bodyless(fs_.io, get, get_req);
    CHECK(head.status == 200);
    CHECK(head.headers.find("content-length") == std::to_string(body.size()));
    CHECK(head.headers.find("content-type") == "application/octet-stream");
    std::string got(body.size() + 1, '\0');
    const auto [rec, n] = test::run(fs_.io, asio::async_read(get, asio::buffer(got), as_tuple(asio::use_awaitable)));
    CHECK(rec == h3co::error::eof);
    got.resize(n);
    CHECK(got == body);
}

TEST_CASE("fileserver: GET reads the file only as fast as the client takes it", "[fileserver]") {
    file_server fs_;
    const auto file = fs_.root.path / "big.bin";
    constexpr long long size = 64ll << 20;
    std::ofstream(file).close();
    fs::resize_file(file, size);  // sparse

    auto conn = fs_.connect();
    auto get = test::run(fs_.io, conn.open_request_stream());
    const h3co::request req{.method = "GET", .url = fs_.url("/big.bin"), .headers = {}};
    CHECK(send_bodyless(fs_.io, get, req).status == 200);

    // The client reads nothing: the server fills the stream's windows and send buffer (a few
    // hundred KiB), then its write() waits, and so does its reading of the file.
    REQUIRE(run_until(fs_.io, [&] { return file_position(file).value_or(0) > 0; }));
    test::settle(fs_.io, 500ms);  // an observation window: the position must not run on meanwhile
    const auto stalled_at = file_position(file);
    REQUIRE(stalled_at);
    CHECK(*stalled_at < (2ll << 20));

    // Reading resumes it, to the end.
    const auto [ec, received] = test::run(fs_.io, read_body(get));
    CHECK(ec == h3co::error::eof);
    CHECK(received == size);
}

TEST_CASE("fileserver: a file that shrinks while it is sent resets the stream, never ends it short", "[fileserver]") {
    file_server fs_;
    const auto file = fs_.root.path / "shrinking.bin";
    std::ofstream(file).close();
    fs::resize_file(file, 64ll << 20);

    auto conn = fs_.connect();
    auto get = test::run(fs_.io, conn.open_request_stream());
    const h3co::request req{.method = "GET", .url = fs_.url("/shrinking.bin"), .headers = {}};
    CHECK(send_bodyless(fs_.io, get, req).status == 200);
    REQUIRE(run_until(fs_.io, [&] { return file_position(file).value_or(0) > 0; }));  // held by flow control
    fs::resize_file(file, 1 << 20);

    const auto [ec, received] = test::run(fs_.io, read_body(get));
    CHECK(ec == h3co::h3_error::internal_error);  // the handler threw after its header: a reset
    CHECK(received <= (1 << 20));
    REQUIRE(run_until(fs_.io, [&] { return fs_.handlers_done == 1; }));
}

TEST_CASE("fileserver: check_path refuses every way up and decodes the rest", "[fileserver]") {
    using fileserver::check_path;
    struct refused {
        const char* path;
        const char* why;
    };
    for (const refused& r : {
             refused{"/../x", "'..'"},
             refused{"/%2e%2e/x", "'..'"},
             refused{"/%2E%2e/x", "'..'"},
             refused{"/..%2fx", "'..'"},
             refused{"/a/..%2F..%2Fx", "'..'"},
             refused{"/a/../../x", "'..'"},
             refused{"/./x", "'.'"},
             refused{"//etc/passwd", "empty path segment"},
             refused{"/%2fetc/passwd", "empty path segment"},
             refused{"/a//b", "empty path segment"},
             refused{"/dir/", "empty path segment"},
             refused{"/%00", "NUL"},
             refused{"/a%00.txt", "NUL"},
             refused{"/%2", "percent-encoding"},
             refused{"/%zz", "percent-encoding"},
             refused{"relative", "must start with '/'"},
             refused{"", "must start with '/'"},
         }) {
        INFO(r.path);
        const auto checked = check_path(r.path);
        CHECK(checked.status == 400);
        CHECK(checked.reason.find(r.why) != std::string::npos);
    }
    CHECK(check_path("/").relative == ".");
    CHECK(check_path("/a%20b.txt?x=1").relative == "a b.txt");
    CHECK(check_path("/dir/a../b..").relative == "dir/a../b..");
    CHECK(check_path("/a%2fb").relative == "a/b");  // %2f is a separator like any '/'
    CHECK(check_path("/a.txt?/../x").relative == "a.txt");  // the query is not part of the path
}

TEST_CASE("fileserver: open_beneath never leaves the root, with openat2 and with the fallback walk", "[fileserver]") {
    using fileserver::open_beneath;
    using fileserver::resolver;
    temp_dir base;
    const auto root = base.path / "root";
    fs::create_directories(root / "sub");
    fs::create_directories(base.path / "outside");
    std::ofstream(root / "sub" / "file.txt") << "inside";
    std::ofstream(base.path / "outside" / "secret.txt") << "secret";
    fs::create_symlink("sub/file.txt", root / "in-link");
    fs::create_symlink("sub", root / "sub-link");
    fs::create_symlink("../outside/secret.txt", root / "out-link");
    fs::create_symlink(base.path / "outside" / "secret.txt", root / "abs-link");
    fs::create_symlink("../outside", root / "out-dir");
    fs::create_symlink("sub/../../outside/secret.txt", root / "sneaky-link");
    fileserver::unique_fd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(root_fd);

    // status: what the file server would answer (0: it opens).
    auto status = [&](const std::string& path, resolver how) {
        const int fd = open_beneath(root_fd.get(), path, O_RDONLY, 0, how);
        if (fd >= 0) ::close(fd);
        return fd >= 0 ? 0 : fileserver::status_for_errno(-fd);
    };
    for (resolver how : {resolver::openat2, resolver::nofollow_walk}) {
        INFO((how == resolver::openat2 ? "openat2" : "nofollow_walk"));
        CHECK(status("sub/file.txt", how) == 0);
        CHECK(status(".", how) == 0);
        CHECK(status("missing.txt", how) == 404);
        CHECK(status("sub/missing/x", how) == 404);
        CHECK(status("out-link", how) == 403);
        CHECK(status("abs-link", how) == 403);
        CHECK(status("out-dir/secret.txt", how) == 403);
        CHECK(status("sneaky-link", how) == 403);
    }
    // Symlinks that stay inside: openat2 follows them, the fallback follows none.
    CHECK(status("in-link", resolver::openat2) == 0);
    CHECK(status("sub-link/file.txt", resolver::openat2) == 0);
    CHECK(status("in-link", resolver::nofollow_walk) == 403);
    CHECK(status("sub-link/file.txt", resolver::nofollow_walk) == 403);
}

/// The contents of the file `path`.
std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_CASE("fileserver: check_path refuses hidden segments with 404", "[fileserver][dotfiles]") {
    using fileserver::check_path;
    for (const char* path : {"/.htpasswd", "/.git/config", "/dir/.hidden", "/dir/.hidden/x", "/%2ehidden",
                             "/.data.bin.upload-0123abcd", "/dir/..a/b"}) {
        INFO(path);
        const auto checked = check_path(path);
        CHECK(checked.status == 404);
        CHECK(checked.relative.empty());
    }
    CHECK(check_path("/a.b/c.d").relative == "a.b/c.d");
}

TEST_CASE("fileserver: dotfiles and uploads in progress are neither served nor overwritten", "[fileserver][dotfiles]") {
    file_server fs_;
    const std::string secret = "user:$apr1$hash\n";
    std::ofstream(fs_.root.path / ".htpasswd") << secret;
    fs::create_directory(fs_.root.path / ".git");
    std::ofstream(fs_.root.path / ".git" / "config") << secret;
    auto conn = fs_.connect();

    // An upload in progress: its temporary file exists while the body comes.
    auto put = test::run(fs_.io, conn.open_request_stream());
    const h3co::request put_req{.method = "PUT", .url = fs_.url("/data.bin"), .headers = {}};
    test::run(fs_.io, put.send_header(put_req));
    const std::string part(1000, 'p');
    test::run(fs_.io, put.write(asio::buffer(part)));
    std::string temp;
    REQUIRE(run_until(fs_.io, [&] {
        for (const auto& name : fs_.root.names())
            if (name.rfind(".data.bin.upload-", 0) == 0 && fs::file_size(fs_.root.path / name) == part.size()) temp = name;
        return !temp.empty();
    }));

    for (const std::string& path : {std::string("/.htpasswd"), std::string("/.git/config"), "/" + temp}) {
        INFO("GET " << path);
        auto get = test::run(fs_.io, conn.open_request_stream());
        const h3co::request req{.method = "GET", .url = fs_.url(path), .headers = {}};
        CHECK(send_bodyless(fs_.io, get, req).status == 404);
        const auto [ec, body] = test::run(fs_.io, [&]() -> asio::awaitable<std::pair<std::error_code, std::string>> {
            std::string all;
            std::vector<char> buf(4096);
            for (;;) {
                auto [rec, n] = co_await get.read_some(asio::buffer(buf), as_tuple(asio::use_awaitable));
                all.append(buf.data(), n);
                if (rec) co_return std::pair{rec, all};
            }
        }());
        CHECK(body.find(secret) == std::string::npos);
        CHECK(body.find(part) == std::string::npos);
    }
    for (const std::string& path : {std::string("/.htpasswd"), "/" + temp}) {
        INFO("PUT " << path);
        auto over = test::run(fs_.io, conn.open_request_stream());
        const h3co::request req{.method = "PUT", .url = fs_.url(path), .headers = {}};
        const auto status = test::run(fs_.io, [&]() -> asio::awaitable<int> {
            co_await over.send_header(req);
            const std::string junk = "overwritten";
            // A refusal may stop the body first (STOP_SENDING): the write and finish may fail.
            co_await over.write(asio::buffer(junk), as_tuple(asio::use_awaitable));
            co_await over.finish(as_tuple(asio::use_awaitable));
            co_return (co_await over.read_response()).status;
        }());
        CHECK(status == 404);
    }
    CHECK(slurp(fs_.root.path / ".htpasswd") == secret);
    CHECK(fs::file_size(fs_.root.path / temp) == part.size());

    // The upload goes on and lands under its own name.
    test::run(fs_.io, put.finish());
    CHECK(test::run(fs_.io, put.read_response()).status == 201);
    CHECK(slurp(fs_.root.path / "data.bin") == part);
}

TEST_CASE("h3get and h3upload: a response that does not match its content-length exits with 5 (HTTP)",
          "[fileserver][cli-exit]") {
    asio::io_context io;
    h3co::server server{test::executor(io), test::server_identity()};
    server.handle("/short", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        const h3co::fields headers{{"content-length", "100"}};
        co_await res.send_header(200, headers);
        co_await res.write(asio::buffer(std::string_view("only ten b")));
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    auto conn = test::run(io, h3co::connect(test::executor(io), "127.0.0.1", port, test::trusting_test_ca()));
    auto get = test::run(io, conn.open_request_stream());
    const h3co::request req{.method = "GET", .url = test::url(port, "/short", "127.0.0.1"), .headers = {}};
    CHECK(send_bodyless(io, get, req).status == 200);
    const auto [ec, received] = test::run(io, read_body(get));
    REQUIRE(ec == h3co::error::content_length_mismatch);  // what h3get's read loop gets
    CHECK(received <= 10);
    CHECK(examples::classify(ec) == examples::exit_http);
    server.close();
    test::settle(io, 100ms);
}

}  // namespace fileserver_test
