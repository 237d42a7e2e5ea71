// A server on several workers: one UDP socket per worker, all bound to one address with
// SO_REUSEPORT, and the classic BPF program that has the kernel pick the worker from the
// destination connection ID (the octet that holds the worker ID: byte 1, or with QUIC-LB in the
// clear the nonce's first; see cid_factory in detail/connection_id.hpp).
#pragma once

#include <h3co/detail/connection_id.hpp>

#include <cstddef>
#include <cstdint>

#include <linux/filter.h>
#include <sys/socket.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51  // Linux >= 4.5; older headers lack the name
#endif

namespace h3co::detail {

/// The worker that owns a datagram whose destination connection ID is `dcid`: the ID's worker
/// byte modulo `workers`. Server-issued IDs name their worker exactly; a client-chosen one (a
/// fresh Initial) picks one by its random byte, so every Initial of a handshake lands on one
/// worker whichever socket it reached. The kernel program below computes the same.
inline std::size_t owner_worker(const std::uint8_t* dcid, std::size_t len, std::size_t workers) noexcept {
    return len > worker_id_offset ? dcid[worker_id_offset] % workers : 0;
}

/// SO_REUSEPORT on `fd`, before bind(): workers' sockets share the address.
inline bool enable_reuse_port(int fd) noexcept {
    const int on = 1;
    return ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0;
}

/// Attaches to the reuseport group of `fd` a program returning, for each datagram, the index of
/// the socket (in bind order) of the worker that the connection ID's octet at `offset` names,
/// modulo `workers` (as cid_factory::owner() computes it). The kernel runs it on the UDP payload.
/// Short header: DCID at offset 1, so the worker byte is at 1 + offset. Long header: 1 octet, 4
/// of version, 1 of DCID length, then the DCID: the worker byte is at 6 + offset. A datagram too
/// short to read aborts the program (socket 0; that worker hands it on if it must). False when
/// the kernel refuses (then the workers hand packets to each other in user space).
inline bool attach_cid_steering(int fd, std::size_t workers, std::size_t offset = worker_id_offset) noexcept {
    if (workers < 2 || workers > 256 || offset == 0 || offset >= 20) return false;
    const auto at = static_cast<std::uint32_t>(offset);
    sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),                 // A = first octet
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80, 0, 2),      // long header? else skip 2
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6 + at),           // long: DCID octet `offset`
        BPF_STMT(BPF_JMP | BPF_JA, 1),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 1 + at),           // short: DCID octet `offset`
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, static_cast<std::uint32_t>(workers)),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
    return ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0;
}

}  // namespace h3co::detail
