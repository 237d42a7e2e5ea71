// From connection_options to ngtcp2's settings and transport parameters: timeouts, windows,
// congestion control, packet size, qlog. Included only by the engine's implementation files.
#pragma once

#include <h3co/detail/h3/compat.hpp>
#include <h3co/detail/quic/compat.hpp>
#include <h3co/detail/quic/native_session.hpp>
#include <h3co/detail/tls_context.hpp>
#include <h3co/error.hpp>
#include <h3co/options.hpp>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

namespace h3co::detail::transport_config {

inline ngtcp2_cc_algo cc_algo_of(congestion_control cc) noexcept { return compat::cc_algo(cc); }

/// H3CO_DEBUG_NGTCP2=1 in the environment prints ngtcp2's own frame log to stderr.
inline void debug_log(void*, const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::vfprintf(stderr, format, args);
    va_end(args);
    std::fputc('\n', stderr);
}

/// qlog into `dir`/{client,server}-<random>.sqlog.
inline void setup_qlog(ngtcp2_settings& settings, native_session& n, const std::string& dir, bool client,
                       ngtcp2_qlog_write write) {
    std::array<std::uint8_t, 8> id;
    random_bytes(id.data(), id.size());
    std::string name = dir + (client ? "/client-" : "/server-");
    static constexpr char hex[] = "0123456789abcdef";
    for (auto b : id) {
        name += hex[b >> 4];
        name += hex[b & 15];
    }
    name += ".sqlog";
    n.qlog = std::fopen(name.c_str(), "w");
    if (!n.qlog) return;
    compat::set_qlog(settings, write);
}

/// An address validation token in `settings` (copied by ngtcp2): a client sends it in its first
/// Initial; a server that validated it lifts the amplification limit. (ngtcp2 0.12 keeps it as an
/// ngtcp2_vec; 1.x as pointer + length, with its type, which the server must state.)
inline void set_token(ngtcp2_settings& settings, const std::uint8_t* token, std::size_t len) {
#if NGTCP2_VERSION_NUM >= 0x010000
    settings.token = token;
    settings.tokenlen = len;
    if (len > 0) settings.token_type = token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY ? NGTCP2_TOKEN_TYPE_RETRY
                                                                                    : NGTCP2_TOKEN_TYPE_NEW_TOKEN;
#else
    settings.token = ngtcp2_vec{const_cast<std::uint8_t*>(token), len};
#endif
}

/// Receive windows start at the options' initial sizes. h3co grows them itself as the application
/// reads (session::return_credit, flow_window), so ngtcp2's own auto-tuning is off (0): then h3co
/// always knows the windows it granted.
/// `qlog_write` writes a qlog chunk into the connection's file (see quic_callbacks).
inline void fill(const connection_options& o, bool client, std::uint64_t now, native_session& n,
                 ngtcp2_qlog_write qlog_write, ngtcp2_settings& settings, ngtcp2_transport_params& params) {
    ngtcp2_settings_default(&settings);
    settings.initial_ts = now;
    settings.handshake_timeout = static_cast<ngtcp2_duration>(o.handshake_timeout.count()) * NGTCP2_MILLISECONDS;
    settings.max_tx_udp_payload_size = std::min(o.max_udp_payload, compat::max_udp_payload_limit);
    compat::set_pmtud_probes(settings, n.pmtud_probes, settings.max_tx_udp_payload_size);  // 1.x: above 1452
    settings.cc_algo = cc_algo_of(o.congestion_control);
    settings.max_stream_window = 0;
    settings.max_window = 0;
    // ngtcp2 acknowledges every ack_thresh-th ack-eliciting packet at once, the others after its
    // ACK delay (max_ack_delay, at most srtt / 8); its default is 2.
    settings.ack_thresh = std::max<std::size_t>(o.ack_threshold, 1);
    if (!o.qlog_dir.empty()) setup_qlog(settings, n, o.qlog_dir, client, qlog_write);
    if (std::getenv("H3CO_DEBUG_NGTCP2")) settings.log_printf = &debug_log;
    if (o.quic_versions == quic_versions::prefer_v2) {
        if (!compat::quic_v2_supported)
            throw std::system_error(make_error_code(error::not_supported), "QUIC version 2 needs ngtcp2 1.x");
        compat::prefer_quic_v2(settings, client);
    }
    ngtcp2_transport_params_default(&params);
    params.initial_max_stream_data_bidi_local = o.stream_receive_window;
    params.initial_max_stream_data_bidi_remote = o.stream_receive_window;
    params.initial_max_stream_data_uni = o.stream_receive_window;
    params.initial_max_data = o.connection_receive_window;
    // The peer's control and QPACK streams, and room for reserved (GREASE) ones, which nghttp3 stops
    // reading and which are replaced as they close (quic_callbacks::stream_close).
    params.initial_max_streams_uni = 8;
    params.max_idle_timeout = static_cast<ngtcp2_duration>(o.idle_timeout.count()) * NGTCP2_MILLISECONDS;
    params.active_connection_id_limit = 7;
    // HTTP/3 datagrams (RFC 9297) ride in QUIC DATAGRAM frames, at most max_udp_payload each: what
    // a peer can make us hold is datagram_receive_queue of them per stream.
    if (o.h3_datagrams && h3_compat::h3_datagrams_supported) params.max_datagram_frame_size = settings.max_tx_udp_payload_size;
}

}  // namespace h3co::detail::transport_config
