// What keeps a server up on the open internet: address validation (Retry), caps on handshakes,
// connections and handlers, request timeouts, and the rate of replies sent without a connection;
// and server_stats, which counts what each of them did. See docs/internet.md.
//
// These are the server's own limits, kept apart from connection_options (which tunes one
// connection, client or server side, and is shared by both): a client has no use for them, and a
// server's connections all share the ones here.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace h3co {

/// QUIC-LB (draft-ietf-quic-load-balancers): every connection ID the server issues carries its
/// server ID, so that a connection-ID-aware load balancer in front of a fleet (katran, or any
/// QUIC-LB balancer) routes each packet of a connection to the server that holds it, whatever
/// address the client sends from (NAT rebinding, migration). The balancer is given the same
/// configuration: config rotation, server ID length, nonce length and key. See docs/internet.md,
/// "Running on many cores and many machines".
struct quic_lb_config {
    /// Which configuration the IDs follow, 0 to 6 (7 means unroutable): a fleet moving to a new
    /// key gives the new configuration another codepoint, and connections on the old one go on.
    std::uint8_t config_rotation = 0;
    /// This server's ID, as the balancer's configuration maps it to the server's address: at least
    /// 1 octet (every server of a configuration has IDs of one length).
    std::vector<std::uint8_t> server_id;
    /// Octets after the server ID that the server owns: at least 4, and server_id plus nonce at
    /// most 19 (connection IDs are then 1 + server_id.size() + nonce_length octets). On a server of
    /// several workers the first one names the worker. Without a key the rest is random, so the
    /// server needs enough of them that IDs rarely repeat (it retries on a clash); with a key it
    /// is a counter, whose space (all but the worker's octet) bounds the IDs one configuration
    /// can issue: after that the server issues unroutable IDs (config rotation 7).
    std::size_t nonce_length = 8;
    /// Empty: IDs in the clear, so an observer can tell which server (and worker) a connection is
    /// on. 16 octets: an AES-128 key, shared with the balancer; server ID and nonce travel
    /// encrypted (single-pass AES when they make 16 octets, four passes otherwise). The kernel
    /// cannot read an encrypted worker, so a server of several workers then has no kernel
    /// steering: its workers hand each other's datagrams on (server_stats::workers).
    std::string key;
};

/// When a server makes a new client prove that it owns its address, with a Retry round trip
/// (RFC 9000 §8.1), before it keeps any state for it.
enum class address_validation {
    /// Once server_options::retry_threshold handshakes are in progress, or the client's address has
    /// server_options::max_connections_per_address connections: forged Initials then cost the
    /// server no memory, while an idle server saves its clients the extra round trip. The default.
    when_busy,
    /// Every client without a valid token pays one round trip more, and the server never keeps
    /// state for an address it has not validated.
    always,
    /// Never: spoofed Initials each cost a handshake's state until max_handshakes is reached
    /// (beyond it they are dropped), and a client from a spoofed address can be refused.
    never,
};

/// A server's limits. Every count takes 0 for "no limit" and every duration 0 for "off"; the
/// defaults suit a small server that a few megabytes of forged packets must not take down.
struct server_options {
    // ---- address validation (RFC 9000 §8) ----------------------------------------------------

    /// When new clients must prove their address with a Retry round trip.
    h3co::address_validation address_validation = h3co::address_validation::when_busy;
    /// address_validation::when_busy: handshakes in progress from which new clients get a Retry.
    std::size_t retry_threshold = 100;
    /// How long the token in a Retry stays valid: the client's next Initial comes one round trip
    /// later, so this only needs to cover slow paths.
    std::chrono::seconds retry_token_lifetime{10};
    /// After each handshake, give the client a token (NEW_TOKEN) with which its next connection
    /// from the same address skips the Retry.
    bool send_address_tokens = true;
    /// How long a NEW_TOKEN token stays valid.
    std::chrono::seconds address_token_lifetime{std::chrono::hours(24)};
    /// The key that Retry tokens, NEW_TOKEN tokens, stateless reset tokens and TLS session-ticket
    /// keys derive from. Empty: 32 random bytes, new for each server object. Servers that share an
    /// address (several processes behind one IP, one that restarts, a fleet behind a load
    /// balancer) should share a secret of at least 32 random bytes, so that each accepts the
    /// others' tokens, resumes their sessions and can reset connections the others had.
    std::string secret;
    /// Accept 0-RTT from clients resuming with a ticket of this server (or of a server sharing
    /// `secret`): their first requests arrive a round trip earlier. Early data can be replayed:
    /// see reject_unsafe_early_requests and server_request::early_data(). Off: tickets allow no
    /// early data, and a client offering it anyway (an older ticket) has it rejected.
    bool early_data = false;
    /// RFC 8470: a request in early data whose method is not GET, HEAD or OPTIONS is answered
    /// 425 Too Early without calling its handler (the client retries after the handshake). Off:
    /// such requests reach the handler, which sees server_request::early_data().
    bool reject_unsafe_early_requests = true;

    // ---- connections -----------------------------------------------------------------------

    /// Handshakes in progress at most. Beyond it a new client's Initial is dropped (it retries
    /// after its PTO, by when some have completed or timed out). Each costs a few tens of KB until
    /// it completes or connection_options::handshake_timeout passes.
    std::size_t max_handshakes = 500;
    /// Connections at most, handshakes included. Beyond it new clients get CONNECTION_CLOSE with
    /// CONNECTION_REFUSED (quic_error::connection_refused).
    std::size_t max_connections = 1000;
    /// Connections at most from one source address: an IPv4 address, or an IPv6 /64 prefix (one
    /// host usually has a whole /64). Beyond it: a Retry first unless the address is already
    /// validated (so that spoofed packets cannot use up another host's share), then
    /// CONNECTION_REFUSED. Clients behind one NAT share an address: raise it for such networks.
    std::size_t max_connections_per_address = 100;

    // ---- requests --------------------------------------------------------------------------

    /// A request stream whose HEADERS are not complete this long after the client opened it is
    /// reset with H3_REQUEST_REJECTED; no handler has run for it.
    std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};
    /// A request on which nothing moves for this long while the server waits for the client (its
    /// handler waits for body bytes that do not come, or response bytes wait for the client to
    /// acknowledge them or to grant flow-control credit) is reset with H3_REQUEST_CANCELLED; the
    /// handler's pending operation fails with error::request_timeout. Uploads that may pause
    /// longer (a body typed as it goes) need a longer one, or 0.
    std::chrono::milliseconds body_idle_timeout{std::chrono::seconds(60)};
    /// Handlers running at once, over all connections. A request beyond it is refused at once
    /// with H3_REQUEST_REJECTED (which tells the client it may safely retry), before its handler
    /// starts. connection_options::max_concurrent_streams bounds them per connection.
    std::size_t max_running_handlers = 1000;
    /// Handlers running at once for clients from one source address (as for
    /// max_connections_per_address), so that one host cannot take them all; beyond it the same
    /// refusal.
    std::size_t max_running_handlers_per_address = 100;

    // ---- stateless replies -----------------------------------------------------------------

    /// Replies sent for datagrams that belong to no connection, per second at most (a token
    /// bucket holding one second's worth): stateless resets (to packets for connections the
    /// server does not know, say from before a restart), version negotiation (to unknown QUIC
    /// versions) and CONNECTION_CLOSE to refused clients. Each is smaller than the datagram that
    /// caused it, so the server never amplifies; the rate bounds what it reflects. Retry packets
    /// are not counted here: they are the defence against floods and are always smaller than the
    /// Initial they answer.
    std::size_t stateless_replies_per_second = 1000;

    // ---- a server on several workers (basic_server's constructor taking workers) -----------

    /// Have the kernel steer each datagram to the worker whose ID its connection ID carries (a
    /// reuseport BPF program). Off, or where the kernel refuses it, the socket a datagram reaches
    /// is the kernel's hash of its addresses, and a worker that gets another's datagram hands it
    /// on (server_stats::workers, handoffs_sent). The limits above apply to each worker.
    bool kernel_steering = true;

    // ---- a fleet behind a load balancer ----------------------------------------------------

    /// QUIC-LB connection IDs (see quic_lb_config). None: random 18-octet IDs, which a balancer
    /// can only route by the client's address. The constructor of basic_server throws
    /// std::invalid_argument naming the field for a configuration the draft does not allow.
    std::optional<quic_lb_config> load_balancing;

    // ---- connection migration (RFC 9000 §9.6) ----------------------------------------------

    /// Server preferred address: an IP literal the server also listens on (at its first listen())
    /// and offers to clients in its transport parameters; a client that follows it (h3co's does)
    /// moves its connection there once the handshake is confirmed, after validating the path. For
    /// a handshake on a shared (anycast, balancer) address and the connection on this server's
    /// own. Empty: none. One address, of the family clients connect with (clients ignore an
    /// address of the other family).
    std::string preferred_address;
    /// The preferred address's port; 0: a free one, picked at the first listen()
    /// (basic_server::local_endpoints() lists it).
    std::uint16_t preferred_port = 0;
};

/// One worker of a server on several workers (server_stats::workers).
struct worker_stats {
    std::size_t connections = 0;             ///< connections open on it now
    std::uint64_t connections_accepted = 0;  ///< connections it started
    std::uint64_t datagrams = 0;             ///< datagrams its own socket received
    /// Datagrams its socket received for a connection ID of another worker, posted to that one:
    /// the fallback when the kernel picks a worker's socket by a hash of the addresses (none
    /// while server_stats::kernel_steering holds).
    std::uint64_t handoffs_sent = 0;
    std::uint64_t handoffs_received = 0;  ///< datagrams other workers handed to it
};

/// What a server's limits did, and how loaded it is (basic_server::stats()). Counters only grow.
struct server_stats {
    std::size_t connections = 0;       ///< connections open now, handshakes included
    std::size_t handshakes = 0;        ///< of which the handshake is still in progress
    std::size_t running_handlers = 0;  ///< request handlers running now

    std::uint64_t connections_accepted = 0;  ///< client Initials that started a connection
    std::uint64_t retries_sent = 0;          ///< Retry packets sent (address validation)
    std::uint64_t retry_tokens_accepted = 0;    ///< Initials whose Retry token was valid
    std::uint64_t address_tokens_accepted = 0;  ///< Initials whose NEW_TOKEN token was valid (no Retry needed)
    std::uint64_t address_tokens_sent = 0;      ///< NEW_TOKEN tokens given to clients
    std::uint64_t invalid_tokens = 0;  ///< Retry tokens forged, expired or from another address: INVALID_TOKEN
    std::uint64_t stale_address_tokens = 0;  ///< NEW_TOKEN tokens that did not verify (ignored)
    std::uint64_t connections_refused = 0;   ///< CONNECTION_REFUSED: max_connections or per-address limit
    std::uint64_t handshakes_dropped = 0;    ///< Initials dropped at max_handshakes
    std::uint64_t stateless_resets_sent = 0;      ///< to packets for connections the server does not know
    std::uint64_t version_negotiations_sent = 0;  ///< to Initials of QUIC versions it does not speak
    std::uint64_t stateless_replies_limited = 0;  ///< replies not sent: stateless_replies_per_second
    std::uint64_t requests_refused = 0;  ///< refused at max_running_handlers (or its per-address share)
    std::uint64_t request_timeouts = 0;  ///< requests reset by header_timeout or body_idle_timeout
    std::uint64_t dropped_datagrams = 0;  ///< garbage, or for no connection and not acceptable
    /// Mutual TLS: handshakes that failed on the client's certificate (none sent where required,
    /// or one that did not verify against server_tls's client CA).
    std::uint64_t client_certificates_refused = 0;

    // ---- UDP sends, over all listening sockets ----
    std::uint64_t udp_send_errors = 0;  ///< sends that failed with anything but EAGAIN (their packets lost)
    std::uint64_t gso_fallbacks = 0;  ///< GSO switched off on a socket: the kernel or device cannot segment
    std::uint64_t ecn_fallbacks = 0;  ///< ECN marks switched off on a socket: the kernel refused them

    // ---- a server on several workers (empty / false for one) ----
    std::vector<worker_stats> workers;  ///< per worker, in the order given; the figures above are their sums
    /// The kernel steers each datagram to the worker its connection ID names (a reuseport BPF
    /// program is attached). False: it was turned off or refused, and the workers hand each
    /// other's datagrams on (handoffs_sent), which is correct, only slower.
    bool kernel_steering = false;
};

}  // namespace h3co
