// A simulated network and its virtual clock, installed on one io_context (see
// include/h3co/detail/io/virtual_io.hpp): every h3co connection, server and timer on that
// context then runs here, in one thread, with no socket and no real time. The run loop runs
// what is ready (io.poll()) and, when nothing is, jumps the clock to the next deadline: a timer
// or a datagram's arrival. Events at one instant run in the order they were scheduled, so the
// same scenario runs the same way every time.
#pragma once

#include "link.hpp"

#include <h3co/detail/io/virtual_io.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
// After io_context.hpp: Asio's implementation files need what it declares first.
#include <asio/detail/reactor.hpp>

#include <netinet/in.h>

#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace h3co_sim {

/// An IPv4 address and port as one number: what the network routes by.
using address_key = std::uint64_t;

inline address_key key_of(const sockaddr* sa) {
    if (sa->sa_family != AF_INET) return 0;
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return (static_cast<std::uint64_t>(ntohl(in->sin_addr.s_addr)) << 16) | ntohs(in->sin_port);
}

inline sockaddr_in sockaddr_of(address_key k) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(static_cast<std::uint32_t>(k >> 16));
    in.sin_port = htons(static_cast<std::uint16_t>(k & 0xffff));
    return in;
}

inline std::uint32_t host_of(address_key k) { return static_cast<std::uint32_t>(k >> 16); }

/// Packet counts, by fate.
struct network_stats {
    std::uint64_t sent = 0, delivered = 0, duplicated = 0, corrupted = 0, undeliverable = 0;
    std::map<std::string, std::uint64_t> dropped;  ///< by reason
};

/// The reactor of a simulated context: one that never waits. The sockets and Asio timers h3co
/// makes (and never uses) on a simulated context register Asio's reactor as the scheduler's task,
/// and io_context::poll() then calls epoll_wait once per round of handlers: two thirds of the
/// simulation's time went into that system call. Nothing on a simulated context waits on a real
/// descriptor or an Asio timer (an Asio timer waited on here never fires: the scenario hangs and
/// fails, which is what a missed seam should do).
class inert_reactor final : public asio::detail::reactor {
public:
    explicit inert_reactor(asio::execution_context& ctx) : asio::detail::reactor(ctx) {}
    void run(long, asio::detail::op_queue<asio::detail::scheduler_operation>&) override {}
    void interrupt() override {}
};

/// Destroy the io_context before the network: the context's shutdown calls abandon_all().
class network final : public h3co::detail::virtual_network {
public:
    /// Makes the links between two hosts (by IPv4 address), one per direction, when first used.
    using link_factory = std::function<link_params(std::uint32_t from, std::uint32_t to)>;

    /// Install it before anything h3co is made on `io`.
    network(asio::io_context& io, std::uint64_t seed) : io_(io), rng_(seed) {
        if (!asio::has_service<asio::detail::reactor>(io))
            asio::add_service<asio::detail::reactor>(io, new inert_reactor(io));
        h3co::detail::install_virtual_network(io, *this);
    }

    void set_link_factory(link_factory f) { factory_ = std::move(f); }
    const network_stats& stats() const { return stats_; }

    // --- virtual_network --------------------------------------------------------------
    std::uint64_t now_ns() const noexcept override { return now_; }

    std::uint64_t add_timer(std::uint64_t deadline, std::function<void(std::error_code)> f) override {
        const auto id = ++next_id_;
        const auto key = schedule(std::max(deadline, now_), timer_event{id, std::move(f)});
        timers_.emplace(id, key);
        return id;
    }

    void cancel_timer(std::uint64_t id) override {
        const auto it = timers_.find(id);
        if (it == timers_.end()) return;
        auto ev = events_.find(it->second);
        timers_.erase(it);
        if (ev == events_.end()) return;
        auto f = std::move(std::get<timer_event>(ev->second).fn);
        events_.erase(ev);
        f(make_error_code(asio::error::operation_aborted));
    }

    std::shared_ptr<h3co::detail::datagram_port> bind(const sockaddr* local, socklen_t) override {
        auto k = key_of(local);
        if ((k & 0xffff) == 0) k |= next_port_++;
        auto p = std::make_shared<port>(*this, k, 0);
        routes_[k] = p;
        return p;
    }

    /// Each connection attempt is a host of its own: 10.0.x.y, port 40000 + n.
    std::shared_ptr<h3co::detail::datagram_port> connect(const sockaddr* remote, socklen_t) override {
        const std::uint32_t n = ++clients_;
        const address_key k = (static_cast<std::uint64_t>(0x0a000000u + n) << 16) | (40000 + n % 20000);
        auto p = std::make_shared<port>(*this, k, key_of(remote));
        routes_[k] = p;
        client_ports_.push_back(p);
        return p;
    }

    void abandon_all() noexcept override {
        shut_down_ = true;
        // Destroying a handler may destroy coroutine frames that cancel timers or close ports:
        // take everything out first.
        auto events = std::move(events_);
        events_.clear();
        timers_.clear();
        events.clear();
        for (auto& [k, w] : std::exchange(routes_, {}))
            if (auto p = w.lock()) p->abandon();
    }

    // --- hostile moves ----------------------------------------------------------------
    /// NAT rebinding: from now on the server sees client `index` (in connect order) at a new
    /// port; datagrams to the old one are lost.
    bool rebind(std::size_t index) {
        if (index >= client_ports_.size()) return false;
        auto p = client_ports_[index].lock();
        if (!p || !p->is_open()) return false;
        routes_.erase(p->outer);
        p->outer = (p->outer & ~0xffffull) | (50000 + next_rebind_++ % 10000);
        routes_[p->outer] = p;
        return true;
    }

    // --- the run loop -----------------------------------------------------------------
    /// Runs until `done()` holds (true), or virtual time would pass `limit` or nothing is left
    /// to run or wait for (false).
    template <class Done>
    bool run_until(Done&& done, std::uint64_t limit) {
        for (;;) {
            for (;;) {
                io_.restart();
                if (io_.poll() == 0) break;
                if (done()) return true;
            }
            if (done()) return true;
            if (events_.empty()) return false;
            if (events_.begin()->first.first > limit) return false;
            now_ = std::max(now_, events_.begin()->first.first);
            // Every event of this instant, in order, before the handlers run: datagrams that
            // arrive together are received as one batch (as recvmmsg would), not one per turn.
            while (!events_.empty() && events_.begin()->first.first <= now_) {
                const auto it = events_.begin();
                auto ev = std::move(it->second);
                events_.erase(it);
                if (auto* t = std::get_if<timer_event>(&ev)) {
                    timers_.erase(t->id);
                    t->fn({});
                } else {
                    deliver(std::get<delivery>(ev));
                }
            }
        }
    }

    /// Runs whatever is ready now, without moving the clock.
    void run_ready() {
        for (;;) {
            io_.restart();
            if (io_.poll() == 0) break;
        }
    }

private:
    using event_key = std::pair<std::uint64_t, std::uint64_t>;  ///< (time, order scheduled)

    struct timer_event {
        std::uint64_t id;
        std::function<void(std::error_code)> fn;
    };
    struct delivery {
        address_key to;
        address_key from;
        std::vector<std::uint8_t> bytes;
    };
    using event = std::variant<timer_event, delivery>;

    struct datagram {
        std::vector<std::uint8_t> bytes;
        sockaddr_in from;
    };

    class port final : public h3co::detail::datagram_port {
    public:
        port(network& net, address_key local, address_key remote) : outer(local), net_(&net), remote_(remote) {
            local_ = sockaddr_of(local);
            std::memcpy(&storage_, &local_, sizeof local_);
        }
        const sockaddr_storage& local_address() const noexcept override { return storage_; }
        socklen_t local_length() const noexcept override { return sizeof(sockaddr_in); }

        std::size_t send(std::span<h3co::detail::datagram_run> runs) override {
            if (!open_) return runs.size();
            for (auto& r : runs) {
                const address_key to = remote_ ? remote_ : key_of(r.peer());
                for (std::size_t off = 0; off < r.len; off += r.segment)
                    net_->transmit(outer, to, r.data + off, std::min(r.segment, r.len - off));
                r.data += r.len;
                r.len = 0;
            }
            return runs.size();
        }

        void wait_readable(std::function<void(std::error_code)> on_ready) override {
            if (!open_) return post(std::move(on_ready), asio::error::operation_aborted);
            if (!queue_.empty()) return post(std::move(on_ready), {});
            waiter_ = std::move(on_ready);
        }

        std::size_t receive(std::size_t max,
                            const std::function<void(const h3co::detail::received_datagram&)>& f) override {
            std::size_t n = 0;
            while (n < max && open_ && !queue_.empty()) {
                auto d = std::move(queue_.front());
                queue_.pop_front();
                ++n;
                f(h3co::detail::received_datagram{d.bytes.data(), d.bytes.size(),
                                                  reinterpret_cast<const sockaddr*>(&d.from), sizeof d.from, 0});
            }
            return n;
        }

        void close() noexcept override {
            if (!open_) return;
            open_ = false;
            queue_.clear();
            if (waiter_) post(std::exchange(waiter_, {}), asio::error::operation_aborted);
            if (!net_->shut_down_) net_->routes_.erase(outer);
        }
        bool is_open() const noexcept override { return open_; }

        void arrive(datagram d) {
            if (!open_) return;
            queue_.push_back(std::move(d));
            if (waiter_) post(std::exchange(waiter_, {}), {});
        }
        void abandon() noexcept {
            open_ = false;
            queue_.clear();
            waiter_ = {};
        }

        address_key outer;  ///< the address the network sees (changes on a NAT rebinding)

    private:
        void post(std::function<void(std::error_code)> f, std::error_code ec) {
            if (net_->shut_down_) return;
            asio::post(net_->io_, [f = std::move(f), ec] { f(ec); });
        }

        network* net_;
        address_key remote_;
        sockaddr_in local_;
        sockaddr_storage storage_{};
        std::deque<datagram> queue_;
        std::function<void(std::error_code)> waiter_;
        bool open_ = true;
    };

    event_key schedule(std::uint64_t at, event ev) {
        const event_key key{at, ++order_};
        events_.emplace(key, std::move(ev));
        return key;
    }

    link& link_for(address_key from, address_key to) {
        const auto k = std::make_pair(host_of(from), host_of(to));
        auto it = links_.find(k);
        if (it == links_.end()) {
            const link_params p = factory_ ? factory_(k.first, k.second) : link_params{};
            it = links_.emplace(k, link(p, rng_.fork())).first;
        }
        return it->second;
    }

    void transmit(address_key from, address_key to, const std::uint8_t* data, std::size_t len) {
        ++stats_.sent;
        auto v = link_for(from, to).send(now_, len);
        if (v.dropped) {
            ++stats_.dropped[v.dropped];
            return;
        }
        if (v.arrivals.size() > 1) ++stats_.duplicated;
        for (std::size_t i = 0; i < v.arrivals.size(); ++i) {
            delivery d{to, from, std::vector<std::uint8_t>(data, data + len)};
            if (v.corrupt && i == 0) {
                d.bytes[v.corrupt_at] ^= v.corrupt_mask;
                ++stats_.corrupted;
            }
            schedule(v.arrivals[i], std::move(d));
        }
    }

    void deliver(delivery& d) {
        const auto it = routes_.find(d.to);
        auto p = it == routes_.end() ? nullptr : it->second.lock();
        if (!p) {
            ++stats_.undeliverable;
            return;
        }
        ++stats_.delivered;
        p->arrive(datagram{std::move(d.bytes), sockaddr_of(d.from)});
    }

    asio::io_context& io_;
    prng rng_;
    link_factory factory_;
    std::uint64_t now_ = 1'000'000'000;  ///< virtual time starts at 1 s (0 reads as "no time" to some code)
    std::uint64_t order_ = 0;
    std::uint64_t next_id_ = 0;
    std::uint16_t next_port_ = 1024;
    std::uint32_t clients_ = 0;
    std::uint32_t next_rebind_ = 0;
    bool shut_down_ = false;
    std::map<event_key, event> events_;
    std::unordered_map<std::uint64_t, event_key> timers_;  ///< lookups only: no order depends on it
    std::map<address_key, std::weak_ptr<port>> routes_;
    std::map<std::pair<std::uint32_t, std::uint32_t>, link> links_;
    std::vector<std::weak_ptr<port>> client_ports_;
    network_stats stats_;
};

}  // namespace h3co_sim
