// Records the fuzz targets' seed corpora from real exchanges over the sans-I/O pair:
//   h3_server_request   request streams as nghttp3 encodes them for h3co's client (header blocks
//                       from detail/h3/header_encoding.hpp, bodies as DATA frames)
//   h3_client_response  the response streams h3co's server sent back to those requests, as the
//                       client received them on the wire
//   server_datagram     the datagrams the server received during a handshake and a request
//   byte_ring, pipe     a few operation sequences (these targets take operations, not traffic)
// Usage: h3co_fuzz_record <output dir>   (docs/fuzzing.md says when and how to run it)
#include "h3_exchange.hpp"
#include "pipe_ring.hpp"
#include "server_datagram.hpp"

#include <h3co/detail/h3/header_encoding.hpp>

#include <nghttp3/nghttp3.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

void save(const fs::path& dir, const std::string& name, const std::vector<std::uint8_t>& bytes) {
    fs::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    std::printf("%-60s %6zu bytes\n", (dir / name).c_str(), bytes.size());
}

/// The body nghttp3 asks for next (one at a time: the recorder encodes one stream at a time).
const std::string* pending_body = nullptr;

nghttp3_ssize read_pending_body(nghttp3_conn*, std::int64_t, nghttp3_vec* vec, std::size_t, std::uint32_t* flags,
                                void*, void*) {
    *flags |= NGHTTP3_DATA_FLAG_EOF;
    if (!pending_body) return 0;
    vec[0] = nghttp3_vec{reinterpret_cast<std::uint8_t*>(const_cast<char*>(pending_body->data())), pending_body->size()};
    pending_body = nullptr;
    return 1;
}

/// Everything nghttp3 writes on stream `id`, up to its FIN.
std::vector<std::uint8_t> drain_stream(nghttp3_conn* conn, std::int64_t id) {
    std::vector<std::uint8_t> stream;
    for (int i = 0; i < 1000; ++i) {
        std::int64_t sid = -1;
        int fin = 0;
        std::array<nghttp3_vec, 16> vec;
        const auto n = nghttp3_conn_writev_stream(conn, &sid, &fin, vec.data(), vec.size());
        if (n < 0) std::abort();
        if (sid < 0) break;
        std::size_t len = 0;
        for (nghttp3_ssize k = 0; k < n; ++k) {
            if (sid == id) stream.insert(stream.end(), vec[k].base, vec[k].base + vec[k].len);
            len += vec[k].len;
        }
        nghttp3_conn_add_write_offset(conn, sid, len);
        if (sid == id && fin) break;
    }
    return stream;
}

nghttp3_conn* fresh_conn(bool server) {
    nghttp3_callbacks callbacks{};
    nghttp3_settings settings;
    nghttp3_settings_default(&settings);
    nghttp3_conn* conn = nullptr;
    const int rv = server ? nghttp3_conn_server_new(&conn, &callbacks, &settings, nullptr, nullptr)
                          : nghttp3_conn_client_new(&conn, &callbacks, &settings, nullptr, nullptr);
    if (rv != 0) std::abort();
    if (server) nghttp3_conn_set_max_client_streams_bidi(conn, 100);
    nghttp3_conn_bind_control_stream(conn, server ? 3 : 2);
    nghttp3_conn_bind_qpack_streams(conn, server ? 7 : 6, server ? 11 : 10);
    return conn;
}

/// The request stream nghttp3 writes for `req` with `body`, on a fresh client connection (so the
/// QPACK dynamic table is not used: the stream stands on its own).
std::vector<std::uint8_t> encode_request(const h3co::request& req, const std::string& body) {
    auto* conn = fresh_conn(false);
    h3co::detail::header_encoding::name_storage storage;
    auto nva = h3co::detail::header_encoding::request(req, "localhost:443", storage);
    if (!nva) std::abort();
    pending_body = &body;
    nghttp3_data_reader reader{&read_pending_body};
    if (nghttp3_conn_submit_request(conn, 0, nva->data(), nva->size(), body.empty() ? nullptr : &reader, nullptr) != 0)
        std::abort();
    auto stream = drain_stream(conn, 0);
    nghttp3_conn_del(conn);
    return stream;
}

/// The response stream nghttp3 writes for `status`, `fields` and `body`, on a fresh server
/// connection that received `request_stream` (static table and literals only, like encode_request).
std::vector<std::uint8_t> encode_response(const std::vector<std::uint8_t>& request_stream, int status,
                                          const h3co::fields& fields, const std::string& body) {
    auto* conn = fresh_conn(true);
    if (nghttp3_conn_read_stream(conn, 0, request_stream.data(), request_stream.size(), 1) < 0) std::abort();
    h3co::detail::header_encoding::name_storage storage;
    auto nva = h3co::detail::header_encoding::response(status, fields, storage);
    if (!nva) std::abort();
    pending_body = &body;
    nghttp3_data_reader reader{&read_pending_body};
    if (nghttp3_conn_submit_response(conn, 0, nva->data(), nva->size(), body.empty() ? nullptr : &reader) != 0)
        std::abort();
    auto stream = drain_stream(conn, 0);
    nghttp3_conn_del(conn);
    return stream;
}

std::vector<std::uint8_t> bytes_of(std::initializer_list<int> v) {
    std::vector<std::uint8_t> out;
    for (int b : v) out.push_back(static_cast<std::uint8_t>(b));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <output dir>\n", argv[0]);
        return 2;
    }
    const fs::path out = argv[1];

    // Requests, and what h3co's server answered to each (a 200, a 413 for a body over the fuzz
    // limit of 1024 bytes, a 431 for a header block over it).
    struct sample {
        std::string name;
        h3co::request req;
        std::string body;
    };
    const std::vector<sample> samples = {
        {"get", {.method = "GET", .url = "/"}, ""},
        {"post_small", {.method = "POST", .url = "/upload?x=1", .headers = {{"content-type", "text/plain"}}}, "hello, h3co\n"},
        {"post_content_length",
         {.method = "POST", .url = "/upload", .headers = {{"content-length", "300"}}},
         std::string(300, 'b')},
        {"post_over_body_limit", {.method = "POST", .url = "/big"}, std::string(2000, 'x')},
        {"get_over_header_limit", {.method = "GET", .url = "/", .headers = {{"x-big", std::string(1200, 'h')}}}, ""},
        {"get_many_fields",
         {.method = "GET",
          .url = "/fields",
          .headers = {{"accept", "*/*"}, {"user-agent", "h3co-fuzz"}, {"cookie", "a=b"}, {"cookie", "c=d"}}},
         ""},
    };
    auto& server_side = h3co_fuzz::server_request_pair();
    for (const auto& s : samples) {
        const auto request_stream = encode_request(s.req, s.body);
        save(out / "h3_server_request", s.name, request_stream);
        const auto x =
            h3co_fuzz::h3_server_request_exchange(server_side, request_stream.data(), request_stream.size());
        if (!x.client_received.empty()) save(out / "h3_client_response", s.name, x.client_received);
    }

    // Responses as nghttp3 encodes them without the dynamic table (the recorded ones above may
    // refer to the server's dynamic table, which the fuzzed client never gets: those test a
    // stream blocked on QPACK).
    const auto get = encode_request(samples[0].req, samples[0].body);
    save(out / "h3_client_response", "encoded_200_body", encode_response(get, 200, {{"content-type", "text/plain"}}, "hello\n"));
    save(out / "h3_client_response", "encoded_204", encode_response(get, 204, {}, ""));
    save(out / "h3_client_response", "encoded_404_fields",
         encode_response(get, 404, {{"server", "h3co"}, {"cache-control", "no-store"}, {"x-a", "b"}}, ""));
    save(out / "h3_client_response", "encoded_content_length_mismatch",
         encode_response(get, 200, {{"content-length", "10"}}, "abc"));
    save(out / "h3_client_response", "encoded_big_field",
         encode_response(get, 200, {{"x-big", std::string(1500, 'v')}}, ""));

    // Datagrams the server receives: a handshake and one request (POST with a small body).
    {
        test::sans_io::session_pair p;
        std::vector<std::vector<std::uint8_t>> to_server;
        p.on_deliver = [&](const test::sans_io::datagram& d) {
            if (d.dir == test::sans_io::direction::to_server) to_server.push_back(d.bytes);
        };
        if (!p.handshake()) return 1;
        bool sent = false;
        asio::co_spawn(
            p.io(),
            [](test::sans_io::session_pair& p, bool& sent) -> asio::awaitable<void> {
                using h3co_fuzz::as_tuple;
                using test::sans_io::engine_op;
                auto& m = p.client().streams();
                auto st = co_await h3co_fuzz::detail::open_client_stream(p);
                if (!st) co_return;
                const h3co::request req{.method = "POST", .url = "/upload"};
                co_await engine_op<void(std::error_code)>(
                    p.io(), [&](auto op) { m.send_request_header(*st, req, std::move(op)); }, as_tuple);
                static const char body[] = "a small body";
                co_await engine_op<void(std::error_code, std::size_t)>(
                    p.io(), [&](auto op) { m.write(*st, asio::buffer(body, sizeof body - 1), true, std::move(op)); },
                    as_tuple);
                co_await engine_op<void(std::error_code)>(p.io(), [&](auto op) { m.finish(*st, std::move(op)); },
                                                          as_tuple);
                sent = true;
            }(p, sent),
            h3co_fuzz::detail::rethrow);
        p.run_until([&] { return sent; });
        const char* names[] = {"client_initial", "client_handshake", "client_short"};
        std::size_t short_headers = 0;
        for (std::size_t i = 0; i < to_server.size(); ++i) {
            const auto& d = to_server[i];
            const bool long_header = !d.empty() && (d[0] & 0x80) != 0;
            if (!long_header && short_headers++ >= 3) continue;
            const std::string kind = i == 0 ? names[0] : long_header ? names[1] : names[2];
            save(out / "server_datagram", kind + "_" + std::to_string(i), d);
        }
    }

    // Operation sequences (see pipe_ring.hpp for the encoding: an op byte, then its arguments).
    save(out / "byte_ring", "wrap_around",
         bytes_of({0x00, 0x10,                   // capacity 4096
                   0, 0x00, 0x0c,                // write 3072
                   2, 0x00, 0x08,                // read 2048
                   0, 0x00, 0x08,                // write 2048: wraps
                   4, 0x00, 0x00,                // spans from 0
                   1, 0x00, 0x04, 0x00, 0x02,    // peek 1024 at 512
                   3, 0x00, 0x10,                // consume everything
                   6,                            // shrink
                   7, 0x00, 0x20,                // capacity 8192
                   5}));                         // reserve
    save(out / "pipe", "write_read_close",
         bytes_of({0x00, 0x04,        // capacity 1024
                   0, 0x00, 0x08,     // write 2048 (waits for room)
                   1, 0x00, 0x02,     // read 512
                   9,                 // poll
                   1, 0x00, 0x10,     // read 4096
                   9, 4, 0x00,        // close the writer (eof)
                   1, 0x00, 0x10, 9}));
    save(out / "pipe", "views",
         bytes_of({0x00, 0x01,        // capacity 256
                   2, 9,              // view (waits)
                   0, 0x00, 0x04,     // write 1024: lent as it is
                   9, 3, 0x00, 0x01,  // consume 256
                   2, 9, 3, 0x00, 0x04,  // view, consume the rest
                   7, 4, 0x01, 9}));  // cancel the write, close with an error
    save(out / "pipe", "cancel_and_close_reader",
         bytes_of({0x00, 0x01, 1, 0x00, 0x01, 6, 9, 0, 0x00, 0x08, 9, 2, 9, 5, 9, 0, 0x00, 0x01, 9}));
    return 0;
}
