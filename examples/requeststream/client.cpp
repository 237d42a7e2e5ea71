// The seed's requeststream.go, client side: direct control of the request stream. Send the
// headers, wait for the server's answer before any body moves, then write ten chunks and finish.
#include <h3co/h3co.hpp>

#include "../common/cli.hpp"

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>

#include <array>
#include <iostream>

using namespace std::chrono_literals;

asio::awaitable<int> request_stream(std::string url, h3co::client_tls tls) {
    auto ex = co_await asio::this_coro::executor;
    const auto authority = h3co::parse_authority(url);
    if (!authority) throw std::invalid_argument("not an absolute https URL: " + url);

    auto conn = co_await h3co::connect(ex, authority->host, authority->port, tls);
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = url};  // named: see the note in the bodystream client
    co_await stream.send_header(req);
    auto response = co_await stream.read_response();  // the server may refuse before any body moves
    std::cout << "response status: " << response.status << '\n';
    if (response.status != 200) co_return 1;

    for (int i = 0; i < 10; ++i) {
        const std::string chunk = "data chunk #" + std::to_string(i) + "\n";
        co_await stream.write(asio::buffer(chunk));
        co_await h3co::sleep_for(100ms);
    }
    co_await stream.finish();  // FIN; completes when the server has acknowledged every body byte

    // The server ends its side when it has read everything.
    std::array<char, 1024> buf;
    for (;;) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
        if (ec == h3co::error::eof) break;
        if (ec) throw std::system_error(ec);
    }
    co_return 0;
}

int main(int argc, char** argv) {
    examples::cli args(argc, argv, {{"url", "https://localhost:8080/stream"}, {"ca", ""}},
                       "requeststream_client: opens a request stream and writes ten chunks, 100 ms apart");
    asio::io_context io;
    h3co::client_tls tls;
    tls.ca_file = args["ca"];
    int status = 1;
    asio::co_spawn(io, request_stream(args["url"], tls), [&](std::exception_ptr e, int rc) {
        status = rc;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::system_error& err) {
                std::cerr << "request failed: " << err.code().category().name() << ": " << err.what() << '\n';
            } catch (const std::exception& err) {
                std::cerr << "request failed: " << err.what() << '\n';
            }
            status = 1;
        }
    });
    io.run();
    return status;
}
