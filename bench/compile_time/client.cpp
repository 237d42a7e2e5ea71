// What a small h3co client file compiles: one request whose body is fed through a pipe (the seed's
// first program). bench/compile_time.sh times it header-only and in compiled mode.
#include <h3co/h3co.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
    asio::io_context io;
    h3co::client client(io.get_executor());
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        auto [reader, writer] = h3co::make_pipe(co_await asio::this_coro::executor);
        asio::co_spawn(co_await asio::this_coro::executor, [w = std::move(writer)]() mutable -> asio::awaitable<void> {
            const std::string chunk = "hello\n";
            co_await w.write(asio::buffer(chunk));
            w.close();
        }, asio::detached);
        const h3co::request req{.method = "POST", .url = argc > 1 ? argv[1] : "https://localhost:4433/"};
        auto response = co_await client.request(req, std::move(reader));
        std::cout << response.status << '\n';
    }, asio::detached);
    io.run();
}
