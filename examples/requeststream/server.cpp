// The seed's requeststream.go, server side: answer 200, take the stream over, copy it to stdout.
#include <h3co/h3co.hpp>

#include "../common/cli.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <array>
#include <iostream>

int main(int argc, char** argv) {
    examples::cli args(argc, argv,
                       {{"address", "::"}, {"port", "8080"}, {"cert", "cert.pem"}, {"key", "key.pem"}, {"port-file", ""}},
                       "requeststream_server: answers 200, then takes the stream over and prints it");
    asio::io_context io;
    h3co::server server(io.get_executor(), h3co::server_tls::from_pem_files(args["cert"], args["key"]));

    server.handle("/stream", [](h3co::server_request&, h3co::response& res) -> asio::awaitable<void> {
        co_await res.send_header(200);     // responding with 200 OK
        auto stream = res.take_over();     // taking over the HTTP/3 stream
        std::array<char, 16 * 1024> buf;
        for (;;) {                         // dumping the stream to stdout
            auto [ec, n] = co_await stream.read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
            std::cout.write(buf.data(), static_cast<std::streamsize>(n)).flush();
            if (ec) {
                if (ec != h3co::error::eof) std::cerr << "stream ended with an error: " << ec.message() << '\n';
                break;
            }
        }
    });

    const auto endpoint = server.listen(args["address"], static_cast<std::uint16_t>(std::stoi(args["port"])));
    examples::write_port_file(args["port-file"], endpoint.port());
    std::cerr << "listening on " << endpoint << '\n';

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) { server.close(); io.stop(); });
    io.run();
}
