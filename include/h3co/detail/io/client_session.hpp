// A client connection's I/O: one connected UDP socket feeding one session.
#pragma once

#include <h3co/detail/io/connection_driver.hpp>
#include <h3co/detail/io/udp_receive.hpp>
#include <h3co/detail/io/udp_send.hpp>

#include <asio/ip/udp.hpp>

#include <memory>
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
        std::error_code ec;
        socket_.open(remote.protocol(), ec);
        if (!ec) socket_.connect(remote, ec);  // connected: ICMP errors (nobody listening) reach us
        if (!ec) socket_.non_blocking(true, ec);
        if (ec) return op.complete(ec);
        const auto local = socket_.local_endpoint();
        path_ = network_path(local.data(), static_cast<socklen_t>(local.size()), remote.data(),
                             static_cast<socklen_t>(remote.size()));
        send_features_.gso = this->options().udp_gso_segments > 1;
        send_features_.ecn = this->options().ecn;
        if (this->options().udp_gro) enable_udp_gro(socket_.native_handle());
        if (this->options().ecn) enable_ecn_receive(socket_.native_handle(), remote.address().is_v6());
        apply_socket_buffers(socket_, this->options().socket_buffer);
        apply_dont_fragment(socket_.native_handle(), remote.address().is_v6());
        start_session(host, port, std::move(op));
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
        if (!socket_.is_open()) return runs.size();
        // Connected socket: no address per send. Errors other than a full buffer (e.g. an
        // ICMP-reported refusal) surface on the receive side.
        return send_runs(socket_.native_handle(), true, runs.data(), runs.size(),
                         this->options().udp_sendmmsg_messages, send_features_);
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
        base::on_terminated(ec);
    }

    void io_finished() override {
        if (port_) return port_->close();
        std::error_code ignored;
        socket_.close(ignored);
    }

private:
    std::shared_ptr<client_session> self_ptr() { return std::static_pointer_cast<client_session>(this->shared_from_this()); }

    void receive() {
        if (port_) return port_->wait_readable([self = self_ptr()](std::error_code ec) { self->on_readable(ec); });
        socket_.async_wait(asio::socket_base::wait_read, [self = self_ptr()](std::error_code ec) { self->on_readable(ec); });
    }

    void on_readable(std::error_code ec) {
        if (this->terminated() || ec == asio::error::operation_aborted) return;
        // The socket is connected: every datagram comes on the path fixed at start().
        const auto now = this->now();
        if (port_) {
            port_->receive(64, [&](const received_datagram& d) { this->read_packet(path_, d.data, d.len, d.ecn, now); });
            if (this->terminated()) return;
            this->flush_now();
            return receive();
        }
        // Drain what is queued (bounded) before flushing once: fewer, fuller packets go out.
        for (std::size_t got = 0; got < 64 && !ec && !this->terminated();) {
            got += receiver_.receive(
                socket_.native_handle(),
                [&](const received_datagram& d) { this->read_packet(path_, d.data, d.len, d.ecn, now); }, ec);
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

    static bool is_unreachable(const std::error_code& ec) noexcept {
        return ec == asio::error::connection_refused || ec == asio::error::host_unreachable ||
               ec == asio::error::network_unreachable;
    }

    socket_type socket_;
    std::shared_ptr<datagram_port> port_;  ///< in socket_'s place on a virtual network
    network_path path_;
    send_features send_features_;
    datagram_receiver receiver_;
    connect_op connect_op_;
    std::string address_token_;
    bool waiting_writable_ = false;
    std::uint64_t unreachable_errors_ = 0;
};

}  // namespace h3co::detail
