// A file descriptor (a file, stdin, stdout, a pipe) as a byte stream for the command-line examples.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <system_error>
#include <utility>

namespace examples {

/// Reads or writes a file descriptor from a coroutine. A regular file is read and written with
/// read() / write(), which never wait for a peer (only for the disk); anything else (a pipe, a
/// terminal, a socket) goes through an asio::posix::stream_descriptor, so waiting for the other end
/// never blocks the executor.
class fd_stream {
public:
    /// `owned`: close `fd` at the end (not for stdin / stdout).
    fd_stream(asio::any_io_executor ex, int fd, bool owned) : fd_(fd), owned_(owned), descriptor_(ex) {
        struct stat st {};
        if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
            regular_ = true;
            const off_t pos = ::lseek(fd_, 0, SEEK_CUR);
            size_left_ = static_cast<std::uint64_t>(st.st_size - (pos > 0 ? pos : 0));
        } else {
            // Asio sets O_NONBLOCK on the descriptor, and the flag belongs to the open file, shared
            // with whoever else has it (the shell, for stdin and stdout): restore it at the end.
            saved_flags_ = ::fcntl(fd_, F_GETFL);
            const int dup_fd = ::dup(fd_);
            if (dup_fd < 0) throw std::system_error(errno, std::generic_category(), "dup");
            descriptor_.assign(dup_fd);
        }
    }
    fd_stream(const fd_stream&) = delete;
    fd_stream& operator=(const fd_stream&) = delete;
    ~fd_stream() {
        std::error_code ignored;
        descriptor_.close(ignored);
        if (saved_flags_ >= 0) ::fcntl(fd_, F_SETFL, saved_flags_);
        if (owned_) ::close(fd_);
    }

    int native_handle() const noexcept { return fd_; }
    bool regular() const noexcept { return regular_; }
    /// Bytes from the current offset to the end, when known (a regular file).
    std::optional<std::uint64_t> size_left() const { return regular_ ? std::optional<std::uint64_t>(size_left_) : std::nullopt; }

    /// Reads at least one byte; asio::error::eof at the end.
    asio::awaitable<std::pair<std::error_code, std::size_t>> read_some(asio::mutable_buffer buf) {
        using result = std::pair<std::error_code, std::size_t>;
        if (!regular_) {
            auto [ec, n] = co_await descriptor_.async_read_some(buf, asio::experimental::as_tuple(asio::use_awaitable));
            co_return result{ec, n};
        }
        for (;;) {
            const ssize_t n = ::read(fd_, buf.data(), buf.size());
            if (n > 0) co_return result{std::error_code{}, static_cast<std::size_t>(n)};
            if (n == 0) co_return result{asio::error::eof, 0};
            if (errno != EINTR) co_return result{std::error_code(errno, std::generic_category()), 0};
        }
    }

    /// Writes all of `buf`; a pipe's reader that is slower than us makes this wait.
    asio::awaitable<std::error_code> write(asio::const_buffer buf) {
        if (!regular_) {
            auto [ec, n] = co_await asio::async_write(descriptor_, buf, asio::experimental::as_tuple(asio::use_awaitable));
            (void)n;
            co_return ec;
        }
        const char* p = static_cast<const char*>(buf.data());
        std::size_t left = buf.size();
        while (left > 0) {
            const ssize_t n = ::write(fd_, p, left);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) co_return std::error_code(errno, std::generic_category());
            p += n;
            left -= static_cast<std::size_t>(n);
        }
        co_return std::error_code{};
    }

private:
    int fd_;
    bool owned_;
    bool regular_ = false;
    std::uint64_t size_left_ = 0;
    int saved_flags_ = -1;
    asio::posix::stream_descriptor descriptor_;
};

}  // namespace examples
