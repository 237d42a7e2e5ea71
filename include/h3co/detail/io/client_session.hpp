// A client connection's I/O: one connected UDP socket feeding one session; two while migrate()
// moves the connection to a new one.
#pragma once

#include <h3co/detail/io/connection_driver.hpp>
#include <h3co/detail/io/udp_receive.hpp>
#include <h3co/detail/io/udp_send.hpp>

#include <asio/ip/udp.hpp>

#include <cstring>
#include <memory>
#include <optional>
#include <string>

namespace h3co::detail {

template <class Executor>
class client_session final : public connection_driver<Executor> {
    using base = connection_driver<Executor>;

public:
    using socket_type = asio::basic_datagram_socket<asio::ip::udp, Executor>;
    using connect_op = pending_op<std::error_code>;

    client_session(Executor ex, const connection_options& options, std::shared_ptr<tls_context> tls)
        : base(ex, session_role::client, options, std::move(tls)),
          socket_(ex),
          receiver_(options.udp_recvmmsg_messages) {}

    /// Starts the handshake with `remote`; `op` completes when HTTP/3 is ready or the attempt failed.
    void start(const asio::ip::udp::endpoint& remote, const std::string& host, std::uint16_t port, connect_op op) {
        if (auto* net = this->network()) {
            port_ = net->connect(remote.data(), static_cast<socklen_t>(remote.size()));
            path_ = network_path(reinterpret_cast<const sockaddr*>(&port_->local_address()), port_->local_length(),
                                 remote.data(), static_cast<socklen_t>(remote.size()));
            return start_session(host, port, std::move(op));
        }
        send_features_.gso = this->options().udp_gso_segments > 1;
        send_features_.ecn = this->options().ecn;
        remote_ = remote;
        std::error_code ec;
        path_ = open_socket(socket_, nullptr, remote_, ec);
        if (ec) return op.complete(ec);
        start_session(host, port, std::move(op));
    }

    /// Moves the connection to a new socket bound to `local` and a port the system picks (null: the
    /// system picks the address too, by its routes, as for the first socket). `op` completes once
    /// the server has validated the new path and the connection uses it, or with why not (the
    /// connection then stays where it was). Cancelling `op` (any type) gives the move up:
    /// operation_aborted, unless the new path was already validated (the move is then done, and
    /// the operation succeeds).
    void migrate(const asio::ip::address* local, pending_op<std::error_code> op) {
        if (this->terminated()) {
            const auto ec = this->close_error();
            return op.complete(ec ? ec : make_error_code(error::connection_closed));
        }
        if (port_) return op.complete(make_error_code(error::not_supported));  // a virtual port each, fixed
        // One move at a time: another migrate(), or the one to the server's preferred address.
        if (migrate_op_ || next_socket_) return op.complete(make_error_code(error::operation_in_progress));
        std::error_code ec;
        socket_type next(this->get_executor());
        auto path = open_socket(next, local, remote_, ec);
        if (ec) return op.complete(ec);
        next_id_ = ++ids_;
        next_path_ = path;
        next_socket_.emplace(std::move(next));
        this->set_several_sockets(true);
        if (const auto refused = this->start_migration(path, this->now())) {
            abandon_migration();
            return op.complete(refused);
        }
        migrate_op_ = std::move(op);
        migrate_op_.on_cancel([weak = std::weak_ptr<client_session>(self_ptr()), ex = this->get_executor(),
                               id = next_id_](asio::cancellation_type) {
            asio::dispatch(ex, [weak, id] {
                auto self = weak.lock();
                if (!self || !self->migrate_op_ || self->next_id_ != id) return;
                if (self->migration_validated_) return;  // done already: the posted finish completes it
                self->abandon_migration();
                self->migrate_op_.complete(make_error_code(asio::error::operation_aborted));
            });
        });
        receive_on(next_id_);
        this->flush_now();  // the PATH_CHALLENGE goes now
    }

    /// Gives up a handshake in progress (its connect operation completes with operation_aborted).
    void cancel_connect() {
        if (connect_op_) this->terminate(make_error_code(asio::error::operation_aborted));
    }

    /// Closes with H3_NO_ERROR (or `app_error_code`) and stops all I/O.
    void close_connection(std::uint64_t app_error_code, std::string_view reason) {
        this->close_now(app_error_code, reason);
    }

    /// The last token the server gave for a next connection (NEW_TOKEN); empty if none came.
    const std::string& address_token() const noexcept { return address_token_; }

    /// The session's numbers, with the ICMP errors this connection outlived.
    connection_stats stats() const {
        auto out = base::stats();
        out.unreachable_errors = unreachable_errors_;
        return out;
    }

private:
    /// start()'s part once the path is set up, the same over a socket or a virtual port.
    void start_session(const std::string& host, std::uint16_t port, connect_op op) {
        const bool v6_literal = host.find(':') != std::string::npos;
        this->default_authority_ = (v6_literal ? "[" + host + "]" : host) + ":" + std::to_string(port);
        try {
            this->start_client(path_, host, this->now());
        } catch (const std::system_error& e) {
            return op.complete(e.code());
        }
        connect_op_ = std::move(op);
        receive();
        this->flush_now();
        // 0-RTT: requests may go now, before the handshake completes.
        if (this->early_data_pending() && connect_op_) connect_op_.complete({});
    }

protected:
    std::size_t transmit(std::span<datagram_run> runs) override {
        if (port_) return port_->send(runs);
        // Connected sockets: no address per send. Errors other than a full buffer (e.g. an
        // ICMP-reported refusal) surface on the receive side. While migrating, each run names its
        // socket (socket_for): consecutive runs for one socket leave together.
        std::size_t done = 0;
        while (done < runs.size()) {
            const std::uint32_t id = runs[done].socket;
            std::size_t end = done + 1;
            while (end < runs.size() && runs[end].socket == id) ++end;
            socket_type* sock = id == 0 || id == current_id_       ? &socket_
                                : next_socket_ && id == next_id_ ? &*next_socket_
                                                                 : nullptr;
            if (!sock || !sock->is_open()) {  // a socket given up (a migration's): its packets are lost
                done = end;
                continue;
            }
            const std::size_t sent = send_runs(sock->native_handle(), true, runs.data() + done, end - done,
                                               this->options().udp_sendmmsg_messages, send_features_);
            done += sent;
            if (done < end) break;  // that socket is full
        }
        return done;
    }

    std::uint32_t socket_for(const sockaddr* local, socklen_t len) override {
        if (next_socket_ && same_address(next_path_, local, len)) return next_id_;
        return current_id_;
    }

    /// The server's preferred address: a socket connected there, which ngtcp2 validates once the
    /// handshake is confirmed and moves to, as for migrate() but with no operation to complete.
    bool choose_preferred_address(const sockaddr* remote, socklen_t len, network_path& path) override {
        if (port_ || next_socket_ || migrate_op_) return false;
        asio::ip::udp::endpoint there;
        if (len > static_cast<socklen_t>(there.capacity())) return false;
        std::memcpy(there.data(), remote, static_cast<std::size_t>(len));
        there.resize(static_cast<std::size_t>(len));
        std::error_code ec;
        socket_type next(this->get_executor());
        path = open_socket(next, nullptr, there, ec);
        if (ec) return false;
        next_id_ = ++ids_;
        next_path_ = path;
        next_socket_.emplace(std::move(next));
        this->set_several_sockets(true);
        receive_on(next_id_);
        return true;
    }

    void on_path_validated(const network_path& path, bool ok) override {
        if (!next_socket_ || !same_address(next_path_, path.local_address(), path.local_len)) {
            // A migration given up (cancelled) whose path validated all the same (a PATH_RESPONSE
            // counts on any path, RFC 9000 §8.2.2): ngtcp2 moved to a socket that is closed. Its
            // packets still leave by socket_ (socket_for); put ngtcp2 back on socket_'s address.
            if (ok && !same_address(path_, path.local_address(), path.local_len))
                asio::post(this->get_executor(), [self = self_ptr()] { self->set_local_address(self->path_); });
            return;
        }
        migration_validated_ = ok;
        // Inside ngtcp2's callback, perhaps in the middle of a receive batch on the old socket:
        // the sockets change places after it.
        asio::post(this->get_executor(), [self = self_ptr(), id = next_id_, ok] { self->finish_migration(id, ok); });
    }

    void wait_writable() override {
        if (port_ || waiting_writable_ || !socket_.is_open()) return;  // a virtual port never fills
        waiting_writable_ = true;
        socket_.async_wait(asio::socket_base::wait_write, [self = self_ptr()](std::error_code ec) {
            self->waiting_writable_ = false;
            if (!ec) self->flush_now();
        });
    }

    void on_new_token(std::span<const std::uint8_t> token) override {
        address_token_.assign(reinterpret_cast<const char*>(token.data()), token.size());
    }

    void on_established() override {
        if (connect_op_) connect_op_.complete({});
    }

    void on_terminated(std::error_code ec) override {
        if (connect_op_) connect_op_.complete(ec);
        if (migrate_op_) migrate_op_.complete(ec);
        base::on_terminated(ec);
    }

    void io_finished() override {
        if (port_) return port_->close();
        std::error_code ignored;
        socket_.close(ignored);
        if (next_socket_) next_socket_->close(ignored);
    }

private:
    std::shared_ptr<client_session> self_ptr() { return std::static_pointer_cast<client_session>(this->shared_from_this()); }

    void receive() {
        if (port_) return port_->wait_readable([self = self_ptr()](std::error_code ec) { self->on_port_readable(ec); });
        receive_on(current_id_);
    }

    /// Waits for datagrams on socket `id` (the current one, or a migration's new one). The wait
    /// follows the socket when a migration makes the new socket the current one.
    void receive_on(std::uint32_t id) {
        socket_type* sock = id == current_id_ ? &socket_ : &*next_socket_;
        sock->async_wait(asio::socket_base::wait_read,
                         [self = self_ptr(), id](std::error_code ec) { self->on_readable(id, ec); });
    }

    void on_port_readable(std::error_code ec) {
        if (this->terminated() || ec == asio::error::operation_aborted) return;
        const auto now = this->now();
        port_->receive(64, [&](const received_datagram& d) { this->read_packet(path_, d.data, d.len, d.ecn, now); });
        if (this->terminated()) return;
        this->flush_now();
        receive();
    }

    void on_readable(std::uint32_t id, std::error_code ec) {
        if (this->terminated() || ec == asio::error::operation_aborted) return;
        if (id != current_id_) {
            if (next_socket_ && id == next_id_) return on_next_readable(ec);
            return;  // a socket a migration gave up
        }
        // The socket is connected: every datagram comes on the path fixed when it was opened.
        const auto now = this->now();
        // Drain what is queued (bounded) before flushing once: fewer, fuller packets go out.
        for (std::size_t got = 0; got < 64 && !ec && !this->terminated();) {
            const std::size_t n = receiver_.receive(
                socket_.native_handle(),
                [&](const received_datagram& d) { this->read_packet(path_, d.data, d.len, d.ecn, now); }, ec);
            got += n;
            // Fewer than asked: the queue was empty (see server_core's receive); the next call
            // would only say EAGAIN, and asio's re-armed wait reports what comes after.
            if (!ec && n < receiver_.messages()) break;
        }
        if (ec && ec != asio::error::would_block) {
            // On a connected UDP socket an ICMP "port unreachable" arrives as ECONNREFUSED. During
            // the handshake it fails the attempt at once (connect() tries the next address). Once
            // established it is no proof of anything: ICMP is not authenticated (anyone who knows
            // the 4-tuple can forge one) and a server restarting on its port sends it for a moment.
            // The connection carries on; if the server is really gone, the idle timeout ends it.
            if (!this->established() || !is_unreachable(ec)) {
                this->terminate(ec);
                return;
            }
            ++unreachable_errors_;
        }
        if (this->terminated()) return;
        this->flush_now();
        receive();
    }

    /// Datagrams on a migration's new socket, before the path is validated: PATH_RESPONSE and
    /// whatever else the server sends there. An error on it (ICMP) leaves the validation to fail.
    void on_next_readable(std::error_code ec) {
        const auto now = this->now();
        for (std::size_t got = 0; got < 64 && !ec && !this->terminated() && next_socket_;) {
            const auto& path = next_path_;  // the sockets change places only in a posted handler
            got += receiver_.receive(
                next_socket_->native_handle(),
                [&](const received_datagram& d) { this->read_packet(path, d.data, d.len, d.ecn, now); }, ec);
        }
        if (this->terminated()) return;
        this->flush_now();
        if (next_socket_ && (!ec || ec == asio::error::would_block)) receive_on(next_id_);
    }

    /// Opens `sock` connected to `remote` (the server), bound to `local` (any address when null:
    /// the system picks, as for the first socket) and a free port; returns its path.
    network_path open_socket(socket_type& sock, const asio::ip::address* local, const asio::ip::udp::endpoint& remote,
                             std::error_code& ec) {
        sock.open(remote.protocol(), ec);
        if (!ec && local) sock.bind(asio::ip::udp::endpoint(*local, 0), ec);
        if (!ec) sock.connect(remote, ec);  // connected: ICMP errors (nobody listening) reach us
        if (!ec) sock.non_blocking(true, ec);
        if (ec) return {};
        const auto here = sock.local_endpoint(ec);
        if (ec) return {};
        const bool v6 = remote.address().is_v6();
        if (this->options().udp_gro) enable_udp_gro(sock.native_handle());
        if (this->options().ecn) enable_ecn_receive(sock.native_handle(), v6);
        apply_socket_buffers(sock, this->options().socket_buffer);
        apply_dont_fragment(sock.native_handle(), v6);
        return network_path(here.data(), static_cast<socklen_t>(here.size()), remote.data(),
                            static_cast<socklen_t>(remote.size()));
    }

    static asio::ip::udp::endpoint endpoint_of(const network_path& p) {
        asio::ip::udp::endpoint e;
        std::memcpy(e.data(), &p.remote, std::min<std::size_t>(p.remote_len, e.capacity()));
        e.resize(std::min<std::size_t>(p.remote_len, e.capacity()));
        return e;
    }

    static bool same_address(const network_path& p, const sockaddr* local, socklen_t len) noexcept {
        return len == p.local_len && std::memcmp(local, &p.local, static_cast<std::size_t>(len)) == 0;
    }

    /// After the path validation callback: the new socket becomes the connection's (`ok`), or is
    /// closed. `id` names the migration it was for.
    void finish_migration(std::uint32_t id, bool ok) {
        if (this->terminated() || next_id_ != id || !next_socket_) return;  // given up, or the connection ended
        if (!ok) {
            abandon_migration();
            if (migrate_op_) migrate_op_.complete(make_error_code(error::path_validation_failed));
            return;
        }
        std::error_code ignored;
        socket_.close(ignored);  // its pending wait ends (operation_aborted); late packets to it are lost
        socket_ = std::move(*next_socket_);
        next_socket_.reset();
        path_ = next_path_;
        remote_ = endpoint_of(path_);  // the server's preferred address, after a move there
        current_id_ = id;  // the new socket's pending wait now reads as the current one's
        this->set_several_sockets(false);
        migration_validated_ = false;
        if (migrate_op_) migrate_op_.complete({});
        this->flush_now();
    }

    /// Closes a migration's new socket; the connection stays on its current one.
    void abandon_migration() {
        std::error_code ignored;
        if (next_socket_) next_socket_->close(ignored);
        next_socket_.reset();
        this->set_several_sockets(false);
        migration_validated_ = false;
    }

    static bool is_unreachable(const std::error_code& ec) noexcept {
        return ec == asio::error::connection_refused || ec == asio::error::host_unreachable ||
               ec == asio::error::network_unreachable;
    }

    socket_type socket_;
    std::shared_ptr<datagram_port> port_;  ///< in socket_'s place on a virtual network
    network_path path_;
    asio::ip::udp::endpoint remote_;
    // ---- migration (migrate()) ----
    std::uint32_t ids_ = 1;                    ///< sockets numbered so far: a given-up one's never returns
    std::uint32_t current_id_ = 1;             ///< socket_'s number (datagram_run::socket)
    std::uint32_t next_id_ = 0;                ///< next_socket_'s number, or a given-up one's
    std::optional<socket_type> next_socket_;   ///< the socket a migration moves to, until validated
    network_path next_path_;
    pending_op<std::error_code> migrate_op_;
    bool migration_validated_ = false;         ///< the new path validated; finish_migration is posted
    send_features send_features_;
    datagram_receiver receiver_;
    connect_op connect_op_;
    std::string address_token_;
    bool waiting_writable_ = false;
    std::uint64_t unreachable_errors_ = 0;
};

}  // namespace h3co::detail
