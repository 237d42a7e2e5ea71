// Tuning knobs for a connection, client or server side. The defaults favour bounded memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

namespace h3co {

class session_cache;  // session_cache.hpp

/// Congestion control algorithms ngtcp2 offers (connection_options::congestion_control).
enum class congestion_control {
    reno,   ///< NewReno (RFC 9002)
    cubic,  ///< CUBIC (RFC 8312), the default
    bbr,    ///< BBR: v1 with ngtcp2 0.12; with ngtcp2 1.x its only BBR, which is BBRv2
    bbr2,   ///< BBRv2: ngtcp2 0.12's BBR2; with ngtcp2 1.x the same as bbr (1.x renamed BBRv2 to BBR)
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

/// Which QUIC versions a side speaks (connection_options::quic_versions).
enum class quic_versions {
    /// QUIC version 1 (RFC 9000) only. The default.
    v1_only,
    /// QUIC version 2 (RFC 9369) where the peer has it, else version 1, chosen during the handshake
    /// by compatible version negotiation (RFC 9368), with no extra round trip. A client starts in
    /// version 1 and offers version 2; a server switches clients that offer version 2 to it,
    /// accepts clients that start in version 2, and keeps version 1 for the rest.
    /// ngtcp2 1.x only: on 0.12, which knows only a draft of version 2, connect() fails and the
    /// server's constructor throws, both with error::not_supported.
    prefer_v2,
};

/// Tuning for a client's or a server's connections: timeouts, flow-control windows, send
/// buffering, limits on what a peer may send, UDP batching, qlog. Passed to connect(),
/// basic_client and basic_server.
struct connection_options {
    /// Close the connection when nothing arrives from the peer for this long.
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
    /// Give up a handshake that has not completed in this time. A client also gives up one that
    /// completed but that the server has not confirmed (HANDSHAKE_DONE) by then: the server drops
    /// its half silently at its own handshake timeout when our Finished never reached it.
    std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
    /// While any stream is open, send a PING after this much quiet so that a long, slow upload is
    /// never mistaken for an idle connection. Zero: half the idle timeout.
    std::chrono::milliseconds keep_alive{0};
    /// Acknowledge at once after this many ack-eliciting packets; fewer wait for the ACK delay
    /// (at most max_ack_delay, 25 ms, and an eighth of the smoothed RTT); a packet out of order or
    /// marked ECN CE is acknowledged at once. 2, the default, is RFC 9000's suggestion. Where the
    /// network paces packets and loses few, every acknowledgement costs the receiver a send and
    /// the sender a wake-up: 8 sends a third to a quarter of them, for about 20 % less CPU per side
    /// at the same throughput; but with loss (1 % at 50 ms) transfers took 5-15 % longer, for
    /// reasons not yet pinned down (docs/performance.md, "Paced paths"). 1 (or 0): every packet.
    std::size_t ack_threshold = 2;
    /// Receive window per stream at first: how much body the peer may send ahead of the
    /// application's reads. It grows while the application reads faster than the window lasts a
    /// round trip (it doubles when half of it was read within two smoothed RTTs), up to
    /// max_stream_receive_window; a slow reader keeps it where it is, and the peer waits.
    std::size_t stream_receive_window = 256 * 1024;
    /// The most a stream's receive window grows to: with max_connection_receive_window, what bounds
    /// the body bytes buffered for a reader that stops reading. One stream reaches at most this
    /// much per round trip (16 MiB at 100 ms is 168 MB/s).
    std::size_t max_stream_receive_window = 16 * 1024 * 1024;
    /// Receive window for the whole connection at first; grows like the stream windows.
    std::size_t connection_receive_window = 1024 * 1024;
    /// The most the connection's receive window grows to.
    std::size_t max_connection_receive_window = 24 * 1024 * 1024;
    /// Bytes a stream keeps for sending (written but not yet acknowledged) at first and always:
    /// write() waits when they are all used.
    std::size_t stream_send_buffer = 256 * 1024;
    /// Beyond stream_send_buffer, a stream's send buffer grows with what the congestion window
    /// needs (twice the congestion window, shared by the connection's streams), up to this.
    std::size_t max_stream_send_buffer = 16 * 1024 * 1024;
    /// The most a connection's streams together hold beyond their stream_send_buffer each.
    std::size_t max_connection_send_buffer = 32 * 1024 * 1024;
    /// Largest header block accepted (decoded size), answered with 431 / H3_EXCESSIVE_LOAD beyond it.
    std::size_t max_header_bytes = 64 * 1024;
    /// Client: interim (1xx) responses a stream holds for read_interim() unread. One more fails the
    /// stream's operations with error::excessive_load and resets it with H3_EXCESSIVE_LOAD, so a
    /// server cannot grow a client's memory with endless 1xx. Those read_interim() took do not
    /// count: a client that reads them as they come takes any number.
    std::size_t max_interim_responses = 16;
    /// Largest request body a server accepts; beyond it the handler's read fails with
    /// error::body_too_large and the client gets 413 (if no response was sent yet).
    std::uint64_t max_request_body = UINT64_MAX;
    /// Request streams the peer may have open at once towards us (servers).
    std::uint64_t max_concurrent_streams = 100;
    /// Largest UDP payload to send. Packets start at 1200 bytes and grow by path-MTU discovery
    /// (packets carry Don't Fragment). With ngtcp2 0.12 (and 1.x before 1.4) the probes stop at
    /// 1444, so larger values have no effect; with ngtcp2 >= 1.4 h3co probes on up to this value
    /// where the path carries it (jumbo frames, loopback; h3co::stack().pmtud_above_1452). Raise it
    /// only for paths whose MTU does not shrink later: ngtcp2 does not detect a path-MTU black hole.
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

    // ---- HTTP/3 extensions (docs/design.md, "Versions") ------------------------------------------
    /// Offer HTTP/3 datagrams (RFC 9297): SETTINGS_H3_DATAGRAM and the QUIC DATAGRAM transport
    /// parameter. basic_http_stream::send_datagram() / receive_datagram() work once both peers offer
    /// them. Needs nghttp3 >= 1.0 (h3co::stack().h3_datagrams); otherwise those calls fail with
    /// error::not_supported.
    bool h3_datagrams = false;
    /// Datagrams held per stream until receive_datagram() takes them; more are dropped (and counted
    /// in connection_stats::datagrams_dropped): datagrams are unreliable. A peer's datagrams are at
    /// most max_udp_payload bytes (h3co's max_datagram_frame_size), so a stream holds at most
    /// datagram_receive_queue x max_udp_payload bytes of them.
    std::size_t datagram_receive_queue = 64;
    /// Datagrams a connection holds waiting for a packet; send_datagram() waits while it is full.
    std::size_t datagram_send_queue = 64;
    /// Server: offer extended CONNECT (RFC 9220, SETTINGS_ENABLE_CONNECT_PROTOCOL), so that clients
    /// may send request::protocol; without it such a request is malformed (H3_MESSAGE_ERROR).
    bool extended_connect = false;
    // ---- address validation, client side (server limits: server_options) ----
    /// Client: a token the server gave an earlier connection (basic_connection::address_token()),
    /// sent in the first Initial so that a server that validates addresses lets this connection
    /// start without a Retry round trip. basic_client keeps and sends its servers' tokens itself.
    std::string address_token;
    // ---- key updates (RFC 9001 §6) ----
    /// Start a 1-RTT key update after this many packets sent since the handshake or this
    /// endpoint's last update (0, the default: never on a schedule). ngtcp2 may refuse for a while (the previous
    /// update is unconfirmed, or less than 3 PTO passed since it was): the update then goes with
    /// the first packet after that. Either way the peer's updates are followed, and ngtcp2 updates
    /// on its own at the AEAD confidentiality limit (RFC 9001 §6.6: 2^23 packets for AES-GCM).
    /// Updates limit what one key protects; each costs a key derivation and, while unconfirmed,
    /// a second set of keys.
    std::uint64_t key_update_interval = 0;
    // ---- session resumption, client side (session_cache.hpp) ----
    /// Client: where TLS session tickets are kept and looked up, per authority, so that a later
    /// connection resumes (connection_stats::resumed). Null: connect() keeps none, and basic_client
    /// makes one in memory for all its connections. Set one to share it or to persist it
    /// (session_cache::export_bytes).
    std::shared_ptr<h3co::session_cache> session_cache;
    // ---- 0-RTT, client side (RFC 9001 §4.6; docs/getting-started.md, "0-RTT") ----
    /// Client: when the session cache holds a ticket that allows early data, connect() completes
    /// at once and requests opened before the handshake completes go in 0-RTT: safe methods (GET,
    /// HEAD, OPTIONS) and requests with request::early_data; other requests' headers and body
    /// wait for the handshake. Early data can be replayed by an attacker: only what is safe to
    /// repeat should go early. If the server rejects it (connection_stats::early_data_accepted
    /// false), the connection goes on and sends each early request again once the handshake
    /// completes, with the body bytes written so far (connection_stats::early_requests_resent);
    /// the handles see nothing of it. Off by default.
    bool early_data = false;
    // ---- versions ----
    /// QUIC versions offered and accepted (connection_stats::quic_version tells the outcome).
    h3co::quic_versions quic_versions = h3co::quic_versions::v1_only;
};

}  // namespace h3co
