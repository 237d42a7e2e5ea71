// Child processes for the bench: spawn, read a line from stdout, wait with a deadline and collect
// the child's rusage (wait4), stop it. Every wait is bounded; only PIDs spawned here are signalled.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace bench {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

inline double tv_seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

/// A spawned child. stdout is captured through a pipe when asked, otherwise it goes with stderr to
/// `log` (or is inherited when `log` is empty).
class child_process {
public:
    child_process() = default;
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() { stop(std::chrono::milliseconds(2000)); if (out_fd_ >= 0) ::close(out_fd_); }

    void spawn(const std::vector<std::string>& argv, bool capture_stdout, const std::string& log = {}) {
        if (running()) throw std::logic_error("child_process::spawn: still running");
        if (out_fd_ >= 0) ::close(out_fd_);
        out_fd_ = -1;
        out_.clear();
        consumed_ = 0;
        usage_ = {};
        status_ = 0;
        reaped_ = false;
        wall_ = 0;
        int fds[2] = {-1, -1};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        if (capture_stdout) {
            if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
            posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        }
        if (!log.empty()) {
            if (!capture_stdout) posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        }
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        start_ = clock_type::now();
        const int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (capture_stdout) ::close(fds[1]);
        if (rc != 0) {
            if (capture_stdout) ::close(fds[0]);
            pid_ = -1;
            throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
        }
        out_fd_ = capture_stdout ? fds[0] : -1;
        if (out_fd_ >= 0) ::fcntl(out_fd_, F_SETFL, ::fcntl(out_fd_, F_GETFL) | O_NONBLOCK);
    }

    pid_t pid() const noexcept { return pid_; }
    bool running() const noexcept { return pid_ > 0 && !reaped_; }

    /// Reads one line of stdout (without '\n'); false on EOF or after `limit`.
    bool read_line(std::string& line, std::chrono::milliseconds limit) {
        const auto deadline = clock_type::now() + limit;
        for (;;) {
            if (auto nl = out_.find('\n', consumed_); nl != std::string::npos) {
                line = out_.substr(consumed_, nl - consumed_);
                consumed_ = nl + 1;
                return true;
            }
            if (out_fd_ < 0 || clock_type::now() >= deadline) return false;
            if (!pump(10)) return false;
        }
    }

    /// The last line of stdout that starts with '{' (the child's JSON report), or "".
    std::string json_line() const {
        std::istringstream in(out_);
        std::string line, last;
        while (std::getline(in, line))
            if (!line.empty() && line.front() == '{') last = line;
        return last;
    }

    /// Waits up to `limit` for the child to exit; true if it did. Polls every 2 ms.
    bool wait(std::chrono::milliseconds limit) {
        const auto deadline = clock_type::now() + limit;
        while (running()) {
            int status = 0;
            const pid_t r = ::wait4(pid_, &status, WNOHANG, &usage_);
            if (r == pid_) {
                wall_ = seconds_since(start_);
                status_ = status;
                reaped_ = true;
                break;
            }
            if (r < 0 && errno != EINTR) {
                reaped_ = true;
                break;
            }
            if (clock_type::now() >= deadline) return false;
            if (out_fd_ >= 0)
                pump(2);
            else
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        // Collect what is left in the pipe (bounded: the writer is gone).
        for (int i = 0; i < 100 && out_fd_ >= 0 && pump(0);) ++i;
        return true;
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    void stop(std::chrono::milliseconds grace) {
        if (!running()) return;
        ::kill(pid_, SIGTERM);
        if (wait(grace)) return;
        ::kill(pid_, SIGKILL);
        wait(std::chrono::milliseconds(5000));
    }

    bool exited_ok() const noexcept { return reaped_ && WIFEXITED(status_) && WEXITSTATUS(status_) == 0; }
    bool killed_by(int sig) const noexcept { return reaped_ && WIFSIGNALED(status_) && WTERMSIG(status_) == sig; }
    int status() const noexcept { return status_; }
    double wall_seconds() const noexcept { return wall_; }
    double cpu_seconds() const noexcept { return tv_seconds(usage_.ru_utime) + tv_seconds(usage_.ru_stime); }
    double max_rss_kib() const noexcept { return static_cast<double>(usage_.ru_maxrss); }
    const std::string& output() const noexcept { return out_; }

private:
    /// Reads what is available within `wait_ms`. False at EOF.
    bool pump(int wait_ms) {
        pollfd p{out_fd_, POLLIN, 0};
        const int r = ::poll(&p, 1, wait_ms);
        if (r <= 0) return true;
        char buf[4096];
        const ssize_t n = ::read(out_fd_, buf, sizeof buf);
        if (n > 0) {
            out_.append(buf, static_cast<std::size_t>(n));
            return true;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        ::close(out_fd_);
        out_fd_ = -1;
        return false;
    }

    pid_t pid_ = -1;
    int out_fd_ = -1;
    std::string out_;
    std::size_t consumed_ = 0;
    clock_type::time_point start_{};
    rusage usage_{};
    int status_ = 0;
    bool reaped_ = false;
    double wall_ = 0;
};

/// A UDP port that was free a moment ago on 127.0.0.1 (bind port 0, read it, release it).
inline std::uint16_t free_udp_port() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("bind to 127.0.0.1:0 failed");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

/// Whether some process has a UDP socket bound to 127.0.0.1:`port` (from /proc/net/udp).
inline bool udp_port_bound(std::uint16_t port) {
    std::ifstream in("/proc/net/udp");
    char want[32];
    std::snprintf(want, sizeof want, "0100007F:%04X", static_cast<unsigned>(port));
    std::string line;
    while (std::getline(in, line))
        if (line.find(want) != std::string::npos) return true;
    return false;
}

/// Drops counted on the loopback UDP sockets bound to `ports` (the last column of /proc/net/udp and
/// /proc/net/udp6: datagrams the kernel dropped because the socket's buffer was full), summed per
/// port, in the order of `ports`. A port with no socket counts 0.
inline std::vector<std::uint64_t> udp_socket_drops(const std::vector<std::uint16_t>& ports) {
    std::vector<std::uint64_t> drops(ports.size(), 0);
    for (const char* table : {"/proc/net/udp", "/proc/net/udp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // header
        for (int lines = 0; lines < 100000 && std::getline(in, line); ++lines) {
            std::istringstream fields(line);
            std::string sl, local, field, last;
            fields >> sl >> local;
            while (fields >> field) last = field;
            const auto colon = local.rfind(':');
            if (colon == std::string::npos || last.empty()) continue;
            const auto port = static_cast<std::uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16));
            for (std::size_t i = 0; i < ports.size(); ++i)
                if (ports[i] == port) drops[i] += std::stoull(last);
        }
    }
    return drops;
}

inline std::string read_text(const std::string& path, std::size_t max = 4000) {
    std::ifstream in(path);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (s.size() > max) s = "..." + s.substr(s.size() - max);
    return s;
}

}  // namespace bench
