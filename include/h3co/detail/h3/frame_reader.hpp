// HTTP/3 framing on a request stream (RFC 9114 §7.1): each frame is a variable-length type, a
// variable-length length and a payload. The reader follows a stream's bytes as they go by, so
// that a stream can leave nghttp3 at any byte (a server handler's take_over()) and be parsed here
// from that byte on, DATA frames and all, with no message checks (content-length) left to apply.
#pragma once

#include <cstddef>
#include <cstdint>

namespace h3co::detail {

inline constexpr std::uint64_t h3_frame_data = 0x0;
inline constexpr std::uint64_t h3_frame_headers = 0x1;

/// Frame types that must never appear on a request stream (RFC 9114 §7.2.3-7.2.7, and HTTP/2's
/// reserved types, §7.2.8): a connection error H3_FRAME_UNEXPECTED.
inline bool unexpected_on_request_stream(std::uint64_t type) noexcept {
    switch (type) {
    case 0x2: case 0x3: case 0x4: case 0x5: case 0x6: case 0x7: case 0x8: case 0x9: case 0xd: return true;
    default: return false;
    }
}

class frame_reader {
public:
    /// Feeds the stream's next `len` bytes. `on_payload(type, data, n)` gets each frame's payload
    /// bytes as they pass (a payload may come in several calls); returns false to stop (the rest is
    /// not read). Returns how many bytes were framing (types and lengths), or -1 when stopped.
    template <class OnPayload>
    std::ptrdiff_t feed(const std::uint8_t* data, std::size_t len, OnPayload&& on_payload) {
        std::size_t framing = 0;
        while (len > 0) {
            if (in_payload_) {
                const std::size_t n = remaining_ < len ? static_cast<std::size_t>(remaining_) : len;
                if (n > 0 && !on_payload(type_, data, n)) return -1;
                data += n;
                len -= n;
                remaining_ -= n;
                if (remaining_ == 0) in_payload_ = false;
                continue;
            }
            // A varint: the first byte's two high bits give its length (1, 2, 4 or 8 bytes).
            if (have_ == 0) need_ = std::size_t{1} << (data[0] >> 6);
            const std::size_t n = need_ - have_ < len ? need_ - have_ : len;
            for (std::size_t i = 0; i < n; ++i) value_ = (value_ << 8) | (have_ + i == 0 ? data[i] & 0x3f : data[i]);
            have_ += n;
            data += n;
            len -= n;
            framing += n;
            if (have_ < need_) break;
            if (reading_length_) {
                remaining_ = value_;
                in_payload_ = remaining_ > 0;
                if (!in_payload_ && !on_payload(type_, data, 0)) return -1;  // an empty frame still counts
            } else {
                type_ = value_;
            }
            reading_length_ = !reading_length_;
            have_ = 0;
            value_ = 0;
        }
        return static_cast<std::ptrdiff_t>(framing);
    }

private:
    bool in_payload_ = false;
    bool reading_length_ = false;  ///< the varint being read is a length (else a type)
    std::uint64_t type_ = 0;       ///< the current frame's type
    std::uint64_t remaining_ = 0;  ///< payload bytes left in the current frame
    std::uint64_t value_ = 0;      ///< the varint read so far
    std::size_t have_ = 0, need_ = 0;
};

}  // namespace h3co::detail
