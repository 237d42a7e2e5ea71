// When the peer has acknowledged a stream's FIN. ngtcp2 0.12 tracks it internally but reports it
// neither as an event nor through a getter, so h3co derives it from the per-frame ACK callback.
#pragma once

#include <cstdint>

namespace h3co::detail {

struct fin_tracker {
    static constexpr std::uint64_t no_fin = ~std::uint64_t{0};

    std::uint64_t sent = 0;          ///< bytes handed to QUIC (HTTP/3 framing included)
    std::uint64_t acked = 0;         ///< acknowledged prefix [0, acked)
    std::uint64_t fin_offset = no_fin;
    bool fin_alone = false;          ///< the FIN left in an empty frame after every byte was acknowledged
    bool fin_frame_acked = false;    ///< a frame carrying the FIN was acknowledged

    /// QUIC took `datalen` bytes (with the FIN when `fin` and all `offered` bytes were taken).
    void on_written(std::uint64_t datalen, bool fin, std::uint64_t offered) {
        sent += datalen;
        if (!fin || fin_offset != no_fin || datalen != offered) return;  // only part taken: no FIN yet
        fin_offset = sent;
        fin_alone = datalen == 0 && acked == sent;
    }

    /// ngtcp2 reports each acknowledged STREAM frame as the growth of the acknowledged prefix
    /// [0, offset + datalen), and calls with datalen 0 only for a frame that carries the FIN. When
    /// the FIN went alone after everything else was acknowledged, nothing can merge it into a data
    /// frame, so only that call confirms it. Otherwise ngtcp2 may merge a lost FIN into a lost data
    /// frame's retransmission, and the prefix reaching the FIN is taken as confirmation.
    void on_acked(std::uint64_t offset, std::uint64_t datalen) {
        acked = offset + datalen;
        if (datalen == 0 && fin_offset != no_fin) fin_frame_acked = true;
    }

    bool fin_acked() const noexcept { return acked == fin_offset && (fin_frame_acked || !fin_alone); }
};

}  // namespace h3co::detail
