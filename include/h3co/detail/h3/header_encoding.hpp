// Header blocks to send, as nghttp3 name/value pairs: a request's pseudo-headers from its URL, a
// response's :status, and the user's fields (names lowercased, names and values checked). Included
// only by the engine's implementation files.
#pragma once

#include <h3co/detail/ascii.hpp>
#include <h3co/message.hpp>
#include <h3co/url.hpp>

#include <nghttp3/nghttp3.h>

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace h3co::detail::header_encoding {

/// Strings the pairs point into (lowercased names, the request's pseudo-header values). A deque:
/// adding one never moves the others, whose pointers are already in the pairs.
using name_storage = std::deque<std::string>;

/// A pair pointing at `name` and `value`, which must outlive the submit call (nghttp3 copies them).
inline nghttp3_nv nv(std::string_view name, std::string_view value) {
    return nghttp3_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                      NGHTTP3_NV_FLAG_NONE};
}

/// A connection-specific field, which HTTP/3 forbids (RFC 9114 §4.2): the peer would treat the
/// message as malformed. `name` is lowercased; `te` is allowed only as exactly "trailers".
inline bool connection_specific(std::string_view name, std::string_view value) {
    if (name == "te") return !ascii_iequals(value, "trailers");
    return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
           name == "transfer-encoding" || name == "upgrade";
}

/// Appends user fields with lowercased names; false if a name or value is not allowed, or the field
/// is connection-specific.
inline bool append_fields(const fields& headers, std::vector<nghttp3_nv>& nva, name_storage& storage) {
    for (const auto& f : headers) {
        std::string name = f.name;
        for (auto& c : name) c = ascii_lower(c);
        if (name.empty() || name.front() == ':') return false;
        if (connection_specific(name, f.value)) return false;
        if (!nghttp3_check_header_name(reinterpret_cast<const std::uint8_t*>(name.data()), name.size())) return false;
        if (!nghttp3_check_header_value(reinterpret_cast<const std::uint8_t*>(f.value.data()), f.value.size()))
            return false;
        storage.push_back(std::move(name));
        nva.push_back(nv(storage.back(), f.value));
    }
    return true;
}

/// :method, :scheme, :authority, :path and the fields of `req`. A URL that is a bare path uses
/// `default_authority` and https. nullopt when the request is not valid.
inline std::optional<std::vector<nghttp3_nv>> request(const h3co::request& req, const std::string& default_authority,
                                                      name_storage& storage) {
    url_parts parts;
    if (req.url.find("://") != std::string::npos) {
        auto parsed = parse_url(req.url);
        if (!parsed) return std::nullopt;
        parts = std::move(*parsed);
    } else {
        parts.scheme = "https";
        parts.authority = default_authority;
        std::string_view path = req.url;
        path = path.substr(0, path.find('#'));
        if (!path.empty()) parts.path = path;
    }
    if (parts.path.front() != '/' && parts.path != "*") return std::nullopt;
    if (req.method.empty() || parts.authority.empty()) return std::nullopt;
    if (!req.protocol.empty() && req.method != "CONNECT") return std::nullopt;  // RFC 9220 extended CONNECT
    storage.push_back(std::move(parts.scheme));
    storage.push_back(std::move(parts.authority));
    storage.push_back(std::move(parts.path));
    std::vector<nghttp3_nv> nva;
    nva.push_back(nv(":method", req.method));
    nva.push_back(nv(":scheme", storage[0]));
    nva.push_back(nv(":authority", storage[1]));
    nva.push_back(nv(":path", storage[2]));
    if (!req.protocol.empty()) nva.push_back(nv(":protocol", req.protocol));
    if (!append_fields(req.headers, nva, storage)) return std::nullopt;
    return nva;
}

/// :status and `headers`.
inline std::optional<std::vector<nghttp3_nv>> response(int status, const fields& headers,
                                                       name_storage& storage) {
    storage.push_back(std::to_string(status));
    std::vector<nghttp3_nv> nva;
    nva.push_back(nv(":status", storage.back()));
    if (!append_fields(headers, nva, storage)) return std::nullopt;
    return nva;
}

/// Exactly `raw`, unchecked: pseudo-headers, case and characters as given (tests only).
inline std::vector<nghttp3_nv> raw(const fields& raw) {
    std::vector<nghttp3_nv> nva;
    for (const auto& f : raw) nva.push_back(nv(f.name, f.value));
    return nva;
}

}  // namespace h3co::detail::header_encoding
