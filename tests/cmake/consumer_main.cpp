// The program every packaging consumer (find_package, add_subdirectory, FetchContent) builds:
// an h3co server on 127.0.0.1:0 and an h3co client that trusts the test CA, one GET, the status
// printed. Exits 0 only on 200, so a consumer that links but cannot talk HTTP/3 fails its test.
//
// usage: h3co_consumer CERT_DIR   (ca.pem, server-chain.pem, server.key from cmake/make-certs.sh)
#include <h3co/h3co.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>

namespace {

asio::awaitable<int> get_once(h3co::client& client, std::string url) {
    // Named, never a braced temporary inside co_await (g++ 12, docs/getting-started.md).
    const h3co::request req{.method = "GET", .url = url, .headers = {}};
    auto response = co_await client.request(req);
    std::string body;
    std::array<char, 4096> buf;
    for (;;) {
        auto [ec, n] = co_await response.read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
        body.append(buf.data(), n);
        if (ec) break;
    }
    std::cout << "status " << response.status << ", body \"" << body << "\"\n";
    co_return response.status == 200 && body == "hello from h3co" ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " CERT_DIR\n";
        return 2;
    }
    const std::string certs = argv[1];
    asio::io_context io;

    h3co::server server(io.get_executor(),
                        h3co::server_tls::from_pem_files(certs + "/server-chain.pem", certs + "/server.key"));
    server.handle("/hello", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);
        static const std::string text = "hello from h3co";
        co_await res.write(asio::buffer(text));
    });
    const auto endpoint = server.listen("127.0.0.1", 0);

    h3co::client_tls tls;
    tls.ca_file = certs + "/ca.pem";
    h3co::client client(io.get_executor(), tls);

    // A hung exchange must fail the test, not stall it.
    asio::steady_timer deadline(io, std::chrono::seconds(20));
    deadline.async_wait([&](std::error_code ec) {
        if (!ec) {
            std::cerr << "timed out\n";
            io.stop();
        }
    });

    int rc = 1;
    const std::string url = "https://127.0.0.1:" + std::to_string(endpoint.port()) + "/hello";
    asio::co_spawn(io, get_once(client, url), [&](std::exception_ptr e, int result) {
        rc = result;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& err) {
                std::cerr << "request failed: " << err.what() << '\n';
            }
            rc = 1;
        }
        client.close();
        server.close();
        deadline.cancel();
    });
    io.run();
    return rc;
}
