// What a connection looks like from inside: round-trip times, congestion control, bytes and
// losses, flow-control windows. What quic-go's and msquic's users look at first.
#pragma once

#include <h3co/options.hpp>

#include <chrono>
#include <cstdint>

namespace h3co {

/// A snapshot of one connection (basic_connection::stats(), basic_server_request::connection_stats()).
struct connection_stats {
    std::chrono::nanoseconds smoothed_rtt{0};  ///< RFC 9002 smoothed RTT
    std::chrono::nanoseconds min_rtt{0};       ///< smallest RTT sample seen
    std::chrono::nanoseconds latest_rtt{0};    ///< the last RTT sample
    std::chrono::nanoseconds rtt_variance{0};  ///< RFC 9002 rttvar
    std::uint64_t congestion_window = 0;       ///< bytes the congestion controller lets be in flight
    std::uint64_t slow_start_threshold = 0;    ///< bytes; UINT64_MAX while still in slow start
    std::uint64_t bytes_in_flight = 0;         ///< sent and neither acknowledged nor declared lost
    /// Bytes per second the peer acknowledged recently. ngtcp2 0.12 only: 0 with ngtcp2 1.x, whose
    /// ngtcp2_conn_info has no delivery rate.
    std::uint64_t delivery_rate = 0;
    std::uint64_t max_udp_payload = 0;         ///< the largest packet size the path is known to carry (1200 once a path-MTU black hole was detected)
    std::uint64_t packets_sent = 0;            ///< QUIC packets written
    std::uint64_t packets_received = 0;        ///< datagrams received for this connection
    std::uint64_t bytes_sent = 0;              ///< UDP payload bytes written
    std::uint64_t bytes_received = 0;          ///< UDP payload bytes received
    /// Packets declared lost that carried stream data (ngtcp2 0.12 and 1.11 count per stream and
    /// report no other losses), summed over the connection's streams, open and closed.
    std::uint64_t packets_lost = 0;
    /// Client: ICMP errors (port, host or network unreachable) reported on an established
    /// connection's socket and outlived: unauthenticated, they do not end the connection.
    std::uint64_t unreachable_errors = 0;
    /// Bytes the peer may send on the whole connection beyond what the application has read: the
    /// receive window as it has grown (connection_options::max_connection_receive_window bounds it).
    std::uint64_t connection_receive_window = 0;
    /// The largest receive window any stream has grown to (bounded by
    /// connection_options::max_stream_receive_window).
    std::uint64_t stream_receive_window = 0;
    /// The most a stream may hold written but unacknowledged, now (grows with the congestion
    /// window up to connection_options::max_stream_send_buffer).
    std::uint64_t stream_send_buffer = 0;
    /// Bytes the peer still lets us send on the connection (its MAX_DATA minus what we sent).
    std::uint64_t connection_send_credit = 0;
    /// The congestion controller asked for. With ngtcp2 1.x, bbr and bbr2 both run 1.x's BBR (BBRv2).
    congestion_control algorithm = congestion_control::cubic;
    // ---- HTTP/3 datagrams (connection_options::h3_datagrams) ----
    std::uint64_t datagrams_sent = 0;      ///< HTTP/3 datagrams written into packets
    std::uint64_t datagrams_received = 0;  ///< HTTP/3 datagrams received for open streams
    /// Datagrams dropped: a full receive queue, a stream that is not open, one that fits no packet.
    std::uint64_t datagrams_dropped = 0;

    /// Receive credit (docs/design.md, "Flow-control credit"): every stream byte the peer delivered
    /// is extended back exactly once, so credit_delivered == credit_extended + credit_held +
    /// credit_released_at_end always.
    std::uint64_t credit_delivered = 0;        ///< stream bytes (all streams, framing included) QUIC delivered
    std::uint64_t credit_extended = 0;         ///< of those, bytes whose flow-control credit went back
    std::uint64_t credit_held = 0;             ///< bytes buffered, unread: credit still owed to the peer
    std::uint64_t credit_released_at_end = 0;  ///< bytes still held when the connection ended

    // ---- key updates (RFC 9001 §6; connection_options::key_update_interval) ----
    /// Key updates this endpoint started (on its key_update_interval schedule).
    std::uint64_t key_updates_initiated = 0;
    /// 1-RTT key generations derived (ngtcp2's update_key). ngtcp2 derives the next keys ahead,
    /// once the previous update is confirmed, whichever side started it: after N updates by
    /// either side this is N or N + 1 (the first is derived once the handshake is confirmed). So
    /// the peer started at least key_generations_derived - 1 - key_updates_initiated of them.
    std::uint64_t key_generations_derived = 0;
    // ---- session resumption (session_cache.hpp) ----
    /// The handshake resumed a TLS session from a ticket of an earlier connection: the server sent
    /// no certificate, and the client trusted the verification done when it got the ticket.
    bool resumed = false;
    // ---- 0-RTT (connection_options::early_data, server_options::early_data) ----
    /// Client: it sent 0-RTT (its ticket allowed it). Server: the client offered 0-RTT under a
    /// ticket that allows it (with server_options::early_data off, or a ticket that does not
    /// resume, BoringSSL does not say whether it was offered: false).
    bool early_data_offered = false;
    /// The server accepted the 0-RTT (known once the handshake completed).
    bool early_data_accepted = false;
    /// Client: requests sent in a 0-RTT that the server rejected and sent again after the
    /// handshake, on fresh streams, with the body bytes written so far (the handles never see it).
    std::uint64_t early_requests_resent = 0;
    /// The QUIC version the connection speaks: 0x00000001 (version 1) or 0x6b3343cf (version 2,
    /// connection_options::quic_versions); 0 before the handshake settles it.
    std::uint32_t quic_version = 0;
    // ---- connection migration (RFC 9000 §9) ----
    /// Paths validated (PATH_CHALLENGE answered): a server's count grows when its client comes
    /// from a new address (NAT rebinding or migration), a client's with each migrate().
    std::uint64_t paths_validated = 0;
    /// Path validations that failed or were abandoned (the connection stayed on, or went back
    /// to, its old path).
    std::uint64_t path_validations_failed = 0;
};

}  // namespace h3co
