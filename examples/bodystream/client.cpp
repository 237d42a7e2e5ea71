// The seed's bodystream.go, client side: a POST whose body is a pipe, written to in another
// coroutine every 100 ms while the request is in flight.
#include <h3co/h3co.hpp>

#include "../common/cli.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <iostream>

using namespace std::chrono_literals;

asio::awaitable<int> upload(h3co::client& client, std::string url) {
    auto ex = co_await asio::this_coro::executor;
    auto [reader, writer] = h3co::make_pipe(ex);

    // Send data in a separate coroutine at 100 ms intervals, then close the body.
    asio::co_spawn(ex, [w = std::move(writer)]() mutable -> asio::awaitable<void> {
        for (int i = 0; i < 10; ++i) {
            const std::string chunk = "data chunk #" + std::to_string(i) + "\n";
            co_await w.write(asio::buffer(chunk));
            co_await h3co::sleep_for(100ms);
        }
        w.close();  // ends the body: the stream's FIN
    }, asio::detached);

    // Named, not a braced temporary inside co_await: g++ 12 miscompiles those (docs/getting-started.md).
    const h3co::request req{.method = "POST", .url = url};
    auto response = co_await client.request(req, std::move(reader));
    std::cout << "response status: " << response.status << '\n';
    co_return response.status == 200 ? 0 : 1;
}

int main(int argc, char** argv) {
    examples::cli args(argc, argv, {{"url", "https://localhost:8080/stream"}, {"ca", ""}},
                       "bodystream_client: POSTs ten chunks through a pipe, 100 ms apart");
    asio::io_context io;
    h3co::client_tls tls;
    tls.ca_file = args["ca"];  // empty: the system trust store
    h3co::client client(io.get_executor(), tls);
    int status = 1;
    asio::co_spawn(io, upload(client, args["url"]), [&](std::exception_ptr e, int rc) {
        status = rc;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::system_error& err) {
                std::cerr << "request failed: " << err.code().category().name() << ": " << err.what() << '\n';
            }
            status = 1;
        }
        client.close();
    });
    io.run();
    return status;
}
