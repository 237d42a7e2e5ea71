// What travels in HEADERS frames: requests and responses, as plain values.
#pragma once

#include <h3co/detail/ascii.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace h3co {

/// One header field.
struct field {
    std::string name;   ///< lowercase, as HTTP/3 requires
    std::string value;  ///< the value, as sent
};

/// Header fields in the order received or to be sent.
class fields : public std::vector<field> {
public:
    using std::vector<field>::vector;

    /// The first value of `name` (case-insensitive), if present.
    std::optional<std::string_view> find(std::string_view name) const {
        auto it = std::find_if(begin(), end(), [&](const field& f) { return detail::ascii_iequals(f.name, name); });
        if (it == end()) return std::nullopt;
        return std::string_view(it->value);
    }
};

/// A request as the client sends it. `url` is absolute ("https://host:port/path?q") or a path
/// ("/path", then the connection's authority is used).
struct request {
    std::string method = "GET";  ///< sent as :method
    std::string url;             ///< gives :scheme, :authority and :path
    h3co::fields headers;        ///< regular fields, after the pseudo-headers
    /// Extended CONNECT (RFC 9220): sent as :protocol (e.g. "websocket", "connect-udp") with method
    /// "CONNECT". send_header() waits for the server's SETTINGS and fails with error::not_negotiated
    /// unless the server offered SETTINGS_ENABLE_CONNECT_PROTOCOL. Empty: an ordinary request.
    std::string protocol{};
    /// 0-RTT (connection_options::early_data): send this request early even though its method is
    /// not GET, HEAD or OPTIONS. Only for requests that are safe to replay: an attacker may
    /// resend early data. A server may answer 425 Too Early (RFC 8470); basic_client retries then.
    bool early_data{false};
};

/// A request as the server receives it.
struct request_head {
    std::string method;     ///< :method
    std::string scheme;     ///< :scheme
    std::string authority;  ///< :authority (host and port)
    std::string path;       ///< path and query, as sent in :path
    h3co::fields headers;   ///< the regular fields, pseudo-headers excluded
    std::string protocol{}; ///< :protocol of an extended CONNECT (RFC 9220), else empty
};

/// A response's status line and fields (interim 1xx responses are skipped).
struct response_head {
    int status = 0;        ///< :status, such as 200
    h3co::fields headers;  ///< the regular fields, :status excluded
};

}  // namespace h3co
