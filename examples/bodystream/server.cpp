// The seed's bodystream.go, server side: POST /stream copies the request body to stdout as it arrives.
//
// It also serves a page (GET /) whose script streams an upload from the browser: fetch() with a
// ReadableStream body (duplex: 'half') that produces a line every 300 ms. Open it in Chromium with
// QUIC forced on for this origin (docs/getting-started.md, "A browser streaming an upload") and
// watch the lines arrive one by one. The script reports its progress to POST /log, printed on stderr.
#include <h3co/h3co.hpp>

#include "../common/cli.hpp"
#include "../common/workers.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <array>
#include <chrono>
#include <iostream>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view page = R"html(<!doctype html>
<meta charset="utf-8">
<title>h3co: streaming upload</title>
<h1>Streaming an upload over HTTP/3</h1>
<pre id="out"></pre>
<script>
const chunks = 8, delayMs = 300;
const protocolOf = (entry) => (entry && entry.nextHopProtocol) || "unknown";

// Shows a line here and sends it to the server, which prints it on its stderr.
async function log(line) {
  document.getElementById("out").textContent += line + "\n";
  await fetch("/log", {method: "POST", body: line});
}

async function upload() {
  const encoder = new TextEncoder();
  let i = 0;
  // The body is produced while it is sent: one line, then a pause, until the last one.
  const body = new ReadableStream({
    async pull(controller) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      controller.enqueue(encoder.encode(`chunk ${i}\n`));
      if (++i === chunks) controller.close();
    },
  });
  const started = performance.now();
  const response = await fetch("/stream", {
    method: "POST", body, duplex: "half", headers: {"content-type": "text/plain"},
  });
  await response.text();  // the resource timing entry is complete once the response is read
  const ms = Math.round(performance.now() - started);
  const entries = performance.getEntriesByType("resource").filter((e) => e.name.endsWith("/stream"));
  await log(`upload done: status ${response.status}, protocol ${protocolOf(entries.at(-1))}, ` +
            `${chunks} chunks in ${ms} ms`);
}

log(`page loaded over ${protocolOf(performance.getEntriesByType("navigation")[0])}`)
  .then(upload)
  .catch((e) => log(`upload failed: ${e}`));
</script>
)html";

using clock_type = std::chrono::steady_clock;

}  // namespace

int main(int argc, char** argv) {
    examples::cli args(argc, argv,
                       {{"address", "::"}, {"port", "8080"}, {"cert", "cert.pem"}, {"key", "key.pem"}, {"port-file", ""},
                        {"log-arrivals", "off"}, {"workers", "1"}},
                       "bodystream_server: prints each POST /stream body as it arrives; GET / serves a page that\n"
                       "streams one from the browser. --log-arrivals on: also tell on stderr when each part arrived");
    const bool log_arrivals = args["log-arrivals"] == "on";
    examples::worker_pool workers(args["workers"]);  // --workers N: a thread and io_context each
    h3co::server server(workers.executors(), h3co::server_tls::from_pem_files(args["cert"], args["key"]));

    server.handle("/stream", [log_arrivals](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        const auto start = clock_type::now();
        const auto arrival = [&](std::string_view what) {
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
            std::cerr << "stream " << req.stream_id() << " +" << ms.count() << " ms: " << what << std::endl;
        };
        std::array<char, 16 * 1024> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
            std::cout.write(buf.data(), static_cast<std::streamsize>(n)).flush();
            if (log_arrivals && n > 0) arrival(std::to_string(n) + " bytes");
            if (ec == h3co::error::eof) break;
            if (ec) {
                std::cerr << "body ended with an error: " << ec.message() << '\n';
                co_return;
            }
        }
        if (log_arrivals) arrival("end of body");
        co_await res.send_header(200);
    });

    // "/" is also the fallback route for every other path: serve the page only for GET /.
    server.handle("/", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        if (req.method() != "GET" || req.path().substr(0, req.path().find('?')) != "/") {
            co_await res.send_header(404);
            co_return;
        }
        const h3co::fields headers{{"content-type", "text/html; charset=utf-8"}, {"cache-control", "no-store"}};
        co_await res.send_header(200, headers);
        co_await res.write(asio::buffer(page));
    });

    // The page's progress lines (small bodies), printed on stderr.
    server.handle("/log", [](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        std::string line;
        std::array<char, 1024> buf;
        for (;;) {
            auto [ec, n] = co_await req.read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
            line.append(buf.data(), n);
            if (ec == h3co::error::eof) break;
            if (ec || line.size() > 4096) co_return;  // h3co ends the exchange
        }
        std::cerr << "page: " << line << std::endl;
        co_await res.send_header(204);
    });

    const auto endpoint = server.listen(args["address"], static_cast<std::uint16_t>(std::stoi(args["port"])));
    examples::write_port_file(args["port-file"], endpoint.port());
    std::cerr << "listening on " << endpoint << '\n';

    asio::signal_set signals(workers.first(), SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) {
        server.close();  // dispatches to every worker
        workers.stop();
    });
    workers.run();
}
