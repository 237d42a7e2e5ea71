// The HTTP/3 engine for one connection: an ngtcp2_conn and an nghttp3_conn glued together, with
// the connection-level state (lifetime, stream map, openers, keep-alive, close).
//
// Sans-I/O: it never touches a socket, a timer or a clock. The I/O layer (detail/io/) feeds it
// datagrams and timer expiries with the current time, lets it write packets into its outbox, sends
// what the outbox holds, and arms its timer from expiry(). Events go out through the virtual hooks
// below, which only record or schedule. All calls happen on the connection's executor; ngtcp2 and
// nghttp3 call back into it synchronously, and user handlers are never run from there (pending_op
// posts them).
//
// No ngtcp2, nghttp3 or BoringSSL type appears here: their state lives in `native_session`,
// defined where the library callbacks are (detail/quic/native_session.hpp).
#pragma once

#include <h3co/detail/config.hpp>
#include <h3co/detail/credit_ledger.hpp>
#include <h3co/detail/flow_window.hpp>
#include <h3co/detail/h3/datagrams.hpp>
#include <h3co/detail/h3/peer_settings.hpp>
#include <h3co/detail/network_path.hpp>
#include <h3co/detail/pending_op.hpp>
#include <h3co/detail/quic/outbox.hpp>
#include <h3co/detail/server_endpoint.hpp>
#include <h3co/detail/stream_machine.hpp>
#include <h3co/detail/stream_state.hpp>
#include <h3co/detail/tls_context.hpp>
#include <h3co/error.hpp>
#include <h3co/message.hpp>
#include <h3co/options.hpp>
#include <h3co/stats.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace h3co::detail {

enum class session_role { client, server };

struct native_session;  // the C libraries' state: detail/quic/native_session.hpp
struct native_session_delete {
    H3CO_DECL void operator()(native_session* n) const noexcept;
};

/// One flush: at most `max_packets` packets (the rest waits for the pacing timer). The I/O layer
/// calls write_packets() while it returns true, sending the outbox after each call, then end_flush().
struct flush_round {
    std::size_t max_packets = 64;
    std::size_t packets = 0;  ///< written so far in this round
};

class session : public std::enable_shared_from_this<session>, private stream_transport {
public:
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    H3CO_DECL virtual ~session();

    session_role role() const noexcept { return role_; }
    bool established() const noexcept { return established_; }
    /// Client: 0-RTT is under way (the handshake has not completed and the server has not rejected
    /// it): requests may be opened now.
    bool early_data_pending() const noexcept { return early_data_attempted_ && !early_data_rejected_ && !established_; }
    /// Client, 0-RTT: whether `req` may go in early data (safe method or request::early_data).
    H3CO_DECL static bool may_go_early(const request& req) noexcept;
    bool terminated() const noexcept { return terminated_; }
    std::error_code close_error() const noexcept { return close_error_; }
    const std::string& close_reason() const noexcept { return close_reason_; }
    bool going_away() const noexcept { return goaway_received_; }
    std::size_t open_stream_count() const noexcept { return streams_.size(); }
    /// Streams QUIC closed that nghttp3 still holds QPACK-blocked (stream_state::held_by_h3).
    std::size_t streams_held_by_h3() const noexcept {
        std::size_t n = 0;
        for (const auto& [id, s] : streams_) n += s->held_by_h3 ? 1 : 0;
        return n;
    }
    /// Calls `f(const stream_state&)` for every stream the connection holds, those waiting to be
    /// sent again after a refused 0-RTT included (h3co::testing::stream_memory_of).
    template <class F>
    void for_each_stream(F&& f) const {
        for (const auto& [id, s] : streams_) f(*s);
        for (const auto& s : rejected_streams_) f(*s);
    }
    /// Calls `f(stream_id, bytes)` for each stream QUIC closed whose handle still holds `bytes`
    /// unread: the ledger owes them until they are read or dropped (h3co::testing::stream_memory_of).
    template <class F>
    void for_each_closed_unread(F&& f) const {
        ledger_.for_each_closed_owing(std::forward<F>(f));
    }
    /// The connection's numbers now: RTT, congestion window, bytes, losses, windows.
    H3CO_DECL connection_stats stats() const;
    /// The peer's certificate as the handshake presented it (empty if none), and the negotiated
    /// TLS cipher suite's IANA name: copies (impl/tls_peer.ipp).
    H3CO_DECL certificate_info peer_certificate() const;
    H3CO_DECL std::string tls_cipher() const;
    /// How long after the connection ended its peer may still send to it (RFC 9000 §10.2: three
    /// PTOs), in nanoseconds: packets then are no sign of a lost connection. None if it never sent
    /// a packet.
    H3CO_DECL std::uint64_t closing_period() const noexcept;

    /// The per-stream operations (read, write, finish, reset, ...).
    stream_machine& streams() noexcept { return machine_; }

    // ---- driven by the I/O layer (each input takes the current time) ---------------------------

    /// Feeds one received datagram. Afterwards the I/O layer flushes.
    H3CO_DECL void read_packet(const network_path& path, const std::uint8_t* data, std::size_t len, std::uint8_t ecn,
                               std::uint64_t now);
    /// The timer fired (or its deadline passed).
    H3CO_DECL void on_timer(std::uint64_t now);
    /// When the timer must fire next, in steady-clock nanoseconds (UINT64_MAX: never).
    H3CO_DECL std::uint64_t expiry() const noexcept;

    /// Work that must run before packets are written and outside any library callback: reads filled
    /// by the last receive batch complete, queued stream openers are served.
    H3CO_DECL void before_flush();
    /// Writes ready packets into the outbox. Returns true when it stopped because the outbox holds a
    /// send's worth (a full GSO run, or a sendmmsg's worth of packets without GSO): send it, then
    /// call again with the same round. False: nothing more now, or the round's limit was reached.
    H3CO_DECL bool write_packets(std::uint64_t now, flush_round& round);
    /// Ends a flush round (pacing accounts for what it wrote).
    H3CO_DECL void end_flush(std::uint64_t now, const flush_round& round);
    /// Packets written and not yet taken by the socket. The I/O layer sends them in order and
    /// reports with outbox().sent().
    class outbox& outbox() noexcept { return outbox_; }
    /// Packets the last flush round wrote.
    std::size_t last_flush_packets() const noexcept { return last_flush_packets_; }

    // ---- connection-level operations --------------------------------------------------------------

    /// Closes the connection with an application error code (H3_NO_ERROR for a clean close): the
    /// CONNECTION_CLOSE packet is left in the outbox, and the connection terminates.
    H3CO_DECL void close(std::uint64_t now, std::uint64_t app_error_code, std::string_view reason = {});
    /// GOAWAY: the peer opens no new requests; existing ones go on. A notice now, the final GOAWAY
    /// 3 PTO later (on_timer), once the handshake is complete.
    H3CO_DECL void send_goaway(std::uint64_t now);
    /// Client: PRIORITY_UPDATE (RFC 9218) for `s`, whose HEADERS went out (testing.hpp uses it, as
    /// browsers do on long-lived connections).
    H3CO_DECL std::error_code send_priority_update(stream_state& s, std::uint32_t urgency, bool incremental);
    /// Opens a unidirectional stream and sends exactly `bytes` on it, then its FIN (testing.hpp: a
    /// reserved or GREASE stream type, RFC 9114 §6.2.3). asio::error::would_block when the peer's
    /// stream limit allows no other now.
    H3CO_DECL std::error_code send_raw_uni_stream(std::span<const std::uint8_t> bytes);

    /// Client: allocates a request stream, or queues `op` until the peer grants stream credit;
    /// `key` names the queued op for cancel_open().
    using open_op = pending_op<std::error_code, std::shared_ptr<stream_state>>;
    H3CO_DECL void open_stream(open_op op, std::shared_ptr<void> key = {});
    /// The queued open_stream() whose key is `key` gives up (operation_aborted).
    H3CO_DECL void cancel_open(const void* key);

    /// Client: starts moving the connection to `path` (a new local socket, same server). ngtcp2
    /// validates it (PATH_CHALLENGE) while the old path carries on, and moves once it is
    /// validated; on_path_validated() says how it went. error::migration_unavailable when ngtcp2
    /// cannot now (see its message), connection_closed once the connection ended.
    H3CO_DECL std::error_code start_migration(const network_path& path, std::uint64_t now);
    /// Client: the current path's local address is `path`'s local one (ngtcp2 moved to a path
    /// whose socket the I/O layer gave up: it goes on from the socket it still has).
    H3CO_DECL void set_local_address(const network_path& path);

protected:
    H3CO_DECL session(session_role role, const connection_options& options, std::shared_ptr<tls_context> tls);

    /// Client: creates the QUIC connection on `path`, verifying the certificate for `host`.
    /// Throws std::system_error when the libraries refuse.
    H3CO_DECL void start_client(const network_path& path, std::string_view host, std::uint64_t now);
    /// Server: accepts the connection whose first Initial packet is `initial`, from `path`; `scid`
    /// is the connection ID we choose; `secret` derives stateless reset tokens; `admission` says
    /// whether a token validated the client's address, and after a Retry which DCID it first used.
    /// Throws std::system_error when the libraries refuse.
    H3CO_DECL void start_server(const network_path& path, std::span<const std::uint8_t> initial,
                                std::span<const std::uint8_t> scid, std::span<const std::uint8_t> secret,
                                const server_admission& admission, std::uint64_t now);
    /// start_server() for a client whose address no token validated.
    void start_server(const network_path& path, std::span<const std::uint8_t> initial,
                      std::span<const std::uint8_t> scid, std::span<const std::uint8_t> secret, std::uint64_t now) {
        start_server(path, initial, scid, secret, server_admission{}, now);
    }

    // ---- server limits (issue 13): request timeouts, NEW_TOKEN --------------------------------
    /// Server: reset request streams whose HEADERS take longer than `header` nanoseconds, or on which
    /// nothing moves for `body_idle` nanoseconds while the server waits for the client (0: off).
    /// Checked from on_timer(), through expiry(); set before start_server().
    void set_request_timeouts(std::uint64_t header, std::uint64_t body_idle) noexcept {
        header_timeout_ = header;
        body_idle_timeout_ = body_idle;
    }
    /// Server: `make` writes each connection ID the connection issues (NEW_CONNECTION_ID), of the
    /// length given, e.g. QUIC-LB ones that name the server and worker (detail/connection_id.hpp).
    /// None: random ones. Set before start_server().
    void set_cid_maker(std::function<void(std::uint8_t*, std::size_t)> make) { cid_maker_ = std::move(make); }
    /// Server: gives the client `token` (NEW_TOKEN) for its next connection.
    H3CO_DECL void submit_new_token(std::span<const std::uint8_t> token);

    // ---- events: what the I/O layer must do; each only records or schedules ----------------------
    /// Asks for a flush soon, from outside any library callback.
    virtual void wake_flush() = 0;
    /// The handshake completed and HTTP/3 is set up.
    virtual void on_established() {}
    /// The connection ended (close_error() says why). The outbox may hold a CONNECTION_CLOSE to send.
    virtual void on_terminated(std::error_code) {}
    /// Server: a request's HEADERS are complete; start its handler (after the current callback).
    virtual void on_request(std::shared_ptr<stream_state>) {}
    /// Server: a connection ID to route datagrams by (`added`) or to forget.
    virtual void on_connection_id(std::span<const std::uint8_t>, bool /*added*/) {}
    /// Client: the server gave a token (NEW_TOKEN) for the next connection to it.
    virtual void on_new_token(std::span<const std::uint8_t>) {}
    /// Server: a request was reset by a request timeout (set_request_timeouts).
    virtual void on_request_timeout() {}
    /// A path validation ended: `path` was validated (`ok`), or it failed or was abandoned.
    virtual void on_path_validated(const network_path& /*path*/, bool /*ok*/) {}
    /// While set_several_sockets(true): which socket sends packets whose local address is `local`
    /// (datagram_run::socket).
    virtual std::uint32_t socket_for(const sockaddr* /*local*/, socklen_t /*len*/) { return 0; }
    /// Client during a migration: packets name their socket (socket_for) until it is over.
    void set_several_sockets(bool on) noexcept { several_sockets_ = on; }
    /// Client: the server offers a preferred address (RFC 9000 §9.6), `remote`. To follow it, set
    /// `path` to the new path (a socket of the I/O layer's, connected there) and return true;
    /// ngtcp2 validates it once the handshake is confirmed and moves (on_path_validated()).
    virtual bool choose_preferred_address(const sockaddr* /*remote*/, socklen_t /*len*/, network_path& /*path*/) {
        return false;
    }
    /// Server: offer `address` (a socket the server listens on) as the preferred address. Before
    /// start_server().
    void set_preferred_address(const sockaddr* address, socklen_t len) noexcept {
        preferred_len_ = std::min<socklen_t>(len, sizeof preferred_);
        std::memcpy(&preferred_, address, preferred_len_);
    }

    /// Ends the connection for good: every stream and waiting operation fails with `ec`.
    H3CO_DECL void terminate(std::error_code ec);
    const connection_options& options() const noexcept { return options_; }

    std::string default_authority_;  ///< client: "host:port" for requests given as a bare path

private:
    friend struct quic_callbacks;
    friend struct h3_callbacks;

    // ---- stream_transport: what the stream machine asks of the connection ----------------------
    H3CO_DECL std::error_code stream_unusable(const stream_state& s) const override;
    H3CO_DECL std::error_code submit_request_header(stream_state& s, const request& req) override;
    H3CO_DECL std::error_code submit_raw_request_header(stream_state& s, const fields& raw) override;
    H3CO_DECL std::error_code submit_response_header(stream_state& s, int status, const fields& headers,
                                                     bool body) override;
    H3CO_DECL std::error_code submit_interim_header(stream_state& s, int status, const fields& headers) override;
    H3CO_DECL void start_raw_stream(stream_state& s) override;
    H3CO_DECL void resume_sending(stream_state& s) override;
    H3CO_DECL void return_credit(stream_state& s, std::size_t n) override;
    H3CO_DECL void release_credit(stream_state& s) override;
    H3CO_DECL std::size_t send_buffer_limit(const stream_state& s) const override;
    H3CO_DECL void shutdown_stream(stream_state& s, std::uint64_t app_error_code, bool send, bool recv) override;

    // ---- inside the session ---------------------------------------------------------------------
    H3CO_DECL std::error_code unusable() const;
    H3CO_DECL void close_with(std::error_code ec, std::uint64_t now);
    H3CO_DECL void fail_everything(std::error_code ec);
    H3CO_DECL std::shared_ptr<stream_state> new_stream(std::int64_t id);
    H3CO_DECL void serve_openers();
    H3CO_DECL void keep_alive_update();
    H3CO_DECL void stream_closed(stream_state& s, std::uint64_t app_error_code);
    H3CO_DECL bool next_lone_fin(std::int64_t& stream_id);
    H3CO_DECL stream_state* next_raw_stream();
    H3CO_DECL stream_state* find_stream(std::int64_t id) const noexcept;
    /// The smoothed RTT in ns (0 before any sample).
    H3CO_DECL std::uint64_t smoothed_rtt() const noexcept;
    H3CO_DECL void create_h3();
    /// After the handshake: the three unidirectional streams every HTTP/3 endpoint opens.
    H3CO_DECL int setup_h3_streams();
    /// Client: the server rejected 0-RTT; ngtcp2 has dropped every stream opened so far. Request
    /// streams that can be sent again wait in rejected_streams_; the others fail.
    H3CO_DECL void on_early_data_rejected();
    /// Client, after a rejected 0-RTT and the handshake: each waiting stream gets a fresh stream ID,
    /// its HEADERS and the body bytes it holds go again. Stops where the peer's stream limit does
    /// (serve_openers() goes on when it grows).
    H3CO_DECL void resend_rejected();
    /// Client: the handshake completed; requests held for it go now. False on a fatal error.
    H3CO_DECL bool submit_held_requests();
    /// Flow-control credit for `n` bytes of `stream_id` that nghttp3 consumed itself (framing, QPACK):
    /// given back as they are, the windows do not grow for them. Bytes a discard already released
    /// are not given back twice (credit_ledger).
    H3CO_DECL void credit(std::int64_t stream_id, std::size_t n);
    /// All the credit `stream_id` still owes goes back: nobody will read its bytes.
    H3CO_DECL void release_credit(std::int64_t stream_id);
    /// Extends `stream_id`'s and the connection's windows by `n` bytes the ledger allowed.
    H3CO_DECL void extend_windows(std::int64_t stream_id, bool stream_open, std::uint64_t n);
    /// QUIC closed `stream_id` (`s`: its state, if any): checks that only its buffer still owes credit.
    H3CO_DECL void credit_stream_closed(std::int64_t stream_id, const stream_state* s);
    /// ngtcp2 took `datalen` bytes (-1: none) of `stream_id` from `veccnt` nghttp3_vecs at `vecs`:
    /// tell whoever supplied them, nghttp3 or a raw stream, and track the FIN. False on a fatal
    /// nghttp3 error.
    H3CO_DECL bool stream_data_taken(stream_state* raw, std::int64_t stream_id, std::ptrdiff_t datalen, int fin,
                                     const void* vecs, std::ptrdiff_t veccnt);
    /// Starts a key update when key_update_interval packets went out since the last one; ngtcp2
    /// refusing (the previous one unconfirmed, too soon) means "with a later packet".
    H3CO_DECL void key_update_if_due(std::uint64_t now);
    /// Server: resets the requests past a request timeout and schedules the next check.
    H3CO_DECL void check_request_timeouts(std::uint64_t now);
    /// Server: the request's handler or response waits on the client (the body idle clock runs).
    H3CO_DECL static bool waiting_on_client(const stream_state& s) noexcept;

    session_role role_;
    connection_options options_;
    std::unique_ptr<native_session, native_session_delete> native_;
    stream_machine machine_;
    class outbox outbox_;
    std::size_t last_flush_packets_ = 0;

    std::unordered_map<std::int64_t, std::shared_ptr<stream_state>> streams_;
    struct opener {
        open_op op;
        std::shared_ptr<void> key;
    };
    std::deque<opener> openers_;
    std::vector<std::int64_t> raw_streams_;  ///< streams in raw mode (tests only; usually empty)
    std::vector<std::int64_t> lone_fins_;    ///< FINs without data that QUIC has yet to take
    bool openers_pending_ = false;

    bool established_ = false;
    bool terminated_ = false;
    // ---- 0-RTT (connection_options::early_data) ----
    bool early_data_attempted_ = false;  ///< client: the ticket allowed it and ngtcp2 has the early limits
    bool early_data_rejected_ = false;   ///< client: the server refused it (early streams failed)
    bool h3_streams_ready_ = false;      ///< our control and QPACK streams are open (early, or at handshake)
    std::vector<std::weak_ptr<stream_state>> held_requests_;  ///< client: held_for_handshake, in order
    /// Client: streams of a rejected 0-RTT waiting for a fresh stream ID (awaiting_resend), in the
    /// order they were opened. Nothing is copied for them: body bytes stay in send_buf until
    /// acknowledged, and no 0-RTT packet was. So they hold what their send buffers already could:
    /// at most as many streams as the remembered initial_max_streams_bidi, each stream_send_buffer
    /// plus what the remembered 0-RTT flow-control credit let it hand out (send_buffer_limit()).
    std::deque<std::shared_ptr<stream_state>> rejected_streams_;
    std::uint64_t early_requests_resent_ = 0;  ///< connection_stats::early_requests_resent
    /// Client, 0-RTT: the first flight waits until the first request is submitted, or until this
    /// time (0: not waiting). ngtcp2 paces packets by its initial RTT (333 ms) until it measures
    /// one: a request written after the ClientHello would leave ~25 ms behind it, not with it.
    std::uint64_t first_flight_at_ = 0;
    /// Client: the handshake must be confirmed (HANDSHAKE_DONE) by then, or the connection ends
    /// with handshake_timeout. ngtcp2's own handshake timeout stops at completion, but a server
    /// that never received our Finished gives up its half silently at its handshake timeout; the
    /// client would otherwise wait out the idle timeout for packets that cannot come.
    std::uint64_t confirm_by_ = UINT64_MAX;
    bool goaway_sent_ = false;
    bool goaway_received_ = false;
    bool goaway_deferred_ = false;  ///< send_goaway before the handshake completed
    std::uint64_t final_goaway_at_ = UINT64_MAX;  ///< when send_goaway's final GOAWAY goes
    std::error_code close_error_;
    std::error_code last_error_;  ///< why a library callback failed, for the close that follows
    std::string close_reason_;

    // Path-MTU black-hole detection (RFC 8899 §4.3), which ngtcp2 (0.12 and 1.x) lacks: once PMTUD
    // has raised the packet size, a path whose MTU then falls loses every full-sized packet while
    // ACKs and small packets still pass, and the connection would stall with no idle timeout.
    H3CO_DECL void check_path_mtu_black_hole(std::uint64_t now);
    static constexpr std::size_t base_udp_payload = 1200;  ///< what every QUIC path carries (RFC 9000 §14)
    /// Since when data is in flight with no stream data acknowledged (0: not; quic_callbacks'
    /// acked_stream_data_offset resets it).
    std::uint64_t data_stalled_since_ = 0;
    bool mtu_clamped_ = false;              ///< from then on, packets of at most 1200 bytes

    std::uint64_t packets_sent_ = 0;
    std::uint64_t packets_received_ = 0;
    std::uint64_t bytes_sent_ = 0;
    std::uint64_t bytes_paced_ = 0;  ///< bytes_sent_ when the last round was paced (end_flush)
    std::uint64_t bytes_received_ = 0;
    std::uint64_t lost_in_closed_streams_ = 0;  ///< packets lost on streams that are gone
    std::uint64_t replaced_remote_uni_streams_ = 0;  ///< see compat::max_replaced_remote_uni_streams
    // ---- key updates (connection_options::key_update_interval) ----
    std::uint64_t packets_at_key_update_ = 0;  ///< packets_sent_ when we last started a key update
    std::uint64_t key_updates_initiated_ = 0;
    std::uint64_t key_generations_derived_ = 0;  ///< update_key callbacks (quic/callbacks.hpp)
    // ---- connection migration (quic/callbacks.hpp path_validation) ----
    std::uint64_t paths_validated_ = 0;
    std::uint64_t path_validations_failed_ = 0;
    bool several_sockets_ = false;  ///< see set_several_sockets()
    sockaddr_storage preferred_{};  ///< server: see set_preferred_address() (preferred_len_ 0: none)
    socklen_t preferred_len_ = 0;
    /// The socket for packets on `path` (an ngtcp2_path): 0 unless the I/O layer has several.
    template <class NgPath>
    std::uint32_t socket_of(const NgPath& path) {
        if (!several_sockets_) return 0;
        return socket_for(reinterpret_cast<const sockaddr*>(path.local.addr), static_cast<socklen_t>(path.local.addrlen));
    }

    std::uint64_t now_ = 0;          ///< the time the latest input brought (stream operations carry none)
    credit_ledger ledger_;           ///< receive credit: every delivered byte extended exactly once
    flow_window window_;             ///< the connection's receive window
    std::uint64_t largest_stream_window_ = 0;  ///< the largest receive window any stream reached

    // ---- HTTP/3 extensions: the peer's SETTINGS, datagrams (impl/session_extensions.ipp) --------
public:
    /// The peer's SETTINGS have arrived (h3co reads them itself: h3/peer_settings.hpp).
    bool peer_settings_known() const noexcept { return peer_settings_.complete(); }
    /// Completes `op` once the peer's SETTINGS have arrived, or with why the connection ended.
    H3CO_DECL void after_peer_settings(pending_op<std::error_code> op);
    /// Why no HTTP/3 datagram can go on `s` whatever the peer says (the stack, the options, the
    /// connection or stream ended), or nothing.
    H3CO_DECL std::error_code datagrams_unavailable(const stream_state& s) const;
    /// Queues an HTTP/3 datagram with `payload` on `s`; `op` completes once it is queued. `raw`
    /// (tests only): `payload` is the whole QUIC DATAGRAM frame's data, without the stream ID.
    /// `op_id` (extension_ops.hpp) names the op for cancel_datagram().
    H3CO_DECL void send_datagram(stream_state& s, std::vector<std::uint8_t> payload, pending_op<std::error_code> op,
                                 std::uint64_t op_id, bool raw = false);
    /// Takes the next HTTP/3 datagram of `s` into `buffers`, or waits for one.
    H3CO_DECL void receive_datagram(stream_state& s, std::vector<asio::mutable_buffer> buffers,
                                    pending_op<std::error_code, std::size_t> op, std::uint64_t op_id);
    /// The datagram operation `op_id` on `s`, if pending, completes with operation_aborted.
    H3CO_DECL void cancel_datagram(stream_state& s, std::uint64_t op_id);

private:
    friend struct h3_extensions;
    /// After the SETTINGS: why no datagram can go on `s` (the above, or the peer did not offer them).
    H3CO_DECL std::error_code datagrams_unusable(const stream_state& s) const;
    /// Bytes of the peer's unidirectional stream `id`, for the SETTINGS reader. False: the peer's
    /// SETTINGS break RFC 9297 (last_error_ and the close set).
    H3CO_DECL bool peer_uni_stream_data(std::int64_t id, const std::uint8_t* data, std::size_t len);
    /// A QUIC DATAGRAM frame arrived. False: the peer broke RFC 9297 (last_error_ and the close set).
    H3CO_DECL bool datagram_received(const std::uint8_t* data, std::size_t len);

    peer_settings_reader peer_settings_;
    std::vector<pending_op<std::error_code>> settings_waiters_;
    datagram_channels datagrams_{options_.datagram_receive_queue, options_.datagram_send_queue};
    // ---- server limits (issue 13) ----
    std::uint64_t header_timeout_ = 0;
    std::function<void(std::uint8_t*, std::size_t)> cid_maker_;  ///< see set_cid_maker()
    std::uint64_t body_idle_timeout_ = 0;
    std::uint64_t next_timeout_check_ = UINT64_MAX;  ///< when check_request_timeouts runs next
    bool stateless_reset_ = false;  ///< the peer sent a stateless reset: it lost the connection
};

}  // namespace h3co::detail

#if defined(H3CO_HEADER_ONLY)
#include <h3co/detail/impl/session.ipp>
#include <h3co/detail/impl/tls_peer.ipp>
#endif
