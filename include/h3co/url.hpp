// URLs: the one place h3co takes them apart, for connecting (host, port) and for a request's
// pseudo-headers (:scheme, :authority, :path).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace h3co {

/// Parts of an absolute URL such as "https://[::1]:8443/upload?x=1".
struct url_parts {
    std::string host;          ///< host name or IP address, IPv6 without brackets
    std::uint16_t port = 443;  ///< the URL's port, 443 if it names none
    std::string scheme;        ///< the scheme as written, such as "https"
    std::string authority;     ///< host and port as written (IPv6 in brackets): the :authority
    std::string path = "/";    ///< path and query, without a fragment ("/" if the URL has none)
};

/// Takes an absolute URL apart; nullopt if it has no "scheme://", no host, or a port that is not a
/// number up to 65535. The scheme is not checked.
inline std::optional<url_parts> parse_url(std::string_view url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos || scheme_end == 0) return std::nullopt;
    url_parts parts;
    parts.scheme = url.substr(0, scheme_end);
    const auto start = scheme_end + 3;
    const auto end = url.find_first_of("/?#", start);
    const std::string_view authority = url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    parts.authority = authority;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        parts.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return std::nullopt;
            port = authority.substr(close + 2);
        }
    } else {
        const auto colon = authority.rfind(':');
        parts.host = authority.substr(0, colon);
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }
    if (parts.host.empty()) return std::nullopt;
    if (!port.empty()) {
        unsigned long value = 0;
        for (char c : port) {
            if (c < '0' || c > '9') return std::nullopt;
            value = value * 10 + static_cast<unsigned long>(c - '0');
            if (value > 65535) return std::nullopt;
        }
        parts.port = static_cast<std::uint16_t>(value);
    }
    if (end != std::string_view::npos) {
        std::string_view rest = url.substr(end);
        rest = rest.substr(0, rest.find('#'));
        if (!rest.empty()) parts.path = rest.front() == '/' ? std::string(rest) : "/" + std::string(rest);
    }
    return parts;
}

/// The host and port of an absolute URL: parse_url() under its older name.
inline std::optional<url_parts> parse_authority(const std::string& url) { return parse_url(url); }

}  // namespace h3co
