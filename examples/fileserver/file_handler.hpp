// The file server's request handler: GET and HEAD of files under a root directory, PUT and POST of
// files into it, each streamed in chunks (never held whole). Usable on any h3co::server:
//
//   server.handle("/", fileserver::file_handler("/srv/files"));
//
// - GET / HEAD: 200 with content-length and content-type (from the extension); the file is read in
//   64 KiB chunks, each written with co_await res.write(), which waits while the client's flow
//   control window is full: a slow client slows the reading of the file down (backpressure).
// - PUT / POST: the body is written, as it arrives, to a temporary file in the target's directory
//   (created with O_EXCL), renamed over the target once the body is complete (201 Created, or 200
//   when it replaced a file), and deleted if the body fails: a reset, a content-length mismatch, a
//   full disk. A reader never sees a half-uploaded file under the target's name.
// - 404 for a missing file, 403 for what is not a regular file, 405 for other methods.
// - Paths (safe_path.hpp): %XX is decoded first, then "." / ".." / empty segments and NUL are
//   refused with 400, a segment starting with '.' (dotfiles, uploads in progress) with 404; the
//   file is opened with openat2(RESOLVE_BENEATH) relative to the root, so a symlink leading
//   outside gets 403.
//
// Reading and writing a regular file with read(2) / write(2) blocks the thread for as long as the
// disk takes; that is fine for an example, and for local disks. Asio 1.22's own file support
// (asio::stream_file) needs io_uring (liburing and ASIO_HAS_IO_URING), which is off by default.
#pragma once

#include <h3co/h3co.hpp>

#include "safe_path.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace fileserver {

using asio::experimental::as_tuple;

/// The content-type for a file name, from its extension (application/octet-stream if unknown).
inline std::string content_type(std::string_view name) {
    static constexpr std::pair<std::string_view, std::string_view> types[] = {
        {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"}, {".md", "text/markdown; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".csv", "text/csv; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},         {".xml", "application/xml"},
        {".pdf", "application/pdf"},           {".wasm", "application/wasm"},
        {".zip", "application/zip"},           {".gz", "application/gzip"},
        {".tar", "application/x-tar"},         {".svg", "image/svg+xml"},
        {".png", "image/png"},                 {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},               {".gif", "image/gif"},
        {".webp", "image/webp"},               {".ico", "image/vnd.microsoft.icon"},
        {".mp4", "video/mp4"},                 {".webm", "video/webm"},
        {".mp3", "audio/mpeg"},                {".ogg", "audio/ogg"},
    };
    const auto slash = name.rfind('/');
    const auto base = slash == std::string_view::npos ? name : name.substr(slash + 1);
    const auto dot = base.rfind('.');
    if (dot != std::string_view::npos && dot > 0) {
        std::string ext(base.substr(dot));
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        for (const auto& [suffix, type] : types)
            if (ext == suffix) return std::string(type);
    }
    return "application/octet-stream";
}

/// An upload's temporary file, ".NAME.upload-XXXXXXXX" in the target's directory, created with
/// O_EXCL (never an existing file, nor through a symlink). Deleted when dropped, unless kept.
class temp_file {
public:
    temp_file(int dir, const std::string& target_name) : dir_(dir) {
        std::random_device random;
        for (int attempt = 0; attempt < 8; ++attempt) {
            char suffix[32];
            std::snprintf(suffix, sizeof suffix, ".upload-%08x", static_cast<unsigned>(random()));
            name_ = "." + target_name + suffix;
            fd_ = unique_fd(::openat(dir_, name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
            if (fd_ || errno != EEXIST) break;
        }
        if (!fd_) name_.clear();
    }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    ~temp_file() {
        fd_.reset();
        if (!name_.empty() && !kept_) ::unlinkat(dir_, name_.c_str(), 0);
    }

    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
    int fd() const noexcept { return fd_.get(); }
    const std::string& name() const noexcept { return name_; }
    /// It was renamed to the target: do not delete it.
    void keep() noexcept { kept_ = true; }

private:
    int dir_;
    std::string name_;
    unique_fd fd_;
    bool kept_ = false;
};

/// The handler: serves the directory `root` to GET / HEAD and stores PUT / POST bodies in it.
/// Copies share the root. `log`, if given, gets a line per request.
class file_handler {
public:
    /// Opens `root` (throws std::system_error if it is not a readable directory).
    explicit file_handler(const std::string& root, resolver how = resolver::openat2, std::ostream* log = nullptr)
        : state_(std::make_shared<const state>(open_root(root), how, log)) {}

    asio::awaitable<void> operator()(h3co::server_request& req, h3co::response& res) const {
        return serve(state_, req, res);  // the coroutine holds the state, not this handler object
    }

private:
    struct state {
        state(unique_fd r, resolver h, std::ostream* l) : root(std::move(r)), how(h), log(l) {}
        unique_fd root;
        resolver how;
        std::ostream* log;
    };

    static unique_fd open_root(const std::string& root) {
        unique_fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!fd) throw std::system_error(errno, std::generic_category(), "cannot open the root directory " + root);
        return fd;
    }

    static asio::awaitable<void> serve(std::shared_ptr<const state> st, h3co::server_request& req, h3co::response& res) {
        const checked_path path = check_path(req.path());
        const std::string& method = req.method();
        int status = 0;  // 0: no response, the request ended early (a reset, a failed upload body)
        if (path.status)
            status = co_await refuse(res, path.status, path.reason);
        else if (method == "GET" || method == "HEAD")
            status = co_await get(*st, path.relative, method == "HEAD", res);
        else if (method == "PUT" || method == "POST")
            status = co_await put(*st, path.relative, req, res);
        else
            status = co_await refuse(res, 405, "use GET, HEAD, PUT or POST");
        if (st->log)
            *st->log << method << ' ' << req.path() << ' ' << (status ? std::to_string(status) : "(ended early)") << std::endl;
    }

    // Strings reach these coroutines as string_views or named values, never as std::string
    // temporaries inside the co_await expression (g++ 12 miscompiles those: docs/getting-started.md).

    /// Answers `status` with a one-line text body saying why.
    static asio::awaitable<int> refuse(h3co::response& res, int status, std::string_view why) {
        const h3co::fields headers{{"content-type", "text/plain; charset=utf-8"}};
        const std::string body = std::to_string(status) + " " + reason_phrase(status) + ": " + std::string(why) + "\n";
        auto [ec] = co_await res.send_header(status, headers, as_tuple(asio::use_awaitable));
        if (!ec) co_await res.write(asio::buffer(body), as_tuple(asio::use_awaitable));
        co_return status;
    }

    /// Answers for a failed system call: status_for_errno(err), or `status` if given.
    static asio::awaitable<int> refuse_errno(h3co::response& res, int err, std::string_view doing = {}, int status = 0) {
        std::string why = std::string(doing) + std::strerror(err);
        if (err == EXDEV || err == ELOOP) why = "the path leads outside the root (or through a symlink not followed)";
        co_return co_await refuse(res, status ? status : status_for_errno(err), why);
    }

    static asio::awaitable<int> get(const state& st, const std::string& relative, bool head_only, h3co::response& res) {
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below anyway).
        const int fd = open_beneath(st.root.get(), relative, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, st.how);
        if (fd < 0) co_return co_await refuse_errno(res, -fd);
        unique_fd file(fd);
        struct stat info {};
        if (::fstat(file.get(), &info) != 0) co_return co_await refuse_errno(res, errno);
        if (!S_ISREG(info.st_mode)) co_return co_await refuse(res, 403, "not a regular file");

        const auto size = static_cast<std::uint64_t>(info.st_size);
        const h3co::fields headers{{"content-length", std::to_string(size)}, {"content-type", content_type(relative)}};
        auto [ec] = co_await res.send_header(200, headers, as_tuple(asio::use_awaitable));
        if (ec) co_return 0;
        if (head_only) co_return 200;

        std::vector<char> buf(64 * 1024);
        for (std::uint64_t left = size; left > 0;) {
            const ssize_t n = ::read(file.get(), buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), left)));
            if (n < 0 && errno == EINTR) continue;
            // Shorter than its content-length (truncated meanwhile, or an I/O error): throwing makes
            // h3co reset the stream, so the client cannot take what it got for the whole file.
            if (n <= 0) throw std::runtime_error("the file ended before its size: " + relative);
            const auto chunk = asio::buffer(buf.data(), static_cast<std::size_t>(n));
            auto [wec, written] = co_await res.write(chunk, as_tuple(asio::use_awaitable));
            if (wec) co_return 200;  // the client went away or stopped reading
            left -= written;
        }
        co_return 200;
    }

    static asio::awaitable<int> put(const state& st, const std::string& relative, h3co::server_request& req, h3co::response& res) {
        if (relative == ".") co_return co_await refuse(res, 403, "not a regular file");
        const auto slash = relative.rfind('/');
        const std::string parent = slash == std::string::npos ? "." : relative.substr(0, slash);
        const std::string name = relative.substr(slash + 1);  // npos + 1 == 0
        const int dir_fd = open_beneath(st.root.get(), parent, O_RDONLY | O_DIRECTORY, 0, st.how);
        if (dir_fd < 0) co_return co_await refuse_errno(res, -dir_fd);
        unique_fd dir(dir_fd);
        // Only regular files are replaced (not a directory, nor a symlink, even one inside the root).
        struct stat info {};
        const bool exists = ::fstatat(dir.get(), name.c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0;
        if (exists && !S_ISREG(info.st_mode)) co_return co_await refuse(res, 403, "not a regular file");

        temp_file temp(dir.get(), name);
        if (!temp) co_return co_await refuse_errno(res, errno, "cannot create a temporary file: ", 500);
        std::vector<char> buf(64 * 1024);
        std::uint64_t stored = 0;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), as_tuple(asio::use_awaitable));
            if (n > 0) {
                if (!write_all(temp.fd(), buf.data(), n))
                    co_return co_await refuse_errno(res, errno, "writing: ", errno == ENOSPC ? 507 : 500);
                stored += n;
            }
            if (ec == h3co::error::eof) break;
            // A reset, a body over max_request_body (h3co answers 413), a content-length mismatch:
            // returning drops `temp`, which deletes the partial file.
            if (ec) co_return 0;
        }
        // Add fsync(temp.fd()) here if a completed upload must survive a power cut.
        if (::renameat(dir.get(), temp.name().c_str(), dir.get(), name.c_str()) != 0)
            co_return co_await refuse_errno(res, errno, "cannot rename the upload: ", 500);
        temp.keep();

        const int status = exists ? 200 : 201;
        const h3co::fields headers{{"content-type", "text/plain; charset=utf-8"}};
        const std::string body = "stored " + std::to_string(stored) + " bytes\n";
        if (auto [ec] = co_await res.send_header(status, headers, as_tuple(asio::use_awaitable)); !ec)
            co_await res.write(asio::buffer(body), as_tuple(asio::use_awaitable));
        co_return status;
    }

    static bool write_all(int fd, const char* data, std::size_t n) {
        while (n > 0) {
            const ssize_t w = ::write(fd, data, n);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return false;
            data += w;
            n -= static_cast<std::size_t>(w);
        }
        return true;
    }

    static const char* reason_phrase(int status) {
        switch (status) {
        case 400: return "bad request";
        case 403: return "forbidden";
        case 404: return "not found";
        case 405: return "method not allowed";
        case 414: return "URI too long";
        case 507: return "insufficient storage";
        default: return "error";
        }
    }

    std::shared_ptr<const state> state_;
};

}  // namespace fileserver
