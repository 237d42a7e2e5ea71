// A received header block, field by field, into the stream's request head (server) or response head
// (client), counted against the limit on header size. No nghttp3 type here: the callback maps its
// tokens to header_token.
#pragma once

#include <h3co/detail/stream_state.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace h3co::detail {

enum class header_token { other, method, scheme, authority, path, status, protocol };

/// A new header block starts on `s` (a client's final response may follow interim 1xx ones).
inline void begin_received_headers(stream_state& s, bool server) {
    if (server) return;
    s.response = response_head{};
    s.header_bytes = 0;
}

/// The trailer block (fields after the body) starts on `s`.
inline void begin_received_trailers(stream_state& s) {
    s.trailers.clear();
    s.header_bytes = 0;
    s.receiving_trailers = true;
}

/// One received trailer field, counted against `max_header_bytes` like a header field.
inline void add_received_trailer(stream_state& s, std::string_view name, std::string_view value,
                                 std::size_t max_header_bytes) {
    s.header_bytes += name.size() + value.size() + 32;
    if (s.header_bytes > max_header_bytes) {
        s.header_overflow = true;
        return;
    }
    if (!name.empty() && name.front() != ':') s.trailers.push_back({std::string(name), std::string(value)});
}

/// One received field. Each counts name + value + 32 (RFC 9114 §4.2.2) against
/// `max_header_bytes`; past it, fields are dropped and header_overflow is set (the stream machine
/// refuses the block when it ends).
inline void add_received_field(stream_state& s, bool server, header_token token, std::string_view name,
                               std::string_view value, std::size_t max_header_bytes) {
    s.header_bytes += name.size() + value.size() + 32;
    if (s.header_bytes > max_header_bytes) {
        s.header_overflow = true;
        return;
    }
    const bool regular = !name.empty() && name.front() != ':';
    if (server) {
        switch (token) {
        case header_token::method: s.request.method = value; break;
        case header_token::scheme: s.request.scheme = value; break;
        case header_token::authority: s.request.authority = value; break;
        case header_token::path: s.request.path = value; break;
        case header_token::protocol: s.request.protocol = value; break;  // extended CONNECT (RFC 9220)
        default:
            if (regular) s.request.headers.push_back({std::string(name), std::string(value)});
        }
        return;
    }
    if (token == header_token::status) {
        int status = 0;
        for (char c : value) status = status * 10 + (c - '0');  // nghttp3 checked it is three digits
        s.response.status = status;
    } else if (regular) {
        s.response.headers.push_back({std::string(name), std::string(value)});
    }
}

}  // namespace h3co::detail
