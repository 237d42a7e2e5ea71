// The server's engine room: listening sockets, routing datagrams to connections by connection ID,
// accepting new connections within the server's limits (what to do with a datagram for no
// connection is server_endpoint's decision; this sends it), and starting a handler per request.
#pragma once

#include <h3co/detail/io/io_timer.hpp>
#include <h3co/detail/io/reuseport.hpp>
#include <h3co/detail/io/server_session.hpp>
#include <h3co/detail/io/server_socket.hpp>
#include <h3co/detail/server_endpoint.hpp>

#include <asio/basic_waitable_timer.hpp>
#include <asio/ip/udp.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace h3co::detail {

/// Starts a handler for one request; given by the public server, which knows the handler types.
/// `slot` is held while the handler runs (it counts towards server_options::max_running_handlers).
template <class Executor>
using request_dispatcher = std::function<void(std::shared_ptr<server_session<Executor>>, std::shared_ptr<stream_state>,
                                              std::shared_ptr<void> slot)>;

/// System-clock nanoseconds: address validation tokens carry them, so that servers sharing a
/// secret read each other's alike (steady clocks differ between machines and boots).
inline std::uint64_t wall_now_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

template <class Executor>
class server_core : public std::enable_shared_from_this<server_core<Executor>> {
public:
    using session_type = server_session<Executor>;
    using listener_state = server_socket<Executor>;

    server_core(Executor ex, std::shared_ptr<tls_context> tls, const connection_options& options,
                const server_options& limits)
        : executor_(std::move(ex)),
          tls_(std::move(tls)),
          options_(options),
          limits_(limits),
          endpoint_(limits),
          grace_timer_(executor_) {
        tls_->use_ticket_secret(endpoint_.secret(), limits_.early_data);  // servers sharing the secret resume each other's clients
        endpoint_.speak_quic_v2(options.quic_versions == quic_versions::prefer_v2);
        use_cid_factory(-1);
    }

    void set_dispatcher(request_dispatcher<Executor> d) { dispatcher_ = std::move(d); }

    tls_context& tls() const noexcept { return *tls_; }

    /// Binds `endpoint` (port 0: any free port) and starts receiving; returns the bound endpoint.
    /// `reuse_port`: SO_REUSEPORT, for the sockets of several workers on one address.
    asio::ip::udp::endpoint listen(const asio::ip::udp::endpoint& endpoint, bool reuse_port = false) {
        auto listener = std::make_shared<listener_state>(executor_, options_);
        if (auto* net = grace_timer_.network()) {
            listener->port = net->bind(endpoint.data(), static_cast<socklen_t>(endpoint.size()));
            listener->local.resize(listener->port->local_length());
            std::memcpy(listener->local.data(), &listener->port->local_address(), listener->port->local_length());
            listeners_.push_back(listener);
            receive(listener);
            return listener->local;
        }
        auto& socket = listener->socket;
        socket.open(endpoint.protocol());
        if (endpoint.address().is_v6()) socket.set_option(asio::ip::v6_only(false));  // "::" serves IPv4 too
        if (reuse_port && !enable_reuse_port(socket.native_handle()))
            throw std::system_error(std::error_code(errno, std::system_category()), "SO_REUSEPORT");
        socket.bind(endpoint);
        socket.non_blocking(true);
        apply_socket_buffers(socket, options_.socket_buffer);
        apply_dont_fragment(socket.native_handle(), endpoint.address().is_v6());
        if (options_.udp_gro) enable_udp_gro(socket.native_handle());
        if (options_.ecn) enable_ecn_receive(socket.native_handle(), endpoint.address().is_v6());
        listener->local = socket.local_endpoint();
        listeners_.push_back(listener);
        receive(listener);
        return listener->local;
    }

    /// server_options::preferred_address: the listener on `endpoint` (listened on already) is the
    /// one offered to the clients of the others.
    void prefer(const asio::ip::udp::endpoint& endpoint) {
        for (const auto& l : listeners_)
            if (l->local == endpoint) preferred_ = l;
    }

    std::vector<asio::ip::udp::endpoint> local_endpoints() const {
        std::vector<asio::ip::udp::endpoint> out;
        for (const auto& l : listeners_) out.push_back(l->local);
        return out;
    }

    /// Starts the request's handler, or refuses the request when max_running_handlers run already.
    void start_handler(std::shared_ptr<session_type> session, std::shared_ptr<stream_state> st) {
        if (!dispatcher_) return;
        auto entry = live_.find(session.get());
        std::string address = entry != live_.end() ? entry->second.address : std::string{};
        std::size_t& from_address = handlers_per_address_[address];
        const auto& l = limits_;
        if ((l.max_running_handlers != 0 && running_handlers_ >= l.max_running_handlers) ||
            (l.max_running_handlers_per_address != 0 && from_address >= l.max_running_handlers_per_address)) {
            if (from_address == 0) handlers_per_address_.erase(address);
            ++requests_refused_;
            return session->refuse_request(*st);
        }
        ++running_handlers_;
        ++from_address;
        // Released when the handler's coroutine ends, however it ends.
        std::shared_ptr<void> slot(nullptr, [weak = this->weak_from_this(), address = std::move(address)](void*) {
            auto self = weak.lock();
            if (!self) return;
            --self->running_handlers_;
            count_down(self->handlers_per_address_, address);
        });
        dispatcher_(std::move(session), std::move(st), std::move(slot));
    }

    /// The handshake of `s` completed: it no longer counts as half-open; the client gets a token
    /// for its next connection.
    void established(session_type& s) {
        if (auto it = live_.find(&s); it != live_.end() && !it->second.established) {
            it->second.established = true;
            --handshakes_;
        }
        const auto& remote = s.path().remote;
        const auto token = endpoint_.address_token(reinterpret_cast<const sockaddr*>(&remote), s.path().remote_len,
                                                   wall_now_ns());
        s.submit_address_token(token);
    }

    void request_timed_out() { ++request_timeouts_; }
    void client_certificate_refused() { ++client_certificates_refused_; }

    /// New connections take `tls` from now on; live ones keep the context they started with.
    /// Its ticket keys must derive from secret() already (workers share one context: keyed once).
    void reload_tls(std::shared_ptr<tls_context> tls) { tls_ = std::move(tls); }

    /// server_options::secret, or the random one made for this server.
    std::span<const std::uint8_t> secret() const noexcept { return endpoint_.secret(); }
    /// server_options::early_data: whether the tickets this server issues allow 0-RTT.
    bool early_data() const noexcept { return limits_.early_data; }

    // ---- a server on several workers ------------------------------------------------------
    // Each worker is a server_core of its own, on its own executor, with its own sockets (one per
    // listen(), SO_REUSEPORT), connections and routes. Nothing is shared at run time but posts.

    /// Makes this core worker `id` of `peers` (every worker, this one included, by ID). Before
    /// listen() and before any thread runs the executors.
    void set_worker(std::size_t id, std::vector<std::weak_ptr<server_core>> peers) {
        worker_id_ = id;
        peers_ = std::move(peers);
        use_cid_factory(static_cast<int>(id));
    }
    /// Where this worker's connection IDs carry the worker's octet in the clear, for the kernel's
    /// program (attach_cid_steering); nothing when they are encrypted (QUIC-LB with a key).
    std::optional<std::size_t> cid_worker_offset() const noexcept { return cids_->worker_offset(); }
    /// The listening socket of the `index`th listen() (the kernel program goes on one of them).
    int listener_handle(std::size_t index) const { return listeners_.at(index)->socket.native_handle(); }

    /// This worker's figures. Its counters are written by its own thread only, and are atomic so
    /// that stats() may read them from another.
    worker_stats worker_figures() const {
        worker_stats w;
        w.connections = live_count_.load(std::memory_order_relaxed);
        w.connections_accepted = accepted_.load(std::memory_order_relaxed);
        w.datagrams = datagrams_.load(std::memory_order_relaxed);
        w.handoffs_sent = handoffs_sent_.load(std::memory_order_relaxed);
        w.handoffs_received = handoffs_received_.load(std::memory_order_relaxed);
        return w;
    }

    void route(const std::string& key, std::shared_ptr<session_type> s) { sessions_[key] = std::move(s); }
    /// Whether `key` routes to a connection (or did until lately): a new ID must not be one.
    bool routes(const std::string& key) const { return sessions_.contains(key) || ended_.contains(key); }
    void unroute(const std::string& key) { sessions_.erase(key); }
    /// A connection ID its connection no longer uses: late packets to it (sent before the peer
    /// retired it) are dropped for `period` nanoseconds, not answered with a stateless reset.
    void retire(const std::string& key, std::uint64_t period) {
        sessions_.erase(key);
        drop_late_packets(key, grace_timer_.now() + period);
    }
    void forget(session_type& s) {
        // Its peer may still send for a while (its packets crossed our CONNECTION_CLOSE, or it is
        // closing itself): those are dropped, not answered with a stateless reset, which could
        // overtake the CONNECTION_CLOSE that says why the connection ended.
        // None when it never sent a packet (session::closing_period).
        const auto period = s.closing_period();
        const auto until = grace_timer_.now() + period;
        for (const auto& key : s.cids()) {
            auto it = sessions_.find(key);
            if (it != sessions_.end() && it->second.get() == &s) {
                sessions_.erase(it);
                if (period) drop_late_packets(key, until);
            }
        }
        if (auto it = live_.find(&s); it != live_.end()) {
            if (!it->second.established) --handshakes_;
            count_down(per_address_, it->second.address);
            live_.erase(it);
            bump(live_count_, -1);
        }
        // After the connection's last packets (its CONNECTION_CLOSE, posted) have left.
        if (shutting_down_ && live_.empty())
            asio::post(executor_, [self = this->shared_from_this()] {
                if (self->live_.empty()) self->close_listeners();
            });
    }

    /// GOAWAY to every connection; no new connections; listeners close when the last one ends.
    /// Connections still open after `grace` are closed (their streams fail with connection_closed).
    void shutdown(std::chrono::steady_clock::duration grace) {
        shutting_down_ = true;
        for (auto& [ptr, entry] : live_) entry.session->goaway();
        if (live_.empty()) return close_listeners();
        grace_timer_.expires_after(grace);
        grace_timer_.async_wait([weak = this->weak_from_this()](std::error_code ec) {
            if (auto self = weak.lock(); self && !ec) self->close();
        });
    }

    /// Closes every connection now (H3_NO_ERROR) and stops listening.
    void close() {
        shutting_down_ = true;
        grace_timer_.cancel();
        auto live = live_;
        for (auto& [ptr, entry] : live) entry.session->close_connection(static_cast<std::uint64_t>(h3_error::no_error));
        close_listeners();
    }

    std::size_t connection_count() const noexcept { return live_.size(); }
    std::uint64_t dropped_datagrams() const noexcept { return dropped_; }

    /// The endpoint's counters, with the connections' and handlers' own.
    server_stats stats() const {
        server_stats out = endpoint_.stats();
        out.connections = live_.size();
        out.handshakes = handshakes_;
        out.running_handlers = running_handlers_;
        out.requests_refused = requests_refused_;
        out.request_timeouts = request_timeouts_;
        out.client_certificates_refused = client_certificates_refused_;
        out.dropped_datagrams = dropped_datagrams();
        for (const auto& l : listeners_) {
            out.udp_send_errors += l->features.send_errors;
            out.gso_fallbacks += l->features.gso_fallbacks;
            out.ecn_fallbacks += l->features.ecn_fallbacks;
        }
        return out;
    }
    const Executor& get_executor() const noexcept { return executor_; }

private:
    /// One fewer for `key`; the entry goes when none is left.
    static void count_down(std::unordered_map<std::string, std::size_t>& counts, const std::string& key) {
        if (auto it = counts.find(key); it != counts.end() && --it->second == 0) counts.erase(it);
    }

    /// Datagrams to connection ID `key` are dropped until `until` (a closing period), not answered
    /// with a stateless reset.
    void drop_late_packets(const std::string& key, std::uint64_t until) {
        if (ended_.emplace(key, until).second) ended_order_.emplace_back(until, key);
    }

    void close_listeners() {
        for (auto& l : listeners_) l->close();
    }

    void receive(std::shared_ptr<listener_state> l) {
        if (l->port) {
            return l->port->wait_readable([self = this->shared_from_this(), l](std::error_code ec) {
                if (ec || !l->is_open()) return;
                const auto now = self->grace_timer_.now();
                l->port->receive(64, [&](const received_datagram& d) {
                    bump(self->datagrams_);
                    self->on_datagram(l, d, now);
                });
                auto touched = std::move(self->touched_);
                self->touched_.clear();
                self->flush_touched(*l, touched, now);
                if (l->is_open()) self->receive(l);
            });
        }
        l->socket.async_wait(asio::socket_base::wait_read, [self = this->shared_from_this(), l](std::error_code ec) {
            if (ec == asio::error::operation_aborted || !l->socket.is_open()) return;
            const auto now = self->grace_timer_.now();
            // Drain the queue (bounded) without going back to the reactor each time. Errors on an
            // unconnected socket (ICMP reports about some peer) concern no one in particular.
            for (std::size_t got = 0, calls = 0; got < 64 && calls < 64 && l->socket.is_open(); ++calls) {
                const std::size_t n = l->receiver.receive(
                    l->socket.native_handle(),
                    [&](const received_datagram& d) {
                        bump(self->datagrams_);
                        self->on_datagram(l, d, now);
                    },
                    ec);
                got += n;
                if (ec == asio::error::would_block) break;
                // recvmmsg returned fewer than asked: the queue was empty, so another call would
                // only say EAGAIN. What arrives after it is not lost: asio re-arms the wait with
                // EPOLL_CTL_MOD, which reports a socket that is readable already.
                if (n < l->receiver.messages()) break;
            }
            // One flush per connection per batch: ACKs and data for the whole batch leave together
            // instead of a send per datagram.
            auto touched = std::move(self->touched_);
            self->touched_.clear();
            self->flush_touched(*l, touched, now);
            if (l->socket.is_open()) self->receive(l);
        });
    }

    /// Flushes the connections a receive batch touched. With sendmmsg, what they all have to send
    /// leaves in one system call, to all their peers, instead of one (or more) per connection.
    void flush_touched(listener_state& l, std::vector<std::shared_ptr<session_type>>& touched, std::uint64_t now) {
        const bool gather = options_.udp_sendmmsg_messages > 1 && touched.size() > 1;
        l.gathered.clear();
        for (auto& s : touched) {
            if (!gather || !s->gathers_on(l)) {
                s->flush_after_batch();
                continue;
            }
            s->gather(now);
            const auto runs = s->outbox().runs();
            l.gathered.insert(l.gathered.end(), runs.begin(), runs.end());
        }
        if (!gather) return;
        const auto sent = l.send(l.gathered.data(), l.gathered.size(), options_.udp_sendmmsg_messages);
        std::size_t at = 0;
        for (auto& s : touched) {
            if (!s->gathers_on(l)) continue;
            const std::size_t n = s->outbox().runs().size();
            const std::size_t done = sent > at ? std::min(n, sent - at) : 0;
            s->gathered_sent(done, done < n ? &l.gathered[at + done] : nullptr);
            at += n;
        }
    }

    void on_datagram(const std::shared_ptr<listener_state>& listener, const received_datagram& d, std::uint64_t now) {
        listener_state& l = *listener;
        if (!d.from || !server_endpoint::destination_id(d.data, d.len, key_, cids_->length())) {
            ++dropped_;  // garbage, or a version we do not speak: ignore, as RFC 9000 allows
            return;
        }
        if (peers_.size() > 1) {  // several workers: the connection ID names the one that owns it
            const auto owner = cids_->owner(reinterpret_cast<const std::uint8_t*>(key_.data()), key_.size(), peers_.size());
            if (owner != worker_id_) return hand_off(owner, listener, d);
        }
        const network_path path(l.local.data(), static_cast<socklen_t>(l.local.size()), d.from, d.from_len);
        if (auto it = sessions_.find(key_); it != sessions_.end()) {
            auto session = it->second;  // kept alive until its flush, even if it terminates
            session->deliver(path, d.data, d.len, d.ecn, now);
            mark_touched(std::move(session));
            return;
        }
        while (!ended_order_.empty() && ended_order_.front().first <= now) {  // their closing periods are over
            auto it = ended_.find(ended_order_.front().second);
            if (it != ended_.end() && it->second <= now) ended_.erase(it);
            ended_order_.pop_front();
        }
        if (ended_.contains(key_)) {  // a connection that just ended
            ++dropped_;
            return;
        }
        // No connection has this ID: the endpoint decides, from the datagram and the load.
        std::string address = server_endpoint::address_key(d.from, d.from_len);
        endpoint_load load;
        load.handshakes = handshakes_;
        load.connections = live_.size();
        if (auto it = per_address_.find(address); it != per_address_.end()) load.from_address = it->second;
        load.shutting_down = shutting_down_;
        switch (endpoint_.on_unknown(d.data, d.len, d.from, d.from_len, load, now, wall_now_ns())) {
        case stateless_action::drop:
            ++dropped_;
            return;
        case stateless_action::reply:
            return send_stateless(l, d);
        case stateless_action::accept:
            break;
        }
        auto session =
            std::make_shared<session_type>(executor_, options_, limits_, tls_, this->weak_from_this(), listener);
        session->set_cid_factory(cids_);
        if (preferred_ && preferred_ != listener) session->set_preferred_socket(preferred_);
        try {
            session->accept(path, {d.data, d.len}, endpoint_.secret(), endpoint_.admission(), now);
        } catch (const std::exception&) {
            for (const auto& key : session->cids()) unroute(key);
            ++dropped_;
            return;
        }
        ++handshakes_;
        ++per_address_[address];
        live_.emplace(session.get(), live_entry{session, std::move(address), false});
        bump(live_count_);
        bump(accepted_);
        session->deliver(path, d.data, d.len, d.ecn, now);
        mark_touched(std::move(session));
    }

    /// Connection IDs from now on: QUIC-LB ones if configured, naming `worker` (-1: one worker).
    /// The endpoint's Retry packets use them too, so the client's next Initial routes back here.
    void use_cid_factory(int worker) {
        cids_ = std::make_shared<cid_factory>(limits_.load_balancing, worker);
        endpoint_.set_connection_ids(cids_->length(), [factory = cids_](std::uint8_t* out) { factory->make(out); });
    }

    /// Sends the endpoint's stateless reply to where `d` came from, at once and only once: if the
    /// socket is full it is dropped, as the datagram it answers could have been.
    void send_stateless(listener_state& l, const received_datagram& d) {
        const auto reply = endpoint_.reply();
        datagram_run run;
        run.data = reply.data();
        run.len = run.segment = reply.size();
        run.to_len = std::min<socklen_t>(d.from_len, sizeof run.to);
        std::memcpy(&run.to, d.from, run.to_len);
        l.send(&run, 1, 1);
    }

    /// A datagram as handed from one worker to another.
    struct handed_datagram {
        std::vector<std::uint8_t> data;
        sockaddr_storage from{};
        socklen_t from_len = 0;
        std::uint8_t ecn = 0;
        std::size_t listener = 0;  ///< which listen() it came in on: the owner answers from its own
    };

    /// Posts a copy of `d` to worker `owner`, which handles it as if its own socket got it.
    void hand_off(std::size_t owner, const std::shared_ptr<listener_state>& l, const received_datagram& d) {
        auto peer = peers_[owner].lock();
        if (!peer) {
            ++dropped_;
            return;
        }
        handed_datagram h;
        h.data.assign(d.data, d.data + d.len);
        h.from_len = std::min<socklen_t>(d.from_len, sizeof h.from);
        std::memcpy(&h.from, d.from, h.from_len);
        h.ecn = d.ecn;
        while (h.listener < listeners_.size() && listeners_[h.listener] != l) ++h.listener;
        bump(handoffs_sent_);
        asio::post(peer->executor_, [peer, h = std::move(h)] { peer->take_handoff(h); });
    }

    void take_handoff(const handed_datagram& h) {
        bump(handoffs_received_);
        if (h.listener >= listeners_.size() || !listeners_[h.listener]->is_open()) {
            ++dropped_;  // this worker stopped listening (shutdown): as if its socket had closed
            return;
        }
        const auto& l = listeners_[h.listener];
        const received_datagram d{h.data.data(), h.data.size(), reinterpret_cast<const sockaddr*>(&h.from), h.from_len,
                                  h.ecn};
        const auto now = grace_timer_.now();
        on_datagram(l, d, now);
        auto touched = std::move(touched_);
        touched_.clear();
        flush_touched(*l, touched, now);
    }

    /// Counters with one writer (this worker) and readers anywhere: no read-modify-write needed.
    template <class T>
    static void bump(std::atomic<T>& counter, int by = 1) noexcept {
        counter.store(counter.load(std::memory_order_relaxed) + static_cast<T>(by), std::memory_order_relaxed);
    }

    void mark_touched(std::shared_ptr<session_type> session) {
        for (const auto& s : touched_)
            if (s == session) return;
        touched_.push_back(std::move(session));
    }

    /// A connection the server has, and what its limits count it as.
    struct live_entry {
        std::shared_ptr<session_type> session;
        std::string address;       ///< server_endpoint::address_key of its peer at the start
        bool established = false;  ///< else it counts as a handshake in progress
    };

    Executor executor_;
    std::shared_ptr<tls_context> tls_;
    connection_options options_;
    server_options limits_;
    server_endpoint endpoint_;
    std::vector<std::shared_ptr<listener_state>> listeners_;
    std::shared_ptr<listener_state> preferred_;  ///< see prefer()
    std::unordered_map<std::string, std::shared_ptr<session_type>> sessions_;
    std::unordered_map<session_type*, live_entry> live_;
    std::unordered_map<std::string, std::size_t> per_address_;  ///< connections per address_key
    /// Connection IDs of connections that ended, until their closing periods end (see forget()).
    std::unordered_map<std::string, std::uint64_t> ended_;
    std::deque<std::pair<std::uint64_t, std::string>> ended_order_;  ///< the same, oldest first
    std::size_t handshakes_ = 0;                                ///< live_ entries not established
    std::size_t running_handlers_ = 0;
    std::unordered_map<std::string, std::size_t> handlers_per_address_;  ///< running, per address_key
    std::uint64_t requests_refused_ = 0;
    std::uint64_t request_timeouts_ = 0;
    std::uint64_t client_certificates_refused_ = 0;
    request_dispatcher<Executor> dispatcher_;
    std::vector<std::shared_ptr<session_type>> touched_;  ///< delivered to in this receive batch
    std::string key_;  ///< reused: the routing key of the datagram at hand
    io_timer<Executor> grace_timer_;  ///< shutdown()'s deadline; its clock is the server's (see virtual_io.hpp)
    bool shutting_down_ = false;
    std::uint64_t dropped_ = 0;
    // A server on several workers (set_worker()); one worker: peers_ is empty.
    std::size_t worker_id_ = 0;
    std::shared_ptr<cid_factory> cids_;  ///< makes this worker's connection IDs (server_options::load_balancing)
    std::vector<std::weak_ptr<server_core>> peers_;
    std::atomic<std::size_t> live_count_{0};  ///< live_.size(), readable from any thread
    std::atomic<std::uint64_t> accepted_{0};
    std::atomic<std::uint64_t> datagrams_{0};
    std::atomic<std::uint64_t> handoffs_sent_{0};
    std::atomic<std::uint64_t> handoffs_received_{0};
};

}  // namespace h3co::detail
