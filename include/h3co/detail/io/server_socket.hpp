// A server's listening UDP socket and what every connection on it shares: receive buffers, what
// the kernel refused (GSO, ECN), and the runs gathered for one sendmmsg to many peers.
#pragma once

#include <h3co/detail/datagram_run.hpp>
#include <h3co/detail/io/udp_receive.hpp>
#include <h3co/detail/io/udp_send.hpp>
#include <h3co/detail/io/virtual_io.hpp>
#include <h3co/options.hpp>

#include <asio/ip/udp.hpp>

#include <vector>

namespace h3co::detail {

template <class Executor>
struct server_socket {
    using socket_type = asio::basic_datagram_socket<asio::ip::udp, Executor>;

    server_socket(Executor ex, const connection_options& options)
        : socket(std::move(ex)),
          receiver(options.udp_recvmmsg_messages),
          features{options.udp_gso_segments > 1, options.ecn} {}

    /// Sends the runs (see send_runs); returns how many left entirely.
    std::size_t send(datagram_run* runs, std::size_t count, std::size_t max_messages) {
        if (port) return port->send({runs, count});
        if (!socket.is_open()) return count;
        return send_runs(socket.native_handle(), false, runs, count, max_messages, features);
    }
    bool is_open() const { return port ? port->is_open() : socket.is_open(); }
    void close() {
        if (port) return port->close();
        std::error_code ignored;
        socket.close(ignored);
    }

    socket_type socket;
    std::shared_ptr<datagram_port> port;  ///< in socket's place on a virtual network
    asio::ip::udp::endpoint local;
    datagram_receiver receiver;
    send_features features;
    std::vector<datagram_run> gathered;  ///< reused: no allocation per batch once grown
};

}  // namespace h3co::detail
