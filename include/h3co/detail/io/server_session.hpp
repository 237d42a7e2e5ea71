// One server connection's I/O: its session, sending through the listening socket it arrived on.
#pragma once

#include <h3co/detail/connection_id.hpp>
#include <h3co/detail/io/connection_driver.hpp>
#include <h3co/detail/io/reuseport.hpp>
#include <h3co/detail/io/server_socket.hpp>

#include <h3co/server_options.hpp>

#include <asio/post.hpp>

#include <chrono>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <unordered_set>

namespace h3co::detail {

template <class Executor>
class server_core;

template <class Executor>
class server_session final : public connection_driver<Executor> {
    using base = connection_driver<Executor>;

public:
    server_session(Executor ex, const connection_options& options, const server_options& limits,
                   std::shared_ptr<tls_context> tls, std::weak_ptr<server_core<Executor>> core,
                   std::shared_ptr<server_socket<Executor>> socket)
        : base(ex, session_role::server, options, std::move(tls)), core_(std::move(core)), socket_(std::move(socket)) {
        const auto ns = [](std::chrono::milliseconds d) { return static_cast<std::uint64_t>(d.count()) * 1'000'000u; };
        this->set_request_timeouts(ns(limits.header_timeout), ns(limits.body_idle_timeout));
        too_early_for_unsafe_ = limits.reject_unsafe_early_requests;
    }

    /// Accepts the connection whose first Initial is `initial`, from `path`, as the server's
    /// endpoint admitted it. Throws std::system_error when the libraries refuse it.
    void accept(const network_path& path, std::span<const std::uint8_t> initial, std::span<const std::uint8_t> secret,
                const server_admission& admission, std::uint64_t now) {
        std::array<std::uint8_t, 20> scid;
        const std::size_t len = cids_made_ ? cids_made_->length() : server_cid_length;
        make_cid(scid.data(), len);
        path_ = path;
        this->start_server(path, initial, std::span<const std::uint8_t>(scid.data(), len), secret, admission, now);
    }

    /// The factory of this connection's IDs (its worker's: random, or QUIC-LB, naming the worker).
    /// Before accept().
    void set_cid_factory(std::shared_ptr<cid_factory> factory) {
        cids_made_ = std::move(factory);
        this->set_cid_maker([this](std::uint8_t* out, std::size_t len) { make_cid(out, len); });
    }

    /// Where the connection started (its client's address then).
    const network_path& path() const noexcept { return path_; }

    /// NEW_TOKEN with `token`, for the client's next connection (nothing when it is empty).
    void submit_address_token(std::span<const std::uint8_t> token) { this->submit_new_token(token); }

    /// Refuses a request before any handler ran: H3_REQUEST_REJECTED, which tells the client it may
    /// retry it (server_options::max_running_handlers).
    void refuse_request(stream_state& st) {
        if (this->terminated()) return;
        this->streams().reset(st, static_cast<std::uint64_t>(h3_error::request_rejected),
                              make_error_code(error::connection_closed));
    }

    /// Feeds a datagram; the caller flushes once per receive batch (see server_core::receive).
    void deliver(const network_path& path, const std::uint8_t* data, std::size_t len, std::uint8_t ecn,
                 std::uint64_t now) {
        this->read_packet(path, data, len, ecn, now);
    }

    void flush_after_batch() { this->flush_now(); }

    /// For a send gathered across connections: flush, leaving the tail (less than a send's worth)
    /// in the outbox for the gathered send.
    void gather(std::uint64_t now) {
        if (this->terminated()) return;
        this->before_flush();
        gather_blocked_ = !this->flush_to_socket(now, true);
    }

    /// The gathered send took the first `done` runs of the outbox (`next`: what is left of the
    /// one after them, when given).
    void gathered_sent(std::size_t done, const datagram_run* next) {
        this->outbox().sent(done, next);
        this->after_flush(!gather_blocked_ && this->outbox().empty());
    }

    const server_socket<Executor>& socket() const noexcept { return *socket_; }
    /// Whether this connection's packets may join a send gathered on `l`: it sends by `l` only.
    bool gathers_on(const server_socket<Executor>& l) const noexcept { return socket_.get() == &l && !preferred_; }

    /// server_options::preferred_address: offers `l`'s address to the client (before accept()),
    /// and sends the packets of a path that starts there through `l`.
    void set_preferred_socket(std::shared_ptr<server_socket<Executor>> l) {
        preferred_ = std::move(l);
        this->set_preferred_address(reinterpret_cast<const sockaddr*>(preferred_->local.data()),
                                    static_cast<socklen_t>(preferred_->local.size()));
        this->set_several_sockets(true);
    }
    const std::unordered_set<std::string>& cids() const noexcept { return cids_; }

    void goaway() { this->send_goaway(this->now()); }
    void close_connection(std::uint64_t code) { this->close_now(code, {}); }

    /// What happens when a request's handler returns (`failed`: it threw).
    void run_after_handler(const std::shared_ptr<stream_state>& st, bool failed) {
        if (this->terminated()) return;
        auto& m = this->streams();
        if (failed) {
            if (st->send == send_state::idle) {
                m.send_response_header(*st, 500, {}, stream_machine::status_op());
            } else if (st->send == send_state::open) {  // a body was cut short: never let it look complete
                m.reset(*st, static_cast<std::uint64_t>(h3_error::internal_error), make_error_code(error::protocol_error));
                return;
            }
        }
        if (st->send == send_state::idle) m.send_response_header(*st, 200, {}, stream_machine::status_op());
        // A handler that returns has said all it will: end the response, stop reading what is left.
        m.stop_reading(*st, static_cast<std::uint64_t>(h3_error::no_error));
        if (st->send == send_state::open) m.finish(*st, stream_machine::status_op());
    }

protected:
    std::size_t transmit(std::span<datagram_run> runs) override {
        if (!preferred_) return socket_->send(runs.data(), runs.size(), this->options().udp_sendmmsg_messages);
        // Runs name their socket (socket_for): consecutive runs for one leave together.
        std::size_t done = 0;
        while (done < runs.size()) {
            std::size_t end = done + 1;
            while (end < runs.size() && runs[end].socket == runs[done].socket) ++end;
            auto& sock = runs[done].socket == preferred_socket_id ? *preferred_ : *socket_;
            const std::size_t sent = sock.send(runs.data() + done, end - done, this->options().udp_sendmmsg_messages);
            done += sent;
            if (done < end) break;  // that socket is full
        }
        return done;
    }

    std::uint32_t socket_for(const sockaddr* local, socklen_t len) override {
        const auto& here = preferred_->local;
        const bool preferred = len == static_cast<socklen_t>(here.size()) && std::memcmp(local, here.data(), here.size()) == 0;
        return preferred ? preferred_socket_id : 0;
    }

    void wait_writable() override {
        if (socket_->port || waiting_writable_ || !socket_->socket.is_open()) return;  // a virtual port never fills
        waiting_writable_ = true;
        socket_->socket.async_wait(asio::socket_base::wait_write, [self = self_ptr()](std::error_code ec) {
            self->waiting_writable_ = false;
            if (!ec) self->flush_now();
        });
    }

    /// Starts the handler from outside the nghttp3 callback that reported the request.
    void on_request(std::shared_ptr<stream_state> st) override {
        asio::post(this->get_executor(), [self = self_ptr(), st = std::move(st)]() mutable {
            if (self->terminated()) return;
            if (self->too_early(*st)) return;
            if (auto core = self->core_.lock()) core->start_handler(self, std::move(st));
        });
    }

    /// Inside ngtcp2's handshake_completed callback: only counts and queues a NEW_TOKEN frame.
    void on_established() override {
        if (auto core = core_.lock()) core->established(*this);
    }

    /// RFC 8470: an unsafe request that came in 0-RTT (it may be a replay) is answered 425 Too
    /// Early, without its handler; the client sends it again after the handshake.
    bool too_early(stream_state& st) {
        const auto& m = st.request.method;
        if (!too_early_for_unsafe_ || !st.early_data || m == "GET" || m == "HEAD" || m == "OPTIONS") return false;
        auto& machine = this->streams();
        machine.send_response_header(st, 425, {}, stream_machine::status_op());
        machine.stop_reading(st, static_cast<std::uint64_t>(h3_error::no_error));
        machine.finish(st, stream_machine::status_op());
        this->flush_now();
        return true;
    }

    void on_request_timeout() override {
        if (auto core = core_.lock()) core->request_timed_out();
    }

    void on_connection_id(std::span<const std::uint8_t> cid, bool added) override {
        auto key = cid_key(cid.data(), cid.size());
        auto core = core_.lock();
        if (added) {
            cids_.insert(key);
            if (core) core->route(key, self_ptr());
        } else {
            cids_.erase(key);
            if (core) core->retire(key, this->closing_period());
        }
    }

    void on_terminated(std::error_code ec) override {
        base::on_terminated(ec);
        // A server verifies only client certificates: a verify error, or the alert that says none
        // came, before the handshake completed, is a refused client certificate.
        const bool refused_client_certificate =
            !this->established() && (ec.category() == tls_category() || ec == error::client_certificate_required);
        if (auto core = core_.lock()) {
            if (refused_client_certificate) core->client_certificate_refused();
            core->forget(*this);
        }
    }

private:
    /// A fresh connection ID of `len` octets from the factory, never one that routes to a
    /// connection of this worker already: short QUIC-LB nonces can repeat.
    void make_cid(std::uint8_t* out, std::size_t len) {
        if (!cids_made_ || len != cids_made_->length()) return random_bytes(out, len);
        auto core = core_.lock();
        for (int tries = 0; tries < 16; ++tries) {
            cids_made_->make(out);
            if (!core || !core->routes(cid_key(out, len))) return;
        }
    }

    std::shared_ptr<server_session> self_ptr() { return std::static_pointer_cast<server_session>(this->shared_from_this()); }

    std::weak_ptr<server_core<Executor>> core_;
    bool too_early_for_unsafe_ = true;  ///< server_options::reject_unsafe_early_requests
    std::shared_ptr<server_socket<Executor>> socket_;
    std::shared_ptr<server_socket<Executor>> preferred_;  ///< see set_preferred_socket()
    static constexpr std::uint32_t preferred_socket_id = 1;  ///< datagram_run::socket: by preferred_
    network_path path_;
    std::unordered_set<std::string> cids_;
    std::shared_ptr<cid_factory> cids_made_;  ///< see set_cid_factory()
    bool waiting_writable_ = false;
    bool gather_blocked_ = false;  ///< the gather's own sends already found the socket full
};

}  // namespace h3co::detail
