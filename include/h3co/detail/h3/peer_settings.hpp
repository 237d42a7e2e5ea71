// The peer's HTTP/3 SETTINGS, read by h3co itself from the start of the peer's control stream before
// nghttp3 sees the bytes. nghttp3 0.8 reports no SETTINGS at all, and nghttp3 1.x before 1.14
// drops SETTINGS_ENABLE_CONNECT_PROTOCOL on clients (its recv_settings always shows 0 there), so
// one reader serves both stacks: SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220) and SETTINGS_H3_DATAGRAM
// (RFC 9297). nghttp3 still parses and validates the same bytes; a malformed frame closes the
// connection there. No nghttp3 type here.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace h3co::detail {

class peer_settings_reader {
public:
    /// Bytes `data` of the peer's unidirectional stream `id`, in stream order from its start (QUIC
    /// delivers them so). Returns true when this call completed the SETTINGS frame.
    bool feed(std::int64_t id, const std::uint8_t* data, std::size_t len) {
        if (complete_ || std::find(others_.begin(), others_.end(), id) != others_.end()) return false;
        auto it = std::find_if(partial_.begin(), partial_.end(), [id](const partial& p) { return p.id == id; });
        if (it == partial_.end()) it = partial_.insert(partial_.end(), partial{id, {}});
        it->bytes.insert(it->bytes.end(), data, data + len);
        return parse(*it);
    }

    /// The SETTINGS frame has arrived (or could not be read: then every extension counts as off).
    bool complete() const noexcept { return complete_; }
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL = 1: the peer (a server) accepts :protocol.
    bool enable_connect_protocol() const noexcept { return connect_protocol_; }
    /// SETTINGS_H3_DATAGRAM = 1: the peer takes HTTP/3 datagrams.
    bool h3_datagram() const noexcept { return h3_datagram_; }

    static constexpr std::uint64_t setting_enable_connect_protocol = 0x08;
    static constexpr std::uint64_t setting_h3_datagram = 0x33;
    /// A SETTINGS frame is a few bytes; more than this is not buffered (the extensions count as off).
    static constexpr std::size_t max_frame_bytes = 16 * 1024;
    /// Other unidirectional streams remembered before SETTINGS arrive (QPACK's two, and a few more).
    static constexpr std::size_t max_other_streams = 64;

private:
    struct partial {
        std::int64_t id;
        std::vector<std::uint8_t> bytes;
    };

    /// RFC 9000 §16 variable-length integer at `pos`; nullopt when more bytes are needed.
    static std::optional<std::uint64_t> varint(const std::vector<std::uint8_t>& b, std::size_t& pos) {
        if (pos >= b.size()) return std::nullopt;
        const std::size_t n = std::size_t{1} << (b[pos] >> 6);
        if (pos + n > b.size()) return std::nullopt;
        std::uint64_t v = b[pos] & 0x3f;
        for (std::size_t i = 1; i < n; ++i) v = (v << 8) | b[pos + i];
        pos += n;
        return v;
    }

    bool finish() {
        complete_ = true;
        partial_.clear();
        partial_.shrink_to_fit();
        others_.clear();
        return true;
    }

    bool parse(partial& p) {
        std::size_t pos = 0;
        const auto type = varint(p.bytes, pos);
        if (!type) return false;
        if (*type != 0x00) {  // not the control stream (QPACK, or a type to ignore)
            if (others_.size() >= max_other_streams) return finish();  // a peer that holds SETTINGS back
            others_.push_back(p.id);
            partial_.erase(std::find_if(partial_.begin(), partial_.end(), [&](const partial& q) { return q.id == p.id; }));
            return false;
        }
        const auto frame_type = varint(p.bytes, pos);
        const auto length = frame_type ? varint(p.bytes, pos) : std::nullopt;
        if (!length) return p.bytes.size() > max_frame_bytes ? finish() : false;
        // The first frame must be SETTINGS (RFC 9114 §6.2.1); nghttp3 closes the connection otherwise.
        if (*frame_type != 0x04 || *length > max_frame_bytes) return finish();
        if (p.bytes.size() - pos < *length) return false;
        const std::size_t end = pos + static_cast<std::size_t>(*length);
        while (pos < end) {
            const auto id = varint(p.bytes, pos);
            const auto value = id ? varint(p.bytes, pos) : std::nullopt;
            if (!value || pos > end) break;  // malformed: nghttp3 closes the connection
            if (*id == setting_enable_connect_protocol) connect_protocol_ = *value == 1;
            if (*id == setting_h3_datagram) h3_datagram_ = *value == 1;
        }
        return finish();
    }

    std::vector<partial> partial_;     ///< peer uni streams whose type is not known yet (at most a few)
    std::vector<std::int64_t> others_; ///< peer uni streams that are not the control stream
    bool complete_ = false;
    bool connect_protocol_ = false;
    bool h3_datagram_ = false;
};

}  // namespace h3co::detail
