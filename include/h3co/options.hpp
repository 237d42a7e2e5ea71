// Tuning knobs for a connection, client or server side. The defaults favour bounded memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace h3co {

/// Congestion control algorithms ngtcp2 offers (connection_options::congestion_control).
enum class congestion_control {
    reno,   ///< NewReno (RFC 9002)
    cubic,  ///< CUBIC (RFC 8312), the default
    bbr,    ///< BBR (v1)
    bbr2,   ///< BBRv2 (ngtcp2 0.12; ngtcp2 1.x has no BBRv2 and uses BBR)
};

/// The algorithm's name: "reno", "cubic", "bbr" or "bbr2".
inline std::string to_string(congestion_control cc) {
    switch (cc) {
    case congestion_control::reno: return "reno";
    case congestion_control::cubic: return "cubic";
    case congestion_control::bbr: return "bbr";
    case congestion_control::bbr2: return "bbr2";
    }
    return "unknown";
}

/// Tuning for a client's or a server's connections: timeouts, flow-control windows, send
/// buffering, limits on what a peer may send, UDP batching, qlog. Passed to connect(),
/// basic_client and basic_server.
struct connection_options {
    /// Close the connection when nothing arrives from the peer for this long.
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
    /// Give up a handshake that has not completed in this time.
    std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
    /// While any stream is open, send a PING after this much quiet so that a long, slow upload is
    /// never mistaken for an idle connection. Zero: half the idle timeout.
    std::chrono::milliseconds keep_alive{0};
    /// Receive window per stream: how much body the peer may send ahead of the application's reads.
    std::size_t stream_receive_window = 256 * 1024;
    /// Receive window for the whole connection.
    std::size_t connection_receive_window = 1024 * 1024;
    /// Bytes a stream keeps for sending (written but not yet acknowledged). write() waits when full.
    std::size_t stream_send_buffer = 256 * 1024;
    /// Largest header block accepted (decoded size), answered with 431 / H3_EXCESSIVE_LOAD beyond it.
    std::size_t max_header_bytes = 64 * 1024;
    /// Largest request body a server accepts; beyond it the handler's read fails with
    /// error::body_too_large and the client gets 413 (if no response was sent yet).
    std::uint64_t max_request_body = UINT64_MAX;
    /// Request streams the peer may have open at once towards us (servers).
    std::uint64_t max_concurrent_streams = 100;
    /// Largest UDP payload to send. ngtcp2 0.12 starts at 1200 and its path-MTU discovery probes
    /// up to 1452, so larger values have no effect with this version.
    std::size_t max_udp_payload = 1452;
    /// Packets sent to a peer in one system call with UDP GSO (UDP_SEGMENT); 1 turns GSO off.
    /// Bigger bursts overflow a receiver's socket buffer and cost more in loss than they save in
    /// system calls: 16 measured best on loopback (docs/performance.md). Falls back to one send
    /// per packet where the kernel refuses GSO.
    std::size_t udp_gso_segments = 16;
    /// Receive runs of datagrams from one sender in one system call with UDP GRO (UDP_GRO), where
    /// the kernel supports it; false: one datagram per receive.
    bool udp_gro = true;
    /// Messages (GSO runs, or single packets when GSO is off) handed to the kernel in one sendmmsg
    /// system call; 1 turns sendmmsg off (one sendmsg each). A server also gathers what all its
    /// connections have to send after a receive batch into one call, to many peers at once.
    std::size_t udp_sendmmsg_messages = 16;
    /// Messages (GRO runs, or single datagrams) taken from the kernel in one recvmmsg system call,
    /// from any senders; 1 turns recvmmsg off (one recvmsg each). Each costs 64 KiB of buffer per
    /// socket, touched only when used.
    std::size_t udp_recvmmsg_messages = 8;
    /// Explicit Congestion Notification (RFC 9000 §13.4): mark packets as ngtcp2 asks and report
    /// the marks received, so that a congested router can signal before it drops. Off where the
    /// kernel refuses the marks; false: packets are neither marked nor read for marks.
    bool ecn = true;
    /// SO_RCVBUF / SO_SNDBUF asked for on h3co's UDP sockets (the kernel caps them at
    /// net.core.rmem_max / wmem_max). 0 keeps the system default.
    std::size_t socket_buffer = 2 * 1024 * 1024;
    /// The congestion controller (see docs/performance.md for how each fares with loss and delay).
    h3co::congestion_control congestion_control = h3co::congestion_control::cubic;
    /// Write a qlog trace of each connection into this directory (empty: off).
    std::string qlog_dir;

    // ---- address validation, client side (server limits: server_options) ----
    /// Client: a token the server gave an earlier connection (basic_connection::address_token()),
    /// sent in the first Initial so that a server that validates addresses lets this connection
    /// start without a Retry round trip. basic_client keeps and sends its servers' tokens itself.
    std::string address_token;
};

}  // namespace h3co
