// A second baseline: the same shape of program as client.cpp written against Asio alone (two
// coroutines, a timer wait and a UDP receive instead of the request): what the file's own
// coroutines cost, h3co or not.
#include <asio.hpp>

#include <iostream>

int main() {
    asio::io_context io;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        asio::co_spawn(co_await asio::this_coro::executor, []() -> asio::awaitable<void> {
            asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
            co_await timer.async_wait(asio::use_awaitable);
        }, asio::detached);
        asio::ip::udp::socket socket(io, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));
        char buf[64];
        const auto n = co_await socket.async_receive(asio::buffer(buf), asio::use_awaitable);
        std::cout << n << '\n';
    }, asio::detached);
    io.run();
}
