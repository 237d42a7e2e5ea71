// Every difference between ngtcp2 0.12 and ngtcp2 1.x that h3co meets, behind one set of names:
// the engine calls these and never tests a version itself. (nghttp3's differences are in
// detail/h3/compat.hpp.) docs/design.md, "Versions", lists what differs and what users can see.
// Included only by the engine's implementation files, never by a public header.
#pragma once

#include <h3co/options.hpp>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/version.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace h3co::detail::compat {

/// ngtcp2 1.0 renamed the close-error API, added a flags argument to the stream shutdowns,
/// flattened the qlog settings and made the server's original_dcid explicit.
inline constexpr bool ngtcp2_1x = NGTCP2_VERSION_NUM >= 0x010000;

#if NGTCP2_VERSION_NUM >= 0x010000

/// What a connection closes with, or what the peer closed it with.
using ccerr = ngtcp2_ccerr;
inline void ccerr_default(ccerr& e) noexcept { ngtcp2_ccerr_default(&e); }
/// For a library error; 1.x gives some (idle close, dropped connection) a type that sends nothing.
inline void ccerr_set_liberr(ccerr& e, int liberr) noexcept { ngtcp2_ccerr_set_liberr(&e, liberr, nullptr, 0); }
inline void ccerr_set_tls_alert(ccerr& e, std::uint8_t alert) noexcept {
    ngtcp2_ccerr_set_tls_alert(&e, alert, nullptr, 0);
}
inline void ccerr_set_application_error(ccerr& e, std::uint64_t code, const std::uint8_t* reason,
                                        std::size_t reasonlen) noexcept {
    ngtcp2_ccerr_set_application_error(&e, code, reason, reasonlen);
}
inline bool ccerr_is_transport(const ccerr& e) noexcept { return e.type == NGTCP2_CCERR_TYPE_TRANSPORT; }
inline bool ccerr_is_application(const ccerr& e) noexcept { return e.type == NGTCP2_CCERR_TYPE_APPLICATION; }
/// The peer's CONNECTION_CLOSE (a copy; its reason points into the connection).
inline ccerr peer_ccerr(ngtcp2_conn* conn) noexcept { return *ngtcp2_conn_get_ccerr(conn); }

inline int shutdown_stream(ngtcp2_conn* conn, std::int64_t id, std::uint64_t code) noexcept {
    return ngtcp2_conn_shutdown_stream(conn, 0, id, code);
}
inline int shutdown_stream_read(ngtcp2_conn* conn, std::int64_t id, std::uint64_t code) noexcept {
    return ngtcp2_conn_shutdown_stream_read(conn, 0, id, code);
}
inline int shutdown_stream_write(ngtcp2_conn* conn, std::int64_t id, std::uint64_t code) noexcept {
    return ngtcp2_conn_shutdown_stream_write(conn, 0, id, code);
}

/// qlog: 1.x names the trace after the connection's original DCID itself.
inline void set_qlog(ngtcp2_settings& s, ngtcp2_qlog_write write) noexcept { s.qlog_write = write; }
inline void set_qlog_odcid(ngtcp2_settings&, const ngtcp2_cid&) noexcept {}

/// Server: the client's first DCID, echoed in original_destination_connection_id. 1.x asserts the
/// presence flag on a server (and, built with NDEBUG, would leave the parameter out).
inline void set_original_dcid(ngtcp2_transport_params& p, const ngtcp2_cid& cid) noexcept {
    p.original_dcid = cid;
    p.original_dcid_present = 1;
}

/// 1.x's only BBR is BBRv2 (NGTCP2_CC_ALGO_BBR); its BBRv1 and the BBR2 name are gone.
inline ngtcp2_cc_algo cc_algo(congestion_control cc) noexcept {
    switch (cc) {
    case congestion_control::reno: return NGTCP2_CC_ALGO_RENO;
    case congestion_control::cubic: return NGTCP2_CC_ALGO_CUBIC;
    case congestion_control::bbr:
    case congestion_control::bbr2: return NGTCP2_CC_ALGO_BBR;
    }
    return NGTCP2_CC_ALGO_CUBIC;
}

#else  // ngtcp2 0.12

using ccerr = ngtcp2_connection_close_error;
inline void ccerr_default(ccerr& e) noexcept { ngtcp2_connection_close_error_default(&e); }
inline void ccerr_set_liberr(ccerr& e, int liberr) noexcept {
    ngtcp2_connection_close_error_set_transport_error_liberr(&e, liberr, nullptr, 0);
}
inline void ccerr_set_tls_alert(ccerr& e, std::uint8_t alert) noexcept {
    ngtcp2_connection_close_error_set_transport_error_tls_alert(&e, alert, nullptr, 0);
}
inline void ccerr_set_application_error(ccerr& e, std::uint64_t code, const std::uint8_t* reason,
                                        std::size_t reasonlen) noexcept {
    ngtcp2_connection_close_error_set_application_error(&e, code, reason, reasonlen);
}
inline bool ccerr_is_transport(const ccerr& e) noexcept {
    return e.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT;
}
inline bool ccerr_is_application(const ccerr& e) noexcept {
    return e.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION;
}
inline ccerr peer_ccerr(ngtcp2_conn* conn) noexcept {
    ccerr e;
    ngtcp2_conn_get_connection_close_error(conn, &e);
    return e;
}

inline int shutdown_stream(ngtcp2_conn* conn, std::int64_t id, std::uint64_t code) noexcept {
    return ngtcp2_conn_shutdown_stream(conn, id, code);
}
inline int shutdown_stream_read(ngtcp2_conn* conn, std::int64_t id, std::uint64_t code) noexcept {
    return ngtcp2_conn_shutdown_stream_read(conn, id, code);
}
inline int shutdown_stream_write(ngtcp2_conn* conn, std::int64_t id, std::uint64_t code) noexcept {
    return ngtcp2_conn_shutdown_stream_write(conn, id, code);
}

inline void set_qlog(ngtcp2_settings& s, ngtcp2_qlog_write write) noexcept { s.qlog.write = write; }
/// 0.12 names the qlog trace after the DCID given here.
inline void set_qlog_odcid(ngtcp2_settings& s, const ngtcp2_cid& odcid) noexcept { s.qlog.odcid = odcid; }

inline void set_original_dcid(ngtcp2_transport_params& p, const ngtcp2_cid& cid) noexcept { p.original_dcid = cid; }

inline ngtcp2_cc_algo cc_algo(congestion_control cc) noexcept {
    switch (cc) {
    case congestion_control::reno: return NGTCP2_CC_ALGO_RENO;
    case congestion_control::cubic: return NGTCP2_CC_ALGO_CUBIC;
    case congestion_control::bbr: return NGTCP2_CC_ALGO_BBR;
    case congestion_control::bbr2: return NGTCP2_CC_ALGO_BBR2;
    }
    return NGTCP2_CC_ALGO_CUBIC;
}

#endif

/// Whether ngtcp2_conn_initiate_key_update may be called at all: both versions assert a connection
/// past its handshake and not closing (1.0 renamed the closing and draining checks). Whether the
/// update is allowed now (confirmed handshake and previous update, 3 PTO since) it says itself,
/// with NGTCP2_ERR_INVALID_STATE; the function and that contract are the same in 0.12 and 1.x.
inline bool key_update_possible(ngtcp2_conn* conn) noexcept {
#if NGTCP2_VERSION_NUM >= 0x010000
    const bool ending = ngtcp2_conn_in_closing_period(conn) || ngtcp2_conn_in_draining_period(conn);
#else
    const bool ending = ngtcp2_conn_is_in_closing_period(conn) || ngtcp2_conn_is_in_draining_period(conn);
#endif
    return ngtcp2_conn_get_handshake_completed(conn) && !ending;
}

/// The congestion-control and RTT numbers both versions report (ngtcp2_conn_stat in 0.12,
/// ngtcp2_conn_info in 1.x), plus the 0.12-only delivery rate (0 on 1.x, which does not report it).
struct path_numbers {
    std::uint64_t smoothed_rtt = 0, min_rtt = 0, latest_rtt = 0, rttvar = 0;  ///< nanoseconds
    std::uint64_t cwnd = 0, ssthresh = 0, bytes_in_flight = 0;
    std::uint64_t delivery_rate = 0;  ///< bytes per second
};

inline path_numbers path_numbers_of(ngtcp2_conn* conn) noexcept {
    path_numbers out;
#if NGTCP2_VERSION_NUM >= 0x010000
    ngtcp2_conn_info ci;
    ngtcp2_conn_get_conn_info(conn, &ci);
#else
    ngtcp2_conn_stat ci;
    ngtcp2_conn_get_conn_stat(conn, &ci);
    out.delivery_rate = ci.delivery_rate_sec;
#endif
    out.smoothed_rtt = ci.smoothed_rtt;
    out.min_rtt = ci.min_rtt == UINT64_MAX ? 0 : ci.min_rtt;
    out.latest_rtt = ci.latest_rtt;
    out.rttvar = ci.rttvar;
    out.cwnd = ci.cwnd;
    out.ssthresh = ci.ssthresh;
    out.bytes_in_flight = ci.bytes_in_flight;
    return out;
}

/// Path-MTU discovery above 1452 (ngtcp2 >= 1.4, NGTCP2_SETTINGS_V2): ngtcp2's own probes stop at
/// 1452 (1500-byte Ethernet minus headers); h3co adds sizes up to connection_options::
/// max_udp_payload, tried largest first after the usual ones. Older versions keep their own probes.
inline constexpr bool pmtud_probes_supported =
#ifdef NGTCP2_SETTINGS_V2
    true;
#else
    false;
#endif

/// Whether ngtcp2 closes a peer's unidirectional stream (and calls stream_close) once its data is
/// all in. ngtcp2 0.12.1 never does: such a stream waits for a FIN of its own that is never acked,
/// so its state lives until the connection ends (fixed in 1.x, which marks it FIN-acked at once).
inline constexpr bool closes_remote_uni_streams = ngtcp2_1x;

/// On ngtcp2 0.12.1, how many reserved (GREASE) unidirectional streams (RFC 9114 §6.2.3) a peer may
/// open over a connection's life beyond those its initial limit allows: each keeps ngtcp2's state
/// until the connection ends, so the count bounds that memory. 1.x frees them and sets no bound.
inline constexpr std::uint64_t max_replaced_remote_uni_streams = 256;

/// The largest UDP payload ngtcp2 accepts as a peer's max_udp_payload_size (RFC 9000's 65527).
inline constexpr std::size_t max_udp_payload_limit = 65527;

/// Storage for the probe sizes (ngtcp2 copies them when the connection is made).
struct pmtud_probe_sizes {
    std::array<std::uint16_t, 16> sizes{};
    std::size_t count = 0;
};

/// Fills `probes` for a largest payload of `max_payload` and points `s` at them (1.4+); no-op
/// otherwise, or when `max_payload` is not above 1452 (ngtcp2's defaults then suffice).
inline void set_pmtud_probes(ngtcp2_settings& s, pmtud_probe_sizes& probes, std::size_t max_payload) noexcept {
#ifdef NGTCP2_SETTINGS_V2
    if (max_payload <= 1452) return;  // ngtcp2's own probes reach 1444 (PPPoE), which suffices
    // Smallest first: ngtcp2 skips every size above one that failed, so the first failure ends
    // the search. ngtcp2's defaults (IPv6 minimum, tunnels, fibre, PPPoE), Ethernet over IPv6 and
    // IPv4, jumbo frames over IPv6 and IPv4, loopback-sized steps; max_payload ends the list
    // (ngtcp2 wants its largest probe equal to the largest payload).
    static constexpr std::uint16_t ladder[] = {1232, 1342, 1406, 1444, 1452, 1472, 4052, 8952, 8972, 16356, 32740};
    const auto top = static_cast<std::uint16_t>(max_payload > max_udp_payload_limit ? max_udp_payload_limit : max_payload);
    for (auto size : ladder)
        if (size < top) probes.sizes[probes.count++] = size;
    probes.sizes[probes.count++] = top;
    s.pmtud_probes = probes.sizes.data();
    s.pmtud_probeslen = probes.count;
#else
    (void)s, (void)probes, (void)max_payload;
#endif
}

/// The server's transport parameters in the form a later 0-RTT attempt restores them from (kept
/// with a session ticket); the length written, or negative if `dest` is too small.
inline ngtcp2_ssize encode_0rtt_params(ngtcp2_conn* conn, std::uint8_t* dest, std::size_t len) noexcept {
#if NGTCP2_VERSION_NUM >= 0x010000
    return ngtcp2_conn_encode_0rtt_transport_params(conn, dest, len);
#else
    return ngtcp2_encode_transport_params(dest, len, NGTCP2_TRANSPORT_PARAMS_TYPE_ENCRYPTED_EXTENSIONS,
                                          ngtcp2_conn_get_remote_transport_params(conn));
#endif
}

/// Client, 0-RTT: restores the server's transport parameters kept with the ticket (the bytes
/// encode_0rtt_params wrote), so that streams may open and data go before the handshake
/// completes. Non-zero if the bytes do not decode.
inline int set_0rtt_params(ngtcp2_conn* conn, const std::uint8_t* data, std::size_t len) noexcept {
#if NGTCP2_VERSION_NUM >= 0x010000
    return ngtcp2_conn_decode_and_set_0rtt_transport_params(conn, data, len);
#else
    ngtcp2_transport_params params;
    const int rv = ngtcp2_decode_transport_params(&params, NGTCP2_TRANSPORT_PARAMS_TYPE_ENCRYPTED_EXTENSIONS, data, len);
    if (rv != 0) return rv;
    ngtcp2_conn_set_early_remote_transport_params(conn, &params);
    return 0;
#endif
}

/// Server, 0-RTT: the limits a ticket's 0-RTT may rely on, as bytes for BoringSSL's early-data
/// context (it refuses 0-RTT under a ticket issued with other bytes). The length, or negative.
inline ngtcp2_ssize encode_early_data_context(const ngtcp2_transport_params& own, std::uint8_t* dest,
                                              std::size_t len) noexcept {
    ngtcp2_transport_params p;
#if NGTCP2_VERSION_NUM >= 0x010000
    ngtcp2_transport_params_default(&p);
#else
    std::memset(&p, 0, sizeof p);
#endif
    p.initial_max_streams_bidi = own.initial_max_streams_bidi;
    p.initial_max_streams_uni = own.initial_max_streams_uni;
    p.initial_max_stream_data_bidi_local = own.initial_max_stream_data_bidi_local;
    p.initial_max_stream_data_bidi_remote = own.initial_max_stream_data_bidi_remote;
    p.initial_max_stream_data_uni = own.initial_max_stream_data_uni;
    p.initial_max_data = own.initial_max_data;
    p.active_connection_id_limit = own.active_connection_id_limit;
    p.max_datagram_frame_size = own.max_datagram_frame_size;
#if NGTCP2_VERSION_NUM >= 0x010000
    return ngtcp2_transport_params_encode(dest, len, &p);
#else
    return ngtcp2_encode_transport_params(dest, len, NGTCP2_TRANSPORT_PARAMS_TYPE_ENCRYPTED_EXTENSIONS, &p);
#endif
}

/// Client, 0-RTT: the callback ngtcp2 calls when the server rejected early data (ngtcp2 has then
/// forgotten every stream opened before, without closing them through stream_close).
using early_data_rejected_fn = int (*)(ngtcp2_conn*, void*);
inline void set_early_data_rejected(ngtcp2_callbacks& cb, early_data_rejected_fn fn) noexcept {
#if NGTCP2_VERSION_NUM >= 0x010000
    cb.tls_early_data_rejected = fn;
#else
    cb.early_data_rejected = fn;
#endif
}

/// QUIC version 2 (RFC 9369) and compatible version negotiation (RFC 9368): ngtcp2 1.x. ngtcp2
/// 0.12 knows only draft-ietf-quic-v2's version (0x709a50c4), which no current peer speaks.
#if NGTCP2_VERSION_NUM >= 0x010000
inline constexpr bool quic_v2_supported = true;
inline constexpr std::uint32_t quic_v2 = NGTCP2_PROTO_VER_V2;
#else
inline constexpr bool quic_v2_supported = false;
inline constexpr std::uint32_t quic_v2 = 0x6b3343cfu;  // RFC 9369; only recognised, never spoken
#endif
/// Offered and compatible versions in order of preference, when version 2 is on.
inline constexpr std::uint32_t v2_then_v1[] = {quic_v2, NGTCP2_PROTO_VER_V1};

/// Version 2 preferred (connection_options::quic_versions): a client offers it for compatible
/// version negotiation while it starts in version 1; a server upgrades clients that offer it.
inline void prefer_quic_v2(ngtcp2_settings& s, bool client) noexcept {
#if NGTCP2_VERSION_NUM >= 0x010000
    s.preferred_versions = v2_then_v1;
    s.preferred_versionslen = std::size(v2_then_v1);
    if (client) {
        s.available_versions = v2_then_v1;
        s.available_versionslen = std::size(v2_then_v1);
    }
#else
    (void)s;
    (void)client;
#endif
}

/// Path validation's outcome, in one signature for both stacks (1.x adds the old path, which h3co
/// does not need): `F(conn, flags, path, result, user_data)`.
using path_validation_fn = int (*)(ngtcp2_conn*, std::uint32_t, const ngtcp2_path*, ngtcp2_path_validation_result, void*);
template <path_validation_fn F>
void set_path_validation(ngtcp2_callbacks& cb) noexcept {
#if NGTCP2_VERSION_NUM >= 0x010000
    cb.path_validation = [](ngtcp2_conn* conn, std::uint32_t flags, const ngtcp2_path* path, const ngtcp2_path*,
                            ngtcp2_path_validation_result res, void* user_data) { return F(conn, flags, path, res, user_data); };
#else
    cb.path_validation = F;
#endif
}

/// Server: the preferred_address transport parameter (RFC 9000 §18.2), marked present.
inline ngtcp2_preferred_addr& preferred_address(ngtcp2_transport_params& p) noexcept {
#if NGTCP2_VERSION_NUM >= 0x010000
    p.preferred_addr_present = 1;
    return p.preferred_addr;
#else
    p.preferred_address_present = 1;
    return p.preferred_address;
#endif
}

}  // namespace h3co::detail::compat
