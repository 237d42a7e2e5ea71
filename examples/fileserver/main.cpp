// fileserver: a small HTTP/3 file server. GET and HEAD serve the files under --root; PUT and POST
// store a file there (streamed to disk, renamed into place once complete). The request handling is
// in file_handler.hpp (paths: safe_path.hpp), which any h3co::server can use.
//
//   fileserver --root DIR --cert cert.pem --key key.pem [--address ::] [--port 8443] [--port-file F]
//              [--workers N] [--early-data off|safe|all]
//
// --workers N: N threads, each with an io_context (a server on several workers).
// --early-data safe accepts 0-RTT from resuming clients and answers a PUT or POST that came in it
// 425 Too Early (RFC 8470); all lets those through too (uploads that are safe to replay only).
//
//   h3upload --cacert ca.pem photo.jpg https://localhost:8443/photo.jpg    (201 Created)
//   h3get --cacert ca.pem -o copy.jpg https://localhost:8443/photo.jpg
#include <h3co/h3co.hpp>

#include "../common/cli.hpp"
#include "../common/workers.hpp"
#include "file_handler.hpp"

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <iostream>

int main(int argc, char** argv) {
    examples::cli args(argc, argv,
                       {{"address", "::"}, {"port", "8443"}, {"cert", "cert.pem"}, {"key", "key.pem"}, {"port-file", ""},
                        {"root", "."}, {"workers", "1"}, {"early-data", "off"}},
                       "fileserver: GET / HEAD the files under --root, PUT / POST files into it, over HTTP/3");
    h3co::server_options limits;
    const auto early = args["early-data"];
    if (early != "off" && early != "safe" && early != "all") {
        std::cerr << "fileserver: --early-data takes off, safe or all\n";
        return 2;
    }
    limits.early_data = early != "off";
    limits.reject_unsafe_early_requests = early != "all";
    examples::worker_pool workers(args["workers"]);  // --workers N: a thread and io_context each
    h3co::server server(workers.executors(), h3co::server_tls::from_pem_files(args["cert"], args["key"]), {}, limits);
    server.handle("/", fileserver::file_handler(args["root"], fileserver::resolver::openat2, &std::cerr));

    const auto endpoint = server.listen(args["address"], static_cast<std::uint16_t>(std::stoi(args["port"])));
    examples::write_port_file(args["port-file"], endpoint.port());
    std::cerr << "serving " << args["root"] << " on " << endpoint << '\n';

    asio::signal_set signals(workers.first(), SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) {
        server.close();  // dispatches to every worker
        workers.stop();
    });
    workers.run();
}
