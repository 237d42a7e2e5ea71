// The file server's path rules: which request paths name a file under the root, and how to open
// one so that nothing (a "..", a symlink, a rename racing with us) can lead outside the root.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>  // struct open_how, RESOLVE_BENEATH (Linux 5.6)
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace fileserver {

/// A file descriptor that closes itself.
class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

/// A request path, decoded and checked: the file's path relative to the root, or why it is refused.
struct checked_path {
    std::string relative;  ///< "dir/a b.txt"; "." for the root itself
    int status = 0;        ///< 0: acceptable; else the status to refuse it with (400)
    std::string reason;    ///< why it was refused
};

/// Checks a request's :path ("/dir/a%20b.txt?x=1") before it touches the file system:
///  - the query is dropped, then %XX escapes are decoded (a malformed escape is refused);
///  - refused (400): a path not starting with '/', a NUL byte, and, after decoding, any "." or
///    ".." segment or empty segment. Decoding comes first, so "%2e%2e" and "..%2f" are caught, and
///    an empty segment catches "//etc/passwd" (an absolute path after the first slash) and "a//b".
///  - refused (404, as if absent): any other segment starting with '.' ("/.git/config", ".htpasswd",
///    an upload's temporary ".NAME.upload-*"): hidden files are neither served nor written, so an
///    upload in progress is never read half-written nor overwritten by another request.
/// What remains is relative and has no way up; symlinks are the file system's part (open_beneath).
inline checked_path check_path(std::string_view target) {
    auto refuse = [](std::string why) { return checked_path{{}, 400, std::move(why)}; };
    const std::string_view path = target.substr(0, target.find('?'));
    if (path.empty() || path.front() != '/') return refuse("the path must start with '/'");
    std::string decoded;
    for (std::size_t i = 1; i < path.size(); ++i) {
        char c = path[i];
        if (c == '%') {
            auto hex = [](char h) {
                if (h >= '0' && h <= '9') return h - '0';
                if (h >= 'a' && h <= 'f') return h - 'a' + 10;
                if (h >= 'A' && h <= 'F') return h - 'A' + 10;
                return -1;
            };
            const int hi = i + 2 < path.size() ? hex(path[i + 1]) : -1;
            const int lo = i + 2 < path.size() ? hex(path[i + 2]) : -1;
            if (hi < 0 || lo < 0) return refuse("bad percent-encoding");
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0') return refuse("NUL in the path");
        decoded += c;
    }
    if (decoded.empty()) return checked_path{".", 0, {}};  // "/": the root directory
    for (std::size_t start = 0;;) {
        const auto end = decoded.find('/', start);
        const std::string_view segment = std::string_view(decoded).substr(start, end == std::string::npos ? end : end - start);
        if (segment.empty()) return refuse("empty path segment (an absolute path, or '//')");
        if (segment == "." || segment == "..") return refuse("'" + std::string(segment) + "' in the path");
        if (segment.front() == '.') return checked_path{{}, 404, "hidden files are not served"};
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return checked_path{std::move(decoded), 0, {}};
}

/// How open_beneath() keeps to the root.
enum class resolver {
    /// openat2(2) with RESOLVE_BENEATH (Linux 5.6+): the kernel resolves the whole path, symlinks
    /// included, and fails with EXDEV at any step that would leave the root; this also refuses
    /// absolute symlinks, even ones pointing inside. Falls back to nofollow_walk where openat2 is
    /// missing (ENOSYS) or filtered (EPERM, older container seccomp profiles).
    openat2,
    /// One openat(2) per component with O_NOFOLLOW: no symlink is followed at all (ELOOP), even
    /// one that stays inside the root.
    nofollow_walk,
};

/// Opens `relative` (from check_path(): no "..", not absolute) under the directory `root_fd`;
/// `flags` as for open(2). Returns the file descriptor, or -errno: EXDEV or ELOOP when the path
/// would leave the root through a symlink (or, for nofollow_walk, uses one).
///
/// There is no check-then-open window: every component is resolved by the same call (openat2) or
/// by openat() on the directory the previous step opened, so swapping a directory for a symlink
/// while we look does not lead outside the root (a realpath() + prefix check would have that race).
inline int open_beneath(int root_fd, const std::string& relative, int flags, mode_t mode = 0,
                        resolver how = resolver::openat2) {
    flags |= O_CLOEXEC;
    if (how == resolver::openat2) {
        open_how request{};
        request.flags = static_cast<std::uint64_t>(flags);
        request.mode = (flags & O_CREAT) ? mode : 0;
        request.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        const long fd = ::syscall(SYS_openat2, root_fd, relative.c_str(), &request, sizeof request);
        if (fd >= 0) return static_cast<int>(fd);
        if (errno != ENOSYS && errno != EPERM) return -errno;
    }
    unique_fd dir(::openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return -errno;
    for (std::size_t start = 0;;) {
        const auto end = relative.find('/', start);
        const std::string segment = relative.substr(start, end == std::string::npos ? end : end - start);
        if (end == std::string::npos) {
            const int fd = ::openat(dir.get(), segment.c_str(), flags | O_NOFOLLOW, mode);
            return fd >= 0 ? fd : -errno;
        }
        unique_fd next(::openat(dir.get(), segment.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next) {
            // A symlink where a directory is expected reads as ENOTDIR: say ELOOP (refused) instead.
            const int err = errno;
            struct stat info {};
            const bool link = ::fstatat(dir.get(), segment.c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(info.st_mode);
            return -(err == ENOTDIR && link ? ELOOP : err);
        }
        dir = std::move(next);
        start = end + 1;
    }
}

/// The status for an errno from open_beneath() and friends.
inline int status_for_errno(int err) {
    switch (err) {
    case ENOENT:
    case ENOTDIR: return 404;
    case EXDEV:         // openat2: the path leaves the root
    case ELOOP:         // a symlink loop, or (nofollow_walk) any symlink
    case EACCES:
    case EPERM: return 403;
    case ENAMETOOLONG: return 414;
    default: return 500;
    }
}

}  // namespace fileserver
