// qlog traces and TLS key logs, on client and server: written when asked for, in the formats that
// tools read (qlog JSON text sequences, NSS key-log lines).
#include "support/test_support.hpp"

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace observability_test {

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

/// True if `text` is one complete JSON value: strings, escapes and nesting balanced.
bool balanced_json(const std::string& text) {
    int depth = 0;
    bool in_string = false, escaped = false, any = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        else if (c == '{' || c == '[') ++depth, any = true;
        else if (c == '}' || c == ']') {
            if (--depth < 0) return false;
        }
    }
    return any && depth == 0 && !in_string;
}

/// A JSON text sequence (RFC 7464): records that start with RS (0x1e), each a JSON value.
std::size_t json_seq_records(const std::string& text) {
    if (text.empty() || text.front() != '\x1e') return 0;
    std::size_t records = 0, start = 1;
    while (start <= text.size()) {
        const auto next = text.find('\x1e', start);
        const std::string record = text.substr(start, next == std::string::npos ? std::string::npos : next - start);
        if (!balanced_json(record)) return 0;
        ++records;
        if (next == std::string::npos) break;
        start = next + 1;
    }
    return records;
}


TEST_CASE("observability: qlog files and NSS key-log lines on both sides", "[observability]") {
    const auto dir = std::filesystem::temp_directory_path() / ("h3co-observe-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "client");
    std::filesystem::create_directories(dir / "server");
    {
        asio::io_context io;
        h3co::connection_options server_options;
        server_options.qlog_dir = (dir / "server").string();
        auto identity = test::server_identity();
        identity.keylog_file = (dir / "server-keys.log").string();
        h3co::server server(test::executor(io), identity, server_options);
        server.handle("/", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
            co_await res.send_header(204);
        });
        const auto port = server.listen("127.0.0.1", 0).port();
        h3co::connection_options client_options;
        client_options.qlog_dir = (dir / "client").string();
        auto tls = test::trusting_test_ca();
        tls.keylog_file = (dir / "client-keys.log").string();
        h3co::client client(test::executor(io), tls, client_options);
        const int status = test::run(io, [&]() -> asio::awaitable<int> {
            const h3co::request req{.method = "GET", .url = test::url(port, "/", "127.0.0.1")};
            auto response = co_await client.request(req);
            co_return response.status;
        }());
        CHECK(status == 204);
        client.close();
        test::settle(io);
    }  // connections gone: their qlog files are closed
    for (const char* side : {"client", "server"}) {
        std::vector<std::filesystem::path> traces;
        for (const auto& entry : std::filesystem::directory_iterator(dir / side)) traces.push_back(entry.path());
        INFO(side);
        REQUIRE(traces.size() == 1);
        CHECK(traces.front().extension() == ".sqlog");
        CHECK(json_seq_records(slurp(traces.front())) >= 10);
    }
    const std::regex nss("^(CLIENT_HANDSHAKE_TRAFFIC_SECRET|SERVER_HANDSHAKE_TRAFFIC_SECRET|CLIENT_TRAFFIC_SECRET_0|"
                         "SERVER_TRAFFIC_SECRET_0|EXPORTER_SECRET) [0-9a-f]{64} [0-9a-f]{64,96}$");
    for (const char* file : {"client-keys.log", "server-keys.log"}) {
        std::ifstream in(dir / file);
        std::string line;
        std::size_t good = 0, lines = 0;
        while (std::getline(in, line)) {
            ++lines;
            if (std::regex_match(line, nss)) ++good;
        }
        INFO(file);
        CHECK(lines >= 4);
        CHECK(good == lines);
    }
    std::filesystem::remove_all(dir);
}

}  // namespace observability_test
