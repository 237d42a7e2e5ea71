// Forged client Initials, as a flood sends them: each is the first datagram of a real client (a
// real ClientHello, padded to 1200 bytes, under fresh random connection IDs), from a client that
// will never answer. h3co's own sans-I/O client session writes them; nothing is sent here.
// Used by `h3co_bench flood` and by tests/test_hostile.cpp.
#pragma once

#include <h3co/detail/session.hpp>
#include <h3co/detail/tls_context.hpp>
#include <h3co/options.hpp>
#include <h3co/tls.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

#include <sys/socket.h>

namespace bench {

class initial_forger {
public:
    /// `options.address_token` (when set) goes into every Initial: a forged or stale token.
    explicit initial_forger(const h3co::connection_options& options = {})
        : tls_(h3co::detail::tls_context::make_client(h3co::client_tls{})), options_(options) {}

    /// The first datagram a client at `from` would send to `to`. Throws std::runtime_error if the
    /// libraries refuse.
    std::vector<std::uint8_t> make(const sockaddr* from, socklen_t from_len, const sockaddr* to, socklen_t to_len,
                                   std::uint64_t now) {
        auto client = std::make_shared<one_shot>(options_, tls_);
        return client->first_datagram(h3co::detail::network_path(from, from_len, to, to_len), now);
    }

private:
    /// A client session that writes its first flight and is dropped.
    class one_shot final : public h3co::detail::session {
    public:
        one_shot(const h3co::connection_options& options, std::shared_ptr<h3co::detail::tls_context> tls)
            : session(h3co::detail::session_role::client, options, std::move(tls)) {}

        std::vector<std::uint8_t> first_datagram(const h3co::detail::network_path& path, std::uint64_t now) {
            start_client(path, "localhost", now);
            h3co::detail::flush_round round;
            write_packets(now, round);
            const auto runs = outbox().runs();
            if (runs.empty()) throw std::runtime_error("initial_forger: no Initial written");
            return std::vector<std::uint8_t>(runs.front().data, runs.front().data + runs.front().segment);
        }

    private:
        void wake_flush() override {}
    };

    std::shared_ptr<h3co::detail::tls_context> tls_;
    h3co::connection_options options_;
};

}  // namespace bench
