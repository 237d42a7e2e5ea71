// A QUIC connection ID as a plain value and as the key the server routes datagrams by, and the
// factory of the IDs a server issues: random, or QUIC-LB (detail/quic_lb.hpp), naming the worker.
#pragma once

#include <h3co/detail/quic_lb.hpp>
#include <h3co/detail/tls_context.hpp>

#include <h3co/server_options.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace h3co::detail {

/// The routing key of a connection ID: its bytes.
inline std::string cid_key(const std::uint8_t* data, std::size_t len) {
    return std::string(reinterpret_cast<const char*>(data), len);
}

/// Length of the connection IDs a server issues without QUIC-LB (ngtcp2 allows up to 20).
inline constexpr std::size_t server_cid_length = 18;

/// Byte of a server-issued connection ID without QUIC-LB that holds the worker ID: after the first
/// octet, where QUIC-LB puts its config rotation bits and length.
inline constexpr std::size_t worker_id_offset = 1;

/// Throws std::invalid_argument, naming the field, unless `c` is a configuration the draft allows.
inline void check_quic_lb_config(const quic_lb_config& c) {
    const auto fail = [](const char* what) {
        throw std::invalid_argument(std::string("h3co::server_options::load_balancing.") + what);
    };
    if (c.config_rotation >= quic_lb::unroutable_config) fail("config_rotation: 0 to 6 (7 means unroutable)");
    if (c.server_id.empty()) fail("server_id: at least 1 octet");
    if (c.nonce_length < 4) fail("nonce_length: at least 4 octets");
    if (c.server_id.size() + c.nonce_length > 19) fail("server_id and nonce_length: at most 19 octets together");
    if (!c.key.empty() && c.key.size() != 16) fail("key: empty or 16 octets (AES-128)");
}

/// Makes the connection IDs one worker of a server issues, and tells from a connection ID which
/// worker owns it. Without QUIC-LB: server_cid_length random octets, the worker (if any) in byte
/// 1. With it: the draft's format, the worker in the nonce's first octet; the rest of the nonce
/// random (plaintext) or a counter from a random start (encrypted: a nonce must never repeat
/// under one key). Used on its worker's executor only.
class cid_factory {
public:
    /// `worker`: this worker's ID, or -1 for a server of one worker. `lb` must be checked.
    cid_factory(const std::optional<quic_lb_config>& lb, int worker) : worker_(worker) {
        if (!lb) return;
        quic_lb::config c;
        c.config_rotation = lb->config_rotation;
        c.server_id = lb->server_id;
        c.nonce_length = lb->nonce_length;
        if (!lb->key.empty()) {
            std::array<std::uint8_t, 16> key;
            std::copy_n(lb->key.begin(), key.size(), key.begin());
            c.key = key;
        }
        codec_.emplace(std::move(c));
        random_bytes(counter_.data(), counter_.size());
        start_ = counter_;
    }

    /// Length of every ID this factory makes.
    std::size_t length() const noexcept { return codec_ ? codec_->length() : server_cid_length; }

    /// Where the worker's octet is in the IDs on the wire, for the kernel to read; nothing when it
    /// is encrypted.
    std::optional<std::size_t> worker_offset() const noexcept {
        if (!codec_) return worker_id_offset;
        if (codec_->settings().key) return std::nullopt;
        return 1 + codec_->settings().server_id.size();
    }

    /// Writes a fresh ID of length() octets to `out`.
    void make(std::uint8_t* out) {
        if (!codec_) {
            random_bytes(out, server_cid_length);
            if (worker_ >= 0) out[worker_id_offset] = static_cast<std::uint8_t>(worker_);
            return;
        }
        const auto& c = codec_->settings();
        std::array<std::uint8_t, 19> nonce;
        const std::size_t own = worker_ >= 0 ? 1 : 0;  // octets the worker takes
        if (worker_ >= 0) nonce[0] = static_cast<std::uint8_t>(worker_);
        if (!c.key) {
            random_bytes(nonce.data() + own, c.nonce_length - own);
        } else if (!exhausted_) {
            std::copy_n(counter_.begin(), c.nonce_length - own, nonce.begin() + own);
            exhausted_ = !increment(c.nonce_length - own);
        } else {
            // Every nonce was used under this key: unroutable IDs (the draft's MUST), which keep
            // the worker octet in the clear so that the workers still route them.
            random_bytes(out, length());
            out[0] = static_cast<std::uint8_t>(quic_lb::unroutable_config << 5 | ((length() - 1) & 0x1f));
            if (worker_ >= 0) out[1 + c.server_id.size()] = static_cast<std::uint8_t>(worker_);
            return;
        }
        codec_->encode(std::span<const std::uint8_t>(nonce.data(), c.nonce_length), std::span<std::uint8_t>(out, length()));
    }

    /// Which of `workers` owns the ID `dcid`: the worker it names, for an ID some worker issued;
    /// for a client-chosen one (a first Initial), a pick that depends on its bytes only, so that
    /// every Initial of one handshake reaches one worker whichever socket got it.
    std::size_t owner(const std::uint8_t* dcid, std::size_t len, std::size_t workers) const noexcept {
        if (workers < 2) return 0;
        const auto offset = codec_ ? 1 + codec_->settings().server_id.size() : worker_id_offset;
        if (codec_ && codec_->settings().key && len > 0 && (dcid[0] >> 5) != quic_lb::unroutable_config) {
            std::array<std::uint8_t, 19> plain;
            const std::size_t n = codec_->length() - 1;
            if (codec_->decode(std::span<const std::uint8_t>(dcid, len), std::span<std::uint8_t>(plain.data(), n)))
                return plain[offset - 1] % workers;
            return len > 1 ? dcid[1] % workers : 0;
        }
        return len > offset ? dcid[offset] % workers : 0;
    }

private:
    /// Big-endian increment of the counter's last `n` octets. False once it is back at its start.
    bool increment(std::size_t n) noexcept {
        for (std::size_t i = n; i-- > 0;)
            if (++counter_[i] != 0) break;
        return !std::equal(counter_.begin(), counter_.begin() + static_cast<std::ptrdiff_t>(n), start_.begin());
    }

    std::optional<quic_lb::codec> codec_;
    int worker_ = -1;
    std::array<std::uint8_t, 19> counter_{};  ///< encrypted: the next nonce (its first nonce_length - own octets)
    std::array<std::uint8_t, 19> start_{};
    bool exhausted_ = false;
};

}  // namespace h3co::detail
