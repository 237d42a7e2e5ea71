// The public handles at their edges: handles without a stream (default-constructed or moved from),
// a pipe reader closed while a view is out, and fields that HTTP/3 forbids (RFC 9114 §4.2).
#include "support/test_support.hpp"

#include <asio/bind_executor.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <array>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace handle_edges_test {

/// A server on 127.0.0.1: /ok answers 200 with a short body.
struct fixture {
    asio::io_context io;
    h3co::server server{test::executor(io), test::server_identity()};
    std::uint16_t port = 0;

    fixture() {
        server.handle("/ok", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
            co_await res.send_header(200);
            co_await res.write(asio::buffer(std::string_view("ok")));
        });
    }
    void listen() { port = server.listen("127.0.0.1", 0).port(); }
    ~fixture() {
        server.close();
        test::settle(io, 100ms);
    }
    h3co::connection connect() {
        return test::run(io, h3co::connect(test::executor(io), "127.0.0.1", port, test::trusting_test_ca()));
    }
    std::string url(const std::string& path) const { return test::url(port, path, "127.0.0.1"); }
};

// ---- trailers() on a handle without a stream ------------------------------------------------------

TEST_CASE("handle edges: trailers() on a default-constructed or moved-from handle is empty", "[handle-edges][trailers]") {
    const h3co::http_stream none;
    CHECK(none.trailers().empty());
    const h3co::request_stream no_request;
    CHECK(no_request.trailers().empty());

    fixture f;
    f.listen();
    auto conn = f.connect();
    auto stream = test::run(f.io, conn.open_request_stream());
    const auto taken = std::move(stream);
    CHECK(taken.is_open());
    CHECK_FALSE(stream.is_open());
    CHECK(stream.trailers().empty());
}

}  // namespace handle_edges_test
