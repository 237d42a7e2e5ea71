// The virtual-time speed figure of docs/testing.md: one upload of `seconds` worth of a 100 Mbit/s
// bottleneck at 50 ms RTT, through the public API, timed in wall seconds and virtual seconds.
#pragma once

#include "network.hpp"
#include "runner.hpp"
#include "workload.hpp"

#include <h3co/sleep.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace h3co_sim {

struct upload_figures {
    std::error_code ec;
    std::uint64_t bytes = 0;
    double virtual_s = 0, wall_s = 0;
    network_stats net;
    h3co::connection_stats client;  ///< the client's connection when the response came (bench's figures)
    std::uint64_t peak_cwnd = 0;    ///< the client's largest congestion window, sampled every 100 ms
};

inline upload_figures run_upload(double seconds) {
    upload_figures out;
    const auto wall_start = std::chrono::steady_clock::now();
    context ctx(false);
    {
        auto io = std::make_unique<asio::io_context>();
        network net(*io, 1);
        link_params up;
        up.delay_ns = 25 * ms;
        up.rate_bps = 100'000'000;
        up.queue_bytes = 1'250'000;  // a bandwidth-delay product's worth of buffer
        link_params down;
        down.delay_ns = 25 * ms;
        net.set_link_factory([up, down](std::uint32_t, std::uint32_t to) { return to == 0x7f000001u ? up : down; });
        ctx.now = [&net] { return net.now_ns() / ms; };
        auto ex = asio::any_io_executor(io->get_executor());
        h3co::connection_options options;
        options.max_stream_receive_window = 16 * 1024 * 1024;
        auto server = std::make_unique<h3co::server>(
            ex, h3co::server_tls::from_pem_files(cert("server.pem"), cert("server.key")), options);
        install_handlers(*server, ctx);
        server->listen("127.0.0.1", 443);
        h3co::client_tls tls;
        tls.ca_file = cert("ca.pem");
        const std::uint64_t n = static_cast<std::uint64_t>(seconds * 100'000'000 / 8);
        const std::uint64_t start = net.now_ns();
        bool done = false;
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
                auto [cec, conn] = co_await h3co::connect(ex, "127.0.0.1", 443, tls, options, tuple);
                if (cec) {
                    out.ec = cec;
                    done = true;
                    co_return;
                }
                // The congestion window's peak, read every 100 ms of virtual time (reading it
                // changes nothing the connection does).
                asio::co_spawn(
                    ex,
                    [&done, &out, c = &conn]() -> asio::awaitable<void> {
                        while (!done) {
                            out.peak_cwnd = std::max(out.peak_cwnd, c->stats().congestion_window);
                            co_await h3co::sleep_for(std::chrono::milliseconds(100));
                        }
                    },
                    asio::detached);
                auto [oec, stream] = co_await conn.open_request_stream(tuple);
                h3co::request req;
                req.method = "POST";
                req.url = "/sink";
                req.headers.push_back({"x-len", std::to_string(n)});
                auto [hec] = co_await stream.send_header(req, tuple);
                auto wec = co_await write_body(stream, n, 64 * 1024);
                auto [rec, head] = co_await stream.read_response(tuple);
                auto r = co_await read_body(stream, 0);
                out.client = conn.stats();
                out.ec = oec ? oec : hec ? hec : wec ? wec : rec;
                out.bytes = n;
                (void)r;
                conn.close();
                done = true;
            },
            asio::detached);
        net.run_until([&] { return done; }, start + static_cast<std::uint64_t>(seconds * 20) * 1'000'000'000ull);
        out.virtual_s = static_cast<double>(net.now_ns() - start) / 1e9;
        out.net = net.stats();
        server->close();
        net.run_ready();
        server.reset();
        net.run_ready();
        io.reset();  // before the network: its services' shutdown reaches the network
    }
    out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    return out;
}

}  // namespace h3co_sim
