// HTTP/3 frame sequences that nghttp3 never sends, written by hand on a raw request stream
// (h3co::testing::start_raw): unknown frame types must be ignored, frames in the wrong place
// must close the offending connection with H3_FRAME_UNEXPECTED (RFC 9114 §4.1, §7.2.8, §9),
// and other connections must not notice.
#include "support/test_support.hpp"

#include <asio/experimental/as_tuple.hpp>

#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace raw_frames_test {

// ---- writing frames ---------------------------------------------------------------------------

/// A QUIC variable-length integer (RFC 9000 §16).
void put_varint(std::string& out, std::uint64_t v) {
    int bytes = v < 0x40 ? 1 : v < 0x4000 ? 2 : v < 0x40000000 ? 4 : 8;
    const std::uint8_t tag = bytes == 1 ? 0x00 : bytes == 2 ? 0x40 : bytes == 4 ? 0x80 : 0xc0;
    for (int i = bytes - 1; i >= 0; --i) {
        auto byte = static_cast<std::uint8_t>(v >> (8 * i));
        if (i == bytes - 1) byte |= tag;
        out.push_back(static_cast<char>(byte));
    }
}

std::string frame(std::uint64_t type, std::string_view payload) {
    std::string out;
    put_varint(out, type);
    put_varint(out, payload.size());
    out += payload;
    return out;
}

/// An integer with an N-bit prefix after `high_bits` (RFC 7541 §5.1, used by QPACK).
void put_prefixed_int(std::string& out, std::uint8_t high_bits, int prefix_bits, std::uint64_t v) {
    const std::uint64_t max_prefix = (1u << prefix_bits) - 1;
    if (v < max_prefix) {
        out.push_back(static_cast<char>(high_bits | v));
        return;
    }
    out.push_back(static_cast<char>(high_bits | max_prefix));
    for (v -= max_prefix; v >= 128; v >>= 7) out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    out.push_back(static_cast<char>(v));
}

/// A QPACK field section using neither the dynamic table nor Huffman coding: every field is a
/// literal field line with a literal name (RFC 9204 §4.5.6).
std::string qpack_literal_block(const h3co::fields& fields) {
    std::string out(2, '\0');  // Required Insert Count 0, Base 0
    for (const auto& f : fields) {
        put_prefixed_int(out, 0x20, 3, f.name.size());
        out += f.name;
        put_prefixed_int(out, 0x00, 7, f.value.size());
        out += f.value;
    }
    return out;
}

constexpr std::uint64_t data_type = 0x00, headers_type = 0x01, settings_type = 0x04;

// ---- reading frames --------------------------------------------------------------------------

std::uint64_t get_varint(std::string_view& in) {
    REQUIRE_FALSE(in.empty());
    const auto first = static_cast<std::uint8_t>(in[0]);
    const std::size_t bytes = std::size_t{1} << (first >> 6);
    REQUIRE(in.size() >= bytes);
    std::uint64_t v = first & 0x3f;
    for (std::size_t i = 1; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[i]);
    in.remove_prefix(bytes);
    return v;
}

struct parsed_frame {
    std::uint64_t type;
    std::string payload;
};

std::vector<parsed_frame> parse_frames(std::string_view in) {
    std::vector<parsed_frame> frames;
    while (!in.empty()) {
        const auto type = get_varint(in);
        const auto len = get_varint(in);
        REQUIRE(in.size() >= len);
        frames.push_back({type, std::string(in.substr(0, len))});
        in.remove_prefix(len);
    }
    return frames;
}

// ---- a server and a raw exchange ---------------------------------------------------------------

/// /echo answers 200 with the size of the body it read; counts how many handlers ran.
struct echo_server {
    h3co::server server;
    std::shared_ptr<int> handled = std::make_shared<int>(0);
    std::uint16_t port = 0;

    explicit echo_server(asio::io_context& io) : server(test::executor(io), test::server_identity()) {
        server.handle("/echo", [handled = handled](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
            ++*handled;
            std::array<char, 4096> buf;
            std::size_t total = 0;
            for (;;) {
                auto [ec, n] = co_await req.read_some(asio::buffer(buf), tuple);
                total += n;
                if (ec == h3co::error::eof) break;
                if (ec) co_return;
            }
            const std::string size = std::to_string(total);
            co_await res.send_header(200);
            co_await res.write(asio::buffer(size));
        });
        port = server.listen("127.0.0.1", 0).port();
    }

    std::string request_headers() const {
        const h3co::fields fields{{":method", "POST"},
                                  {":scheme", "https"},
                                  {":authority", "127.0.0.1:" + std::to_string(port)},
                                  {":path", "/echo"}};
        return frame(headers_type, qpack_literal_block(fields));
    }
};

struct raw_outcome {
    std::string received;  ///< the server's bytes on the stream, unparsed
    std::error_code error;  ///< how reading ended, if not with a clean FIN
};

/// Sends `bytes` and FIN on a raw stream of `conn`, then reads everything the server sends back.
asio::awaitable<raw_outcome> raw_exchange(h3co::connection& conn, const std::string& bytes) {
    raw_outcome out;
    auto [open_ec, stream] = co_await conn.open_request_stream(tuple);
    REQUIRE_FALSE(open_ec);
    auto [raw_ec] = co_await h3co::testing::start_raw(stream, tuple);
    REQUIRE_FALSE(raw_ec);
    auto [write_ec, written] = co_await stream.write(asio::buffer(bytes), tuple);
    if (write_ec) co_return raw_outcome{{}, write_ec};
    CHECK(written == bytes.size());
    co_await stream.finish(tuple);
    std::array<char, 1024> buf;
    for (;;) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        out.received.append(buf.data(), n);
        if (ec == h3co::error::eof) break;
        if (ec) {
            out.error = ec;
            break;
        }
    }
    co_return out;
}

/// A regular request on `conn`; returns the response body ("5" from /echo for "hello").
asio::awaitable<std::string> good_exchange(h3co::connection& conn) {
    auto stream = co_await conn.open_request_stream();
    const h3co::request req{.method = "POST", .url = "/echo"};
    co_await stream.send_header(req);
    const std::string body = "hello";
    co_await stream.write(asio::buffer(body));
    co_await stream.finish();
    const auto head = co_await stream.read_response();
    CHECK(head.status == 200);
    std::string reply;
    std::array<char, 64> buf;
    for (;;) {
        auto [ec, n] = co_await stream.read_some(asio::buffer(buf), tuple);
        reply.append(buf.data(), n);
        if (ec) break;
    }
    co_return reply;
}


TEST_CASE("raw frames: the frame writer round-trips through the frame reader", "[raw-frames]") {
    const std::string bytes = frame(0x21, "x") + frame(headers_type, std::string(300, 'h')) + frame(0x1f * 1000 + 0x21, "");
    const auto frames = parse_frames(bytes);
    REQUIRE(frames.size() == 3);
    CHECK(frames[0].type == 0x21);
    CHECK(frames[1].payload.size() == 300);
    CHECK(frames[2].type == 0x1f * 1000 + 0x21);
    std::string big;
    put_prefixed_int(big, 0x20, 3, 1337);  // RFC 7541 C.1.2's example, with a 3-bit prefix
    CHECK(big == std::string("\x27\xb2\x0a", 3));
}

TEST_CASE("bad input: unknown frame types on a request stream are ignored", "[bad-input][raw-frames]") {
    asio::io_context io;
    echo_server srv(io);
    const std::string bytes = frame(0x21, "reserved before HEADERS")  // 0x1f*N+0x21: reserved, §7.2.8
                              + srv.request_headers()                 //
                              + frame(0x1f * 3 + 0x21, "")            // empty, between HEADERS and DATA
                              + frame(data_type, "hel")               //
                              + frame(0x2f, "an unassigned type")     // not reserved, still unknown
                              + frame(data_type, "lo")                //
                              + frame(0x1f * 70 + 0x21, std::string(2000, 'u'));
    const auto out = test::run(io, [&]() -> asio::awaitable<raw_outcome> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        co_return co_await raw_exchange(conn, bytes);
    }());
    CHECK_FALSE(out.error);
    CHECK(*srv.handled == 1);
    const auto frames = parse_frames(out.received);
    REQUIRE_FALSE(frames.empty());
    CHECK(frames[0].type == headers_type);
    // :status 200 is entry 25 of QPACK's static table: an indexed field line 0b11xxxxxx.
    REQUIRE(frames[0].payload.size() >= 3);
    CHECK(frames[0].payload.substr(0, 3) == std::string("\x00\x00\xd9", 3));
    std::string body;
    for (const auto& f : frames)
        if (f.type == data_type) body += f.payload;
    CHECK(body == "5");  // the server read "hello": the unknown frames' payloads were skipped
}

TEST_CASE("bad input: frames out of place close that connection with H3_FRAME_UNEXPECTED", "[bad-input][raw-frames]") {
    struct misplaced {
        const char* what;
        std::string bytes;
    };
    asio::io_context io;
    echo_server srv(io);
    const std::vector<misplaced> cases{
        {"DATA before HEADERS", frame(data_type, "early") + srv.request_headers() + frame(data_type, "x")},
        {"SETTINGS on a request stream", srv.request_headers() + frame(settings_type, "")},
        {"HTTP/2's PING (0x06), reserved in HTTP/3", srv.request_headers() + frame(0x06, std::string(8, '\0'))},
    };
    for (const auto& c : cases) {
        SECTION(c.what) {
            test::run(io, [&]() -> asio::awaitable<void> {
                auto ex = test::executor(io);
                auto bystander = co_await h3co::connect(ex, std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
                auto offender = co_await h3co::connect(ex, std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
                const auto out = co_await raw_exchange(offender, c.bytes);
                CHECK(out.error == h3co::h3_error::frame_unexpected);
                CHECK_FALSE(offender.is_open());
                const int handled_before = *srv.handled;
                const std::string reply = co_await good_exchange(bystander);
                CHECK(reply == "5");
                CHECK(*srv.handled == handled_before + 1);
                CHECK(bystander.is_open());
            }());
        }
    }
}

TEST_CASE("bad input: an uppercase header name makes the request malformed (H3_MESSAGE_ERROR)",
          "[bad-input][raw-frames]") {
    asio::io_context io;
    echo_server srv(io);
    const h3co::fields fields{{":method", "POST"},
                              {":scheme", "https"},
                              {":authority", "127.0.0.1:" + std::to_string(srv.port)},
                              {":path", "/echo"},
                              {"X-Upper", "1"}};  // RFC 9114 §4.2: names must be lowercase
    const std::string bytes = frame(headers_type, qpack_literal_block(fields)) + frame(data_type, "hello");
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), srv.port, test::trusting_test_ca());
        const auto out = co_await raw_exchange(conn, bytes);
        CHECK(out.error == h3co::h3_error::message_error);  // RFC 9114 §4.1.2: a stream error
        CHECK(*srv.handled == 0);
        const std::string reply = co_await good_exchange(conn);  // the same connection goes on
        CHECK(reply == "5");
        CHECK(conn.is_open());
    }());
}

TEST_CASE("bad input: header names with invalid characters never reach the handler", "[bad-input][raw-frames]") {
    // nghttp3 0.8 removes such a field (NGHTTP3_ERR_REMOVE_HTTP_HEADER) instead of refusing the
    // request as RFC 9114 §4.2 asks; what h3co can promise is that the handler never sees it.
    asio::io_context io;
    h3co::server server(test::executor(io), test::server_identity());
    auto seen = std::make_shared<std::vector<std::string>>();
    server.handle("/names", [seen](h3co::server_request& req, h3co::response& res) -> asio::awaitable<void> {
        for (const auto& f : req.headers()) seen->push_back(f.name);
        co_await res.send_header(204);
    });
    const auto port = server.listen("127.0.0.1", 0).port();
    const h3co::fields fields{{":method", "GET"},   {":scheme", "https"}, {":authority", "127.0.0.1:" + std::to_string(port)},
                              {":path", "/names"}, {"x bad", "1"},       {"x:y", "2"},
                              {"x-good", "3"}};
    const std::string bytes = frame(headers_type, qpack_literal_block(fields));
    test::run(io, [&]() -> asio::awaitable<void> {
        auto conn = co_await h3co::connect(test::executor(io), std::string("127.0.0.1"), port, test::trusting_test_ca());
        const auto out = co_await raw_exchange(conn, bytes);
        CHECK_FALSE(out.error);
        const auto frames = parse_frames(out.received);
        REQUIRE_FALSE(frames.empty());
        CHECK(frames[0].type == headers_type);
    }());
    CHECK(*seen == std::vector<std::string>{"x-good"});
}

}  // namespace raw_frames_test
