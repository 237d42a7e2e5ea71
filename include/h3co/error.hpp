// Error codes: every failure h3co reports is a std::error_code in one of four named categories.
// The TLS library's verify codes are mirrored here so that this header needs no TLS include.
#pragma once

#include <asio/error.hpp>

#include <climits>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace h3co {

/// h3co's own conditions (category "h3co").
enum class error {
    /// The peer ended the stream (FIN): no more bytes will come. Reads report it as Asio's own
    /// asio::error::eof (see end_of_stream()), which compares equal to this value.
    eof = 1,
    connection_closed,        ///< the connection is closed; the operation cannot proceed
    idle_timeout,             ///< no packet from the peer within the idle timeout
    handshake_timeout,        ///< the QUIC/TLS handshake did not finish in time
    handshake_failed,         ///< the TLS handshake failed for a reason other than the certificate
    alpn_mismatch,            ///< the peer does not speak HTTP/3 ("h3")
    going_away,               ///< the peer sent GOAWAY: no new requests on this connection
    broken_pipe,              ///< the other end of a pipe was closed before the operation finished
    already_open,             ///< the operation was already done on this stream (e.g. send_header twice)
    not_writable,             ///< writing is not possible in the stream's current state
    invalid_request,          ///< the request is malformed (missing or invalid method, URL or header)
    header_too_large,         ///< a header block exceeds the configured limit
    body_too_large,           ///< a body exceeds the configured limit
    content_length_mismatch,  ///< the body length differs from content-length
    resolve_failed,           ///< the host name did not resolve to any address
    protocol_error,           ///< the QUIC or HTTP/3 library reported a fatal internal error
    operation_in_progress,    ///< another operation of the same kind is pending on this object
    stream_stopped,           ///< the peer stopped reading this stream (STOP_SENDING): nothing more is taken
    no_interim_response,      ///< the final response arrived: no (more) interim 1xx response will come
    // ---- HTTP/3 extensions and versions (docs/design.md, "Versions") ----
    not_supported,       ///< the ngtcp2/nghttp3 stack h3co runs on cannot do this (see h3co::stack())
    not_negotiated,      ///< the extension is off in connection_options, or the peer's SETTINGS did not offer it
    datagram_too_large,  ///< the datagram exceeds what the peer accepts or what a packet on the path carries
    datagram_truncated,  ///< the datagram was larger than the buffer: what fit was copied, the rest dropped
    stateless_reset,          ///< the peer no longer knows the connection (a stateless reset: it restarted or lost it)
    request_timeout,          ///< a server reset the request: server_options::header_timeout or body_idle_timeout
    excessive_load,           ///< the peer sent more than a limit allows (connection_options::max_interim_responses)
    not_open,                 ///< the handle has no stream or pipe end: default-constructed, moved from, or closed
    // ---- TLS for deployments (tls.hpp) ----
    /// Mutual TLS: the server requires a client certificate and none was sent (client: the server
    /// refused us for it; server: a client came without one).
    client_certificate_required,
    /// Mutual TLS, client side: the server refused the client certificate (an unknown CA, expired,
    /// not for client authentication). The server sees the tls_error of its verification.
    client_certificate_rejected,
    /// tls_ciphers::chacha20_poly1305_only: the peer would not use TLS_CHACHA20_POLY1305_SHA256.
    cipher_not_allowed,
    /// session_cache::import_bytes: the bytes are not an exported session cache (or are cut short).
    session_cache_malformed,
    /// 0-RTT (connection_options::early_data): the server refused the early data, and a request
    /// sent early could not be sent again after the handshake (the application had reset it,
    /// or h3co did not make its HEADERS). The connection goes on: open the request again on it.
    early_data_rejected,
    // ---- connection migration (basic_connection::migrate) ----
    /// The connection cannot move now: its handshake is not confirmed yet, the server disabled
    /// active migration, or the server has given no spare connection ID for a new path.
    migration_unavailable,
    /// The new path did not validate: the server's PATH_RESPONSE never came back on it. The
    /// connection stays on its old path.
    path_validation_failed,
};

/// QUIC transport error codes as sent in CONNECTION_CLOSE (category "h3co.quic"), RFC 9000 §20.1.
/// 0x0100-0x01ff are TLS alerts: 0x100 + alert.
enum class quic_error : std::uint64_t {
    no_error = 0x0,
    internal_error = 0x1,
    connection_refused = 0x2,
    flow_control_error = 0x3,
    stream_limit_error = 0x4,
    stream_state_error = 0x5,
    final_size_error = 0x6,
    frame_encoding_error = 0x7,
    transport_parameter_error = 0x8,
    connection_id_limit_error = 0x9,
    protocol_violation = 0xa,
    invalid_token = 0xb,
    application_error = 0xc,
    crypto_buffer_exceeded = 0xd,
    key_update_error = 0xe,
    aead_limit_reached = 0xf,
    no_viable_path = 0x10,
};

/// HTTP/3 application error codes (category "h3co.http3"), RFC 9114 §8.1: what a peer sends in
/// RESET_STREAM, STOP_SENDING and application CONNECTION_CLOSE.
enum class h3_error : std::uint64_t {
    no_error = 0x100,
    general_protocol_error = 0x101,
    internal_error = 0x102,
    stream_creation_error = 0x103,
    closed_critical_stream = 0x104,
    frame_unexpected = 0x105,
    frame_error = 0x106,
    excessive_load = 0x107,
    id_error = 0x108,
    settings_error = 0x109,
    missing_settings = 0x10a,
    request_rejected = 0x10b,
    request_cancelled = 0x10c,
    request_incomplete = 0x10d,
    message_error = 0x10e,
    connect_error = 0x10f,
    version_fallback = 0x110,
    datagram_error = 0x33,  ///< H3_DATAGRAM_ERROR (RFC 9297): a malformed HTTP/3 datagram
};

/// Certificate verification failures (category "h3co.tls"); values are X.509 verify result codes.
enum class tls_error {
    certificate_not_yet_valid = 9,
    certificate_expired = 10,
    self_signed_certificate = 18,
    self_signed_certificate_in_chain = 19,
    unknown_issuer = 20,
    unable_to_verify_leaf = 21,
    invalid_purpose = 26,
    untrusted = 27,
    rejected = 28,
    hostname_mismatch = 62,
    ip_address_mismatch = 64,
    rejected_by_verify_hook = 50,  ///< client_tls::verify_hook returned false (X509_V_ERR_APPLICATION_VERIFICATION)
};

namespace detail {

class h3co_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "h3co"; }
    std::string message(int value) const override {
        switch (static_cast<error>(value)) {
        case error::eof: return "end of stream";
        case error::connection_closed: return "connection closed";
        case error::idle_timeout: return "idle timeout: no packet from the peer";
        case error::handshake_timeout: return "handshake timeout";
        case error::handshake_failed: return "TLS handshake failed";
        case error::alpn_mismatch: return "peer does not support HTTP/3 (ALPN h3)";
        case error::going_away: return "connection is going away (GOAWAY)";
        case error::broken_pipe: return "the other end of the pipe is closed";
        case error::already_open: return "operation already done on this stream";
        case error::not_writable: return "stream is not writable in its current state";
        case error::invalid_request: return "invalid request";
        case error::header_too_large: return "header block too large";
        case error::body_too_large: return "body too large";
        case error::content_length_mismatch: return "body length does not match content-length";
        case error::resolve_failed: return "host name did not resolve";
        case error::protocol_error: return "protocol library error";
        case error::operation_in_progress: return "an operation of this kind is already pending";
        case error::stream_stopped: return "the peer stopped reading this stream (STOP_SENDING)";
        case error::no_interim_response: return "the final response arrived: no more interim responses";
        case error::not_supported: return "not supported by the ngtcp2/nghttp3 version h3co runs on";
        case error::not_negotiated:
            return "extension not negotiated: off in connection_options, or not offered in the peer's SETTINGS";
        case error::datagram_too_large: return "datagram larger than the peer accepts or a packet carries";
        case error::datagram_truncated: return "datagram larger than the buffer: truncated";
        case error::stateless_reset: return "the peer no longer knows this connection (stateless reset)";
        case error::request_timeout: return "request timed out: the client sent nothing for too long";
        case error::excessive_load: return "the peer sent more than a limit allows";
        case error::not_open: return "the handle has no stream or pipe end (default-constructed, moved from, or closed)";
        case error::client_certificate_required: return "the server requires a client certificate and none was sent";
        case error::client_certificate_rejected: return "the server refused the client certificate";
        case error::cipher_not_allowed: return "the peer would not use the only cipher suite allowed (ChaCha20-Poly1305)";
        case error::session_cache_malformed: return "the bytes are not an exported h3co session cache";
        case error::early_data_rejected: return "the server rejected 0-RTT: the request sent early could not be sent again";
        case error::migration_unavailable: return "the connection cannot migrate now (handshake not confirmed, migration disabled by the server, or no spare connection ID)";
        case error::path_validation_failed: return "the new path did not validate: the connection stays on its old path";
        }
        return "unknown h3co error " + std::to_string(value);
    }
};

class quic_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "h3co.quic"; }
    std::string message(int value) const override {
        if (value >= 0x100 && value <= 0x1ff) return "TLS alert " + std::to_string(value - 0x100);
        switch (static_cast<quic_error>(value)) {
        case quic_error::no_error: return "NO_ERROR";
        case quic_error::internal_error: return "INTERNAL_ERROR";
        case quic_error::connection_refused: return "CONNECTION_REFUSED";
        case quic_error::flow_control_error: return "FLOW_CONTROL_ERROR";
        case quic_error::stream_limit_error: return "STREAM_LIMIT_ERROR";
        case quic_error::stream_state_error: return "STREAM_STATE_ERROR";
        case quic_error::final_size_error: return "FINAL_SIZE_ERROR";
        case quic_error::frame_encoding_error: return "FRAME_ENCODING_ERROR";
        case quic_error::transport_parameter_error: return "TRANSPORT_PARAMETER_ERROR";
        case quic_error::connection_id_limit_error: return "CONNECTION_ID_LIMIT_ERROR";
        case quic_error::protocol_violation: return "PROTOCOL_VIOLATION";
        case quic_error::invalid_token: return "INVALID_TOKEN";
        case quic_error::application_error: return "APPLICATION_ERROR";
        case quic_error::crypto_buffer_exceeded: return "CRYPTO_BUFFER_EXCEEDED";
        case quic_error::key_update_error: return "KEY_UPDATE_ERROR";
        case quic_error::aead_limit_reached: return "AEAD_LIMIT_REACHED";
        case quic_error::no_viable_path: return "NO_VIABLE_PATH";
        }
        return "QUIC transport error " + std::to_string(value);
    }
};

class h3_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "h3co.http3"; }
    std::string message(int value) const override {
        switch (static_cast<h3_error>(value)) {
        case h3_error::no_error: return "H3_NO_ERROR";
        case h3_error::general_protocol_error: return "H3_GENERAL_PROTOCOL_ERROR";
        case h3_error::internal_error: return "H3_INTERNAL_ERROR";
        case h3_error::stream_creation_error: return "H3_STREAM_CREATION_ERROR";
        case h3_error::closed_critical_stream: return "H3_CLOSED_CRITICAL_STREAM";
        case h3_error::frame_unexpected: return "H3_FRAME_UNEXPECTED";
        case h3_error::frame_error: return "H3_FRAME_ERROR";
        case h3_error::excessive_load: return "H3_EXCESSIVE_LOAD";
        case h3_error::id_error: return "H3_ID_ERROR";
        case h3_error::settings_error: return "H3_SETTINGS_ERROR";
        case h3_error::missing_settings: return "H3_MISSING_SETTINGS";
        case h3_error::request_rejected: return "H3_REQUEST_REJECTED";
        case h3_error::request_cancelled: return "H3_REQUEST_CANCELLED";
        case h3_error::request_incomplete: return "H3_REQUEST_INCOMPLETE";
        case h3_error::message_error: return "H3_MESSAGE_ERROR";
        case h3_error::connect_error: return "H3_CONNECT_ERROR";
        case h3_error::version_fallback: return "H3_VERSION_FALLBACK";
        case h3_error::datagram_error: return "H3_DATAGRAM_ERROR";
        }
        return "HTTP/3 application error " + std::to_string(value);
    }
};

class tls_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "h3co.tls"; }
    std::string message(int value) const override {
        std::string what;
        switch (static_cast<tls_error>(value)) {
        case tls_error::certificate_not_yet_valid: what = "certificate is not yet valid"; break;
        case tls_error::certificate_expired: what = "certificate has expired"; break;
        case tls_error::self_signed_certificate: what = "self-signed certificate"; break;
        case tls_error::self_signed_certificate_in_chain: what = "self-signed certificate in chain"; break;
        case tls_error::unknown_issuer: what = "unable to get local issuer certificate (untrusted CA)"; break;
        case tls_error::unable_to_verify_leaf: what = "unable to verify the first certificate"; break;
        case tls_error::invalid_purpose: what = "certificate not valid for server authentication"; break;
        case tls_error::untrusted: what = "certificate not trusted"; break;
        case tls_error::rejected: what = "certificate rejected"; break;
        case tls_error::hostname_mismatch: what = "host name does not match the certificate"; break;
        case tls_error::ip_address_mismatch: what = "IP address does not match the certificate"; break;
        case tls_error::rejected_by_verify_hook: what = "refused by the client's verify_hook"; break;
        default: what = "X509 verify error " + std::to_string(value); break;
        }
        return "certificate verification failed: " + what;
    }
};

/// A QUIC or HTTP/3 code above int range (codes are varints, up to 2^62 - 1, and an error_code holds
/// an int): a category of its own per value, so that the code keeps its full value and compares
/// equal to no named code (0x1_0000_010B is not H3_REQUEST_REJECTED). Its error_code value is 1.
class wide_code_category final : public std::error_category {
public:
    /// `known` false: the one category for codes past the registry's bound, value not kept.
    wide_code_category(bool h3, std::uint64_t value, bool known) noexcept : h3_(h3), known_(known), value_(value) {}
    const char* name() const noexcept override { return h3_ ? "h3co.http3.wide" : "h3co.quic.wide"; }
    std::string message(int) const override {
        std::string what = h3_ ? "HTTP/3 application error" : "QUIC transport error";
        if (!known_) return what + " above 2^31 (value not kept)";
        static const char digits[] = "0123456789abcdef";
        std::string hex;
        for (std::uint64_t v = value_; v != 0; v >>= 4) hex.insert(hex.begin(), digits[v & 0xf]);
        return what + " 0x" + hex;
    }
    bool h3() const noexcept { return h3_; }
    /// The code as sent on the wire, if kept.
    std::optional<std::uint64_t> value() const noexcept {
        return known_ ? std::optional<std::uint64_t>(value_) : std::nullopt;
    }

private:
    bool h3_;
    bool known_;
    std::uint64_t value_;
};

/// The category for `value` (above INT_MAX). Categories must outlive every error_code, so they are
/// never freed; a peer choosing fresh codes could grow the registry, so it stops at a bound and
/// later values (or any, if memory runs out) share one category without their value.
inline const std::error_category& wide_code(bool h3, std::uint64_t value) noexcept {
    constexpr std::size_t bound = 1024;
    static const wide_code_category beyond_quic(false, 0, false);
    static const wide_code_category beyond_h3(true, 0, false);
    const std::error_category& beyond = h3 ? static_cast<const std::error_category&>(beyond_h3) : beyond_quic;
    try {
        static std::mutex mutex;
        static auto* known = new std::map<std::pair<bool, std::uint64_t>, const wide_code_category*>;
        static auto* storage = new std::deque<wide_code_category>;
        std::lock_guard lock(mutex);
        if (auto it = known->find({h3, value}); it != known->end()) return *it->second;
        if (storage->size() >= bound) return beyond;
        const auto* made = &storage->emplace_back(h3, value, true);
        known->emplace(std::pair{h3, value}, made);
        return *made;
    } catch (...) {
        return beyond;
    }
}

}  // namespace detail

/// The category of h3co::error, named "h3co".
inline const std::error_category& h3co_category() noexcept {
    static const detail::h3co_category_impl instance;
    return instance;
}
/// The category of h3co::quic_error, named "h3co.quic"; messages name the RFC 9000 code.
inline const std::error_category& quic_category() noexcept {
    static const detail::quic_category_impl instance;
    return instance;
}
/// The category of h3co::h3_error, named "h3co.http3"; messages name the RFC 9114 code.
inline const std::error_category& h3_category() noexcept {
    static const detail::h3_category_impl instance;
    return instance;
}
/// The category of h3co::tls_error, named "h3co.tls".
inline const std::error_category& tls_category() noexcept {
    static const detail::tls_category_impl instance;
    return instance;
}

/// `e` as an error_code in h3co_category(). These overloads, with the std::is_error_code_enum
/// specializations below, let each enum convert implicitly: `ec == h3co::error::eof` works.
inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), h3co_category()}; }
/// `e` as an error_code in quic_category() (see make_quic_error_code for values above int range).
inline std::error_code make_error_code(quic_error e) noexcept;
/// `e` as an error_code in h3_category() (see make_h3_error_code for values above int range).
inline std::error_code make_error_code(h3_error e) noexcept;
/// `e` as an error_code in tls_category().
inline std::error_code make_error_code(tls_error e) noexcept { return {static_cast<int>(e), tls_category()}; }

/// The end of a stream, as every h3co read reports it: Asio's own asio::error::eof, so that
/// asio::async_read, Beast and any other AsyncReadStream consumer see a normal end of data.
inline std::error_code end_of_stream() noexcept { return asio::error::eof; }

/// The code a peer sent in RESET_STREAM / STOP_SENDING / CONNECTION_CLOSE, as an error_code: in
/// h3_category() up to INT_MAX; above, in a category of its own that no named code equals (its
/// message and wire_error_code() give the full value).
inline std::error_code make_h3_error_code(std::uint64_t app_error_code) noexcept {
    if (app_error_code > static_cast<std::uint64_t>(INT_MAX)) return {1, detail::wide_code(true, app_error_code)};
    return {static_cast<int>(app_error_code), h3_category()};
}
/// The transport error code of a peer's CONNECTION_CLOSE, as an error_code (above INT_MAX: as
/// make_h3_error_code does).
inline std::error_code make_quic_error_code(std::uint64_t transport_error_code) noexcept {
    if (transport_error_code > static_cast<std::uint64_t>(INT_MAX))
        return {1, detail::wide_code(false, transport_error_code)};
    return {static_cast<int>(transport_error_code), quic_category()};
}

inline std::error_code make_error_code(quic_error e) noexcept { return make_quic_error_code(static_cast<std::uint64_t>(e)); }
inline std::error_code make_error_code(h3_error e) noexcept { return make_h3_error_code(static_cast<std::uint64_t>(e)); }

/// The QUIC or HTTP/3 code `ec` stands for, as sent on the wire (all 62 bits); empty for codes of
/// other categories, and for a code above INT_MAX once a process has seen over 1024 distinct ones.
inline std::optional<std::uint64_t> wire_error_code(const std::error_code& ec) noexcept {
    if (ec.category() == h3_category() || ec.category() == quic_category())
        return static_cast<std::uint64_t>(static_cast<unsigned>(ec.value()));
    if (const auto* wide = dynamic_cast<const detail::wide_code_category*>(&ec.category())) return wide->value();
    return std::nullopt;
}

}  // namespace h3co

template <> struct std::is_error_code_enum<h3co::error> : std::true_type {};
template <> struct std::is_error_code_enum<h3co::quic_error> : std::true_type {};
template <> struct std::is_error_code_enum<h3co::h3_error> : std::true_type {};
template <> struct std::is_error_code_enum<h3co::tls_error> : std::true_type {};

namespace h3co {

/// `ec == h3co::error::eof` holds for asio::error::eof as well (what reads report, see
/// end_of_stream()); every other value compares as its error_code.
inline bool operator==(const std::error_code& ec, error e) noexcept {
    if (ec == make_error_code(e)) return true;
    return e == error::eof && ec == std::error_code(asio::error::eof);
}

}  // namespace h3co
