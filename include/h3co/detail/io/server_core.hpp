// The server's engine room: listening sockets, routing datagrams to connections by connection ID,
// accepting new connections, and starting a handler per request.
#pragma once

#include <h3co/detail/io/clock.hpp>
#include <h3co/detail/io/server_session.hpp>
#include <h3co/detail/io/server_socket.hpp>
#include <h3co/detail/server_endpoint.hpp>

#include <asio/basic_waitable_timer.hpp>
#include <asio/ip/udp.hpp>
#include <asio/ip/v6_only.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace h3co::detail {

/// Starts a handler for one request; given by the public server, which knows the handler types.
template <class Executor>
using request_dispatcher = std::function<void(std::shared_ptr<server_session<Executor>>, std::shared_ptr<stream_state>)>;

template <class Executor>
class server_core : public std::enable_shared_from_this<server_core<Executor>> {
public:
    using session_type = server_session<Executor>;
    using listener_state = server_socket<Executor>;

    server_core(Executor ex, std::shared_ptr<tls_context> tls, const connection_options& options)
        : executor_(std::move(ex)), tls_(std::move(tls)), options_(options), grace_timer_(executor_) {}

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
        apply_dont_fragment(socket.native_handle(), endpoint.address().is_v6());
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
        for (auto& [ptr, s] : live) s->close_connection(static_cast<std::uint64_t>(h3_error::no_error));
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
            const auto now = steady_now_ns();
            // Drain the queue (bounded) without going back to the reactor each time. Errors on an
            // unconnected socket (ICMP reports about some peer) concern no one in particular.
            for (std::size_t got = 0, calls = 0; got < 64 && calls < 64 && l->socket.is_open(); ++calls) {
                got += l->receiver.receive(
                    l->socket.native_handle(), [&](const received_datagram& d) { self->on_datagram(l, d, now); }, ec);
                if (ec == asio::error::would_block) break;
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
            if (!gather || &s->socket() != &l) {
                s->flush_after_batch();
                continue;
            }
            s->gather(now);
            const auto runs = s->outbox().runs();
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
            const std::size_t n = s->outbox().runs().size();
            const std::size_t done = sent > at ? std::min(n, sent - at) : 0;
            s->gathered_sent(done, done < n ? &l.gathered[at + done] : nullptr);
            at += n;
        }
    }

    void on_datagram(const std::shared_ptr<listener_state>& listener, const received_datagram& d, std::uint64_t now) {
        listener_state& l = *listener;
        if (!d.from || !server_endpoint::destination_id(d.data, d.len, key_)) {
            ++dropped_;  // garbage, or a version we do not speak: ignore, as RFC 9000 allows
            return;
        }
        const network_path path(l.local.data(), static_cast<socklen_t>(l.local.size()), d.from, d.from_len);
        if (auto it = sessions_.find(key_); it != sessions_.end()) {
            auto session = it->second;  // kept alive until its flush, even if it terminates
            session->deliver(path, d.data, d.len, d.ecn, now);
            mark_touched(std::move(session));
            return;
        }
        if (shutting_down_ || !server_endpoint::acceptable_initial(d.data, d.len)) {
            ++dropped_;
            return;
        }
        auto session = std::make_shared<session_type>(executor_, options_, tls_, this->weak_from_this(), listener);
        try {
            session->accept(path, {d.data, d.len}, endpoint_.secret(), now);
        } catch (const std::exception&) {
            for (const auto& key : session->cids()) unroute(key);
            ++dropped_;
            return;
        }
        live_[session.get()] = session;
        session->deliver(path, d.data, d.len, d.ecn, now);
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
    server_endpoint endpoint_;
    std::vector<std::shared_ptr<listener_state>> listeners_;
    std::unordered_map<std::string, std::shared_ptr<session_type>> sessions_;
    std::unordered_map<session_type*, std::shared_ptr<session_type>> live_;
    request_dispatcher<Executor> dispatcher_;
    std::vector<std::shared_ptr<session_type>> touched_;  ///< delivered to in this receive batch
    std::string key_;  ///< reused: the routing key of the datagram at hand
    asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>
        grace_timer_;  ///< shutdown()'s deadline
    bool shutting_down_ = false;
    std::uint64_t dropped_ = 0;
};

}  // namespace h3co::detail
