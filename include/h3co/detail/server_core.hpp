// The server's engine room: listening sockets, routing datagrams to connections by connection ID,
// accepting new connections, and starting a handler coroutine per request.
#pragma once

#include <h3co/detail/timer_and_flush.hpp>
#include <h3co/detail/udp_receive.hpp>
#include <h3co/detail/udp_send.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/udp.hpp>
#include <asio/ip/v6_only.hpp>

#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace h3co::detail {

inline std::string cid_key(const std::uint8_t* data, std::size_t len) { return std::string(reinterpret_cast<const char*>(data), len); }
inline std::string cid_key(const ngtcp2_cid& cid) { return cid_key(cid.data, cid.datalen); }

inline constexpr std::size_t server_cid_length = 18;

template <class Executor>
class server_core;

/// A listening UDP socket and what every connection on it shares: receive buffers, what the
/// kernel refused (GSO, ECN), and the runs gathered for one sendmmsg to many peers.
template <class Executor>
struct server_socket {
    using socket_type = asio::basic_datagram_socket<asio::ip::udp, Executor>;

    server_socket(Executor ex, const connection_options& options)
        : socket(std::move(ex)),
          receiver(options.udp_recvmmsg_messages),
          features{options.udp_gso_segments > 1, options.ecn} {}

    socket_type socket;
    asio::ip::udp::endpoint local;
    datagram_receiver receiver;
    send_features features;
    std::vector<datagram_run> gathered;  ///< reused: no allocation per batch once grown
};

template <class Executor>
class server_session final : public connection_driver<Executor> {
    using base = connection_driver<Executor>;

public:
    server_session(Executor ex, const connection_options& options, std::shared_ptr<tls_context> tls,
                   std::weak_ptr<server_core<Executor>> core, std::shared_ptr<server_socket<Executor>> socket)
        : base(ex, session_role::server, options, std::move(tls)), core_(std::move(core)), socket_(std::move(socket)) {}

    void accept(const packet_path& path, const ngtcp2_pkt_hd& hd, const std::uint8_t* secret, std::size_t secret_len) {
        ngtcp2_cid scid;
        scid.datalen = server_cid_length;
        random_bytes(scid.data, scid.datalen);
        this->start_server(path, hd, scid, secret, secret_len);
        cids_.insert(cid_key(hd.dcid));
        cids_.insert(cid_key(scid));
    }

    /// Feeds a datagram; the caller flushes once per receive batch (see server_core::receive).
    void deliver(const packet_path& path, const std::uint8_t* data, std::size_t len, std::uint8_t ecn) {
        this->read_packet(path.get(), data, len, ecn);
    }

    void flush_after_batch() { this->flush_now(); }

    /// For a send gathered across connections: flush, leaving the tail (less than a send's worth)
    /// in the outbox for the gathered send.
    void gather() {
        if (this->terminated()) return;
        this->before_flush();
        this->flush(64, true);
    }

    /// The gathered send took the first `done` runs of the outbox (`next`: what is left of the
    /// one after them, when given).
    void gathered_sent(std::size_t done, const datagram_run* next) {
        this->outbox_sent(done, next);
        this->after_flush(this->outbox().empty());
    }

    const server_socket<Executor>& socket() const noexcept { return *socket_; }

    const std::unordered_set<std::string>& cids() const noexcept { return cids_; }

    void goaway() { this->send_goaway(); }
    void close_now(std::uint64_t code) { this->close(code); }

    void run_after_handler(const std::shared_ptr<stream_state>& st, bool failed) {
        if (this->terminated()) return;
        if (failed) {
            if (st->send == send_state::idle) {
                this->submit_response(*st, 500, {}, pending_op<std::error_code>(noop(), this->get_executor()));
            } else if (st->send == send_state::open) {  // a body was cut short: never let it look complete
                this->reset(*st, NGHTTP3_H3_INTERNAL_ERROR, make_error_code(error::protocol_error));
                return;
            }
        }
        if (st->send == send_state::idle)
            this->submit_response(*st, 200, {}, pending_op<std::error_code>(noop(), this->get_executor()));
        // A handler that returns has said all it will: end the response, stop reading what is left.
        this->stop_reading(*st, NGHTTP3_H3_NO_ERROR);
        if (st->send == send_state::open)
            this->finish(*st, pending_op<std::error_code>(noop(), this->get_executor()));
    }

protected:
    std::size_t transmit(std::span<datagram_run> runs) override {
        if (!socket_->socket.is_open()) return runs.size();
        return send_runs(socket_->socket.native_handle(), false, runs.data(), runs.size(),
                         this->options().udp_sendmmsg_messages, socket_->features);
    }

    void wait_writable() override {
        if (waiting_writable_) return;
        waiting_writable_ = true;
        socket_->socket.async_wait(asio::socket_base::wait_write, [self = self_ptr()](std::error_code ec) {
            self->waiting_writable_ = false;
            if (!ec) self->flush_now();
        });
    }

    void on_request(std::shared_ptr<stream_state> st) override {
        if (auto core = core_.lock()) core->start_handler(self_ptr(), std::move(st));
    }

    void on_connection_id(const ngtcp2_cid& cid, bool added) override {
        auto key = cid_key(cid);
        auto core = core_.lock();
        if (added) {
            cids_.insert(key);
            if (core) core->route(key, self_ptr());
        } else {
            cids_.erase(key);
            if (core) core->unroute(key);
        }
    }

    void on_terminated(std::error_code) override {
        this->stop_timer();
        if (auto core = core_.lock()) core->forget(*this);
    }

private:
    static auto noop() {
        return [](std::error_code) {};
    }
    std::shared_ptr<server_session> self_ptr() { return std::static_pointer_cast<server_session>(this->shared_from_this()); }

    std::weak_ptr<server_core<Executor>> core_;
    std::shared_ptr<server_socket<Executor>> socket_;
    std::unordered_set<std::string> cids_;
    bool waiting_writable_ = false;
};

/// Starts a handler for one request; given by the public server, which knows the handler types.
template <class Executor>
using request_dispatcher = std::function<void(std::shared_ptr<server_session<Executor>>, std::shared_ptr<stream_state>)>;

template <class Executor>
class server_core : public std::enable_shared_from_this<server_core<Executor>> {
public:
    using session_type = server_session<Executor>;
    using listener_state = server_socket<Executor>;

    server_core(Executor ex, std::shared_ptr<tls_context> tls, const connection_options& options)
        : executor_(std::move(ex)), tls_(std::move(tls)), options_(options), grace_timer_(executor_) {
        random_bytes(static_secret_.data(), static_secret_.size());
    }

    void set_dispatcher(request_dispatcher<Executor> d) { dispatcher_ = std::move(d); }

    tls_context& tls() const noexcept { return *tls_; }

    /// Binds `endpoint` (port 0: any free port) and starts receiving; returns the bound endpoint.
    asio::ip::udp::endpoint listen(const asio::ip::udp::endpoint& endpoint) {
        auto listener = std::make_shared<listener_state>(executor_, options_);
        auto& socket = listener->socket;
        socket.open(endpoint.protocol());
        if (endpoint.address().is_v6()) socket.set_option(asio::ip::v6_only(false));  // "::" serves IPv4 too
        socket.bind(endpoint);
        socket.non_blocking(true);
        apply_socket_buffers(socket, options_.socket_buffer);
        if (options_.udp_gro) enable_udp_gro(socket.native_handle());
        if (options_.ecn) enable_ecn_receive(socket.native_handle(), endpoint.address().is_v6());
        listener->local = socket.local_endpoint();
        listeners_.push_back(listener);
        receive(listener);
        return listener->local;
    }

    std::vector<asio::ip::udp::endpoint> local_endpoints() const {
        std::vector<asio::ip::udp::endpoint> out;
        for (const auto& l : listeners_) out.push_back(l->local);
        return out;
    }

    void start_handler(std::shared_ptr<session_type> session, std::shared_ptr<stream_state> st) {
        if (dispatcher_) dispatcher_(std::move(session), std::move(st));
    }

    void route(const std::string& key, std::shared_ptr<session_type> s) { sessions_[key] = std::move(s); }
    void unroute(const std::string& key) { sessions_.erase(key); }
    void forget(session_type& s) {
        for (const auto& key : s.cids()) {
            auto it = sessions_.find(key);
            if (it != sessions_.end() && it->second.get() == &s) sessions_.erase(it);
        }
        live_.erase(&s);
        if (shutting_down_ && live_.empty()) close_listeners();
    }

    /// GOAWAY to every connection; no new connections; listeners close when the last one ends.
    /// Connections still open after `grace` are closed (their streams fail with connection_closed).
    void shutdown(std::chrono::steady_clock::duration grace) {
        shutting_down_ = true;
        for (auto& [ptr, s] : live_) s->goaway();
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
        for (auto& [ptr, s] : live) s->close_now(NGHTTP3_H3_NO_ERROR);
        close_listeners();
    }

    std::size_t connection_count() const noexcept { return live_.size(); }
    std::uint64_t dropped_datagrams() const noexcept { return dropped_; }
    const Executor& get_executor() const noexcept { return executor_; }

private:
    void close_listeners() {
        for (auto& l : listeners_) {
            std::error_code ignored;
            l->socket.close(ignored);
        }
    }

    void receive(std::shared_ptr<listener_state> l) {
        l->socket.async_wait(asio::socket_base::wait_read, [self = this->shared_from_this(), l](std::error_code ec) {
            if (ec == asio::error::operation_aborted || !l->socket.is_open()) return;
            // Drain the queue (bounded) without going back to the reactor each time. Errors on an
            // unconnected socket (ICMP reports about some peer) concern no one in particular.
            for (std::size_t got = 0, calls = 0; got < 64 && calls < 64 && l->socket.is_open(); ++calls) {
                got += l->receiver.receive(
                    l->socket.native_handle(), [&](const received_datagram& d) { self->on_datagram(l, d); }, ec);
                if (ec == asio::error::would_block) break;
            }
            // One flush per connection per batch: ACKs and data for the whole batch leave together
            // instead of a send per datagram.
            auto touched = std::move(self->touched_);
            self->touched_.clear();
            self->flush_touched(*l, touched);
            if (l->socket.is_open()) self->receive(l);
        });
    }

    /// Flushes the connections a receive batch touched. With sendmmsg, what they all have to send
    /// leaves in one system call, to all their peers, instead of one (or more) per connection.
    void flush_touched(listener_state& l, std::vector<std::shared_ptr<session_type>>& touched) {
        const bool gather = options_.udp_sendmmsg_messages > 1 && touched.size() > 1;
        l.gathered.clear();
        for (auto& s : touched) {
            if (!gather || &s->socket() != &l) {
                s->flush_after_batch();
                continue;
            }
            s->gather();
            const auto runs = s->outbox();
            l.gathered.insert(l.gathered.end(), runs.begin(), runs.end());
        }
        if (!gather) return;
        const auto sent = l.socket.is_open()
                              ? send_runs(l.socket.native_handle(), false, l.gathered.data(), l.gathered.size(),
                                          options_.udp_sendmmsg_messages, l.features)
                              : l.gathered.size();
        std::size_t at = 0;
        for (auto& s : touched) {
            if (&s->socket() != &l) continue;
            const std::size_t n = s->outbox().size();
            const std::size_t done = sent > at ? std::min(n, sent - at) : 0;
            s->gathered_sent(done, done < n ? &l.gathered[at + done] : nullptr);
            at += n;
        }
    }

    void on_datagram(const std::shared_ptr<listener_state>& listener, const received_datagram& d) {
        listener_state& l = *listener;
        const std::uint8_t* data = d.data;
        const std::size_t n = d.len;
        const std::uint8_t ecn = d.ecn;
        if (!d.from) {
            ++dropped_;
            return;
        }
        ngtcp2_version_cid vc;
        if (ngtcp2_pkt_decode_version_cid(&vc, data, n, server_cid_length) != 0) {
            ++dropped_;  // garbage, or a version we do not speak: ignore, as RFC 9000 allows
            return;
        }
        const packet_path path(l.local.data(), static_cast<socklen_t>(l.local.size()), d.from, d.from_len);
        if (auto it = sessions_.find(cid_key(vc.dcid, vc.dcidlen)); it != sessions_.end()) {
            auto session = it->second;  // kept alive until its flush, even if it terminates
            session->deliver(path, data, n, ecn);
            mark_touched(std::move(session));
            return;
        }
        if (shutting_down_) {
            ++dropped_;
            return;
        }
        ngtcp2_pkt_hd hd;
        if (ngtcp2_accept(&hd, data, n) != 0) {
            ++dropped_;
            return;
        }
        auto session = std::make_shared<session_type>(executor_, options_, tls_, this->weak_from_this(), listener);
        try {
            session->accept(path, hd, static_secret_.data(), static_secret_.size());
        } catch (const std::exception&) {
            ++dropped_;
            return;
        }
        for (const auto& key : session->cids()) sessions_[key] = session;
        live_[session.get()] = session;
        session->deliver(path, data, n, ecn);
        mark_touched(std::move(session));
    }

    void mark_touched(std::shared_ptr<session_type> session) {
        for (const auto& s : touched_)
            if (s == session) return;
        touched_.push_back(std::move(session));
    }

    Executor executor_;
    std::shared_ptr<tls_context> tls_;
    connection_options options_;
    std::array<std::uint8_t, 32> static_secret_;
    std::vector<std::shared_ptr<listener_state>> listeners_;
    std::unordered_map<std::string, std::shared_ptr<session_type>> sessions_;
    std::unordered_map<session_type*, std::shared_ptr<session_type>> live_;
    request_dispatcher<Executor> dispatcher_;
    std::vector<std::shared_ptr<session_type>> touched_;  ///< delivered to in this receive batch
    asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>
        grace_timer_;  ///< shutdown()'s deadline
    bool shutting_down_ = false;
    std::uint64_t dropped_ = 0;
};

}  // namespace h3co::detail
