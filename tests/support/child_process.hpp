// A child process for tests that run ngtcp2's example peers (gtlsclient / gtlsserver): started
// with fork/exec, output to a log file, killed by its PID and reaped when the guard goes.
#pragma once

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace test {

/// A temporary directory, removed with everything in it at the end of the scope.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "h3co-test-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class child_process {
public:
    child_process(const std::vector<std::string>& argv, const std::filesystem::path& log) {
        // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        const std::string log_path = log.string();
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test process, whatever happens to it
            if (::getppid() != parent) ::_exit(126);
            const int in = ::open("/dev/null", O_RDONLY);
            const int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (in < 0 || out < 0) ::_exit(126);
            ::dup2(in, STDIN_FILENO);
            ::dup2(out, STDOUT_FILENO);
            ::dup2(out, STDERR_FILENO);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
    }
    ~child_process() { kill(); }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    bool started() const noexcept { return pid_ > 0; }

    /// Non-blocking: has it exited? (Reaps it if so; the status is kept.)
    bool exited() {
        if (pid_ <= 0) return true;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
        status_ = status;
        pid_ = -1;
        return true;
    }

    bool exited_with_zero() const noexcept { return pid_ <= 0 && WIFEXITED(status_) && WEXITSTATUS(status_) == 0; }
    int status() const noexcept { return status_; }
    pid_t pid() const noexcept { return pid_; }

    /// Waits up to `limit` for the process to exit; returns false (still running) on timeout.
    bool wait_for(std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!exited()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polls for the exit
        }
        return true;
    }

    void kill() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        status_ = status;
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
    int status_ = -1;
};

}  // namespace test
