// A client's TLS session tickets, kept per authority so that a later connection to the same
// server resumes (RFC 8446 §2.2) instead of making a full handshake. Bytes only: no BoringSSL type
// appears here, and the whole cache can be exported and imported to outlive the process.
#pragma once

#include <h3co/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace h3co {

/// Session tickets per authority ("name:port", the name being the one the certificate is verified
/// against: client_tls::server_name or the host). Thread-safe: one cache may serve clients on
/// several threads. A cache set in connection_options::session_cache is used by connect() and by
/// basic_client; a basic_client without one makes its own, in memory, for all its connections.
///
/// Share a cache only between clients that verify servers alike (same CAs, same verify hook): a
/// resumed connection does not verify the certificate again, it trusts the verification of the
/// connection that received the ticket. Entries never cross authorities.
class session_cache {
public:
    /// One ticket, as the TLS library stores it.
    struct ticket {
        std::vector<std::uint8_t> session;               ///< BoringSSL's SSL_SESSION_to_bytes form
        std::vector<std::uint8_t> transport_parameters;  ///< the server's, ngtcp2's encoding (for 0-RTT)
    };

    /// Tickets kept per authority; the oldest go first. Servers send a few per connection
    /// (BoringSSL two) and a ticket is used once, so a handful covers parallel connections.
    static constexpr std::size_t tickets_per_authority = 4;

    /// A cache of at most `max_authorities` authorities (at least 1); storing a ticket for one more
    /// drops the authority stored to least recently.
    explicit session_cache(std::size_t max_authorities = 256) : max_authorities_(max_authorities ? max_authorities : 1) {}

    session_cache(const session_cache&) = delete;
    session_cache& operator=(const session_cache&) = delete;

    /// Keeps `t` as the newest ticket for `authority`.
    void store(const std::string& authority, ticket t) {
        std::lock_guard lock(mutex_);
        auto& e = entries_[authority];
        e.tickets.push_back(std::move(t));
        while (e.tickets.size() > tickets_per_authority) e.tickets.pop_front();
        e.stamp = ++clock_;
        while (entries_.size() > max_authorities_) {
            auto oldest = entries_.begin();
            for (auto it = entries_.begin(); it != entries_.end(); ++it)
                if (it->second.stamp < oldest->second.stamp) oldest = it;
            entries_.erase(oldest);
        }
    }

    /// Removes and returns the newest ticket for `authority` (tickets are single-use: RFC 8446
    /// §C.4 asks clients not to reuse one, lest connections be linked); nothing if none is left.
    std::optional<ticket> take(const std::string& authority) {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(authority);
        if (it == entries_.end()) return std::nullopt;
        ticket t = std::move(it->second.tickets.back());
        it->second.tickets.pop_back();
        if (it->second.tickets.empty()) entries_.erase(it);
        return t;
    }

    /// Tickets held, all authorities together.
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (const auto& [name, e] : entries_) n += e.tickets.size();
        return n;
    }
    /// Authorities with at least one ticket.
    std::size_t authorities() const {
        std::lock_guard lock(mutex_);
        return entries_.size();
    }
    /// The bound given to the constructor.
    std::size_t max_authorities() const noexcept { return max_authorities_; }

    /// Forgets every ticket.
    void clear() {
        std::lock_guard lock(mutex_);
        entries_.clear();
    }

    /// Every ticket, as bytes to write to a file (the format: "h3cosc1\n", then per ticket the
    /// authority, the session and the transport parameters, each a 4-byte big-endian length and
    /// its bytes). Tickets are secrets that let their holder resume as this client: store them
    /// as such (mode 0600).
    std::vector<std::uint8_t> export_bytes() const {
        std::lock_guard lock(mutex_);
        std::vector<std::uint8_t> out(magic.begin(), magic.end());
        for (const auto& [name, e] : entries_)
            for (const auto& t : e.tickets) {
                put(out, std::span(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()));
                put(out, t.session);
                put(out, t.transport_parameters);
            }
        return out;
    }

    /// Adds the tickets of an export_bytes() result (oldest first, as exported). Bytes that are
    /// not such an export: error::session_cache_malformed, and the tickets read before the damage
    /// are kept. A ticket whose session bytes are damaged is only found out when used: that
    /// connection then makes a full handshake.
    std::error_code import_bytes(std::span<const std::uint8_t> bytes) {
        if (bytes.size() < magic.size() || !std::equal(magic.begin(), magic.end(), bytes.begin()))
            return make_error_code(error::session_cache_malformed);
        bytes = bytes.subspan(magic.size());
        while (!bytes.empty()) {
            std::span<const std::uint8_t> name, session, params;
            if (!get(bytes, name) || !get(bytes, session) || !get(bytes, params) || name.empty())
                return make_error_code(error::session_cache_malformed);
            store(std::string(name.begin(), name.end()),
                  ticket{{session.begin(), session.end()}, {params.begin(), params.end()}});
        }
        return {};
    }

private:
    static constexpr std::string_view magic = "h3cosc1\n";

    static void put(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> field) {
        const auto n = static_cast<std::uint32_t>(field.size());
        for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(n >> shift));
        out.insert(out.end(), field.begin(), field.end());
    }
    static bool get(std::span<const std::uint8_t>& in, std::span<const std::uint8_t>& field) {
        if (in.size() < 4) return false;
        const std::size_t n = std::size_t{in[0]} << 24 | std::size_t{in[1]} << 16 | std::size_t{in[2]} << 8 | in[3];
        if (in.size() - 4 < n) return false;
        field = in.subspan(4, n);
        in = in.subspan(4 + n);
        return true;
    }

    struct entry {
        std::deque<ticket> tickets;  ///< oldest first
        std::uint64_t stamp = 0;     ///< when a ticket was last stored (for eviction)
    };
    mutable std::mutex mutex_;
    std::map<std::string, entry, std::less<>> entries_;
    std::size_t max_authorities_;
    std::uint64_t clock_ = 0;
};

}  // namespace h3co
