// Tools for testing HTTP/3 peers and h3co itself. Not for applications: these send what a correct
// client never sends, and look at the engine from outside.
#pragma once

#include <h3co/detail/handle_access.hpp>
#include <h3co/detail/live_count.hpp>
#include <h3co/detail/stream_ops.hpp>
#include <h3co/message.hpp>
#include <h3co/connection.hpp>
#include <h3co/request_stream.hpp>
#include <h3co/server_request.hpp>

#include <algorithm>
#include <cstdint>

#include <span>
#include <system_error>

namespace h3co::testing {

/// Sends exactly `raw` on `stream` as the request's header block: pseudo-headers, case and
/// characters as given, unchecked. For testing how servers treat malformed requests.
/// Completion: void(std::error_code).
template <class Executor, class CompletionToken = detail::default_token_t<Executor>>
auto send_raw_header(basic_request_stream<Executor>& stream, const fields& raw,
                     CompletionToken&& token = CompletionToken{}) {
    return detail::initiate_stream_op<detail::status_signature>(
        std::forward<CompletionToken>(token), detail::handle_access::state(stream), stream.get_executor(), detail::stream_op_kind::header,
        [raw](detail::stream_machine& m, detail::stream_state& st, auto op) {
            m.send_raw_request_header(st, raw, std::move(op));
        });
}

/// Takes `stream` out of HTTP/3 framing instead of sending a header: afterwards write() and
/// finish() put bytes on the QUIC stream exactly as given, and read_some() returns the server's
/// bytes unparsed, frames included. For testing how servers treat frame sequences a correct client
/// never sends (DATA before HEADERS, unknown frame types). Completes with error::already_open once
/// a header was sent. Completion: void(std::error_code).
template <class Executor, class CompletionToken = detail::default_token_t<Executor>>
auto start_raw(basic_request_stream<Executor>& stream, CompletionToken&& token = CompletionToken{}) {
    return detail::initiate_stream_op<detail::status_signature>(
        std::forward<CompletionToken>(token), detail::handle_access::state(stream), stream.get_executor(), detail::stream_op_kind::header,
        [](detail::stream_machine& m, detail::stream_state& st, auto op) { m.start_raw(st, std::move(op)); });
}

/// Sends `frame` as the data of one QUIC DATAGRAM frame on `stream`'s connection, without the
/// quarter stream ID an HTTP/3 datagram starts with: for testing how peers treat malformed HTTP/3
/// datagrams (RFC 9297). Needs negotiated datagrams, as basic_http_stream::send_datagram().
/// Completion: void(std::error_code).
template <class Executor, class CompletionToken = detail::default_token_t<Executor>>
auto send_raw_datagram(basic_http_stream<Executor>& stream, std::vector<std::uint8_t> frame,
                       CompletionToken&& token = CompletionToken{}) {
    return detail::initiate_datagram_op<detail::status_signature>(
        std::forward<CompletionToken>(token), detail::handle_access::state(stream), stream.get_executor(),
        [frame = std::move(frame)](detail::session& s, detail::stream_state& st, auto op, std::uint64_t id) mutable {
            s.send_datagram(st, std::move(frame), std::move(op), id, true);
        });
}

/// Sends PRIORITY_UPDATE (RFC 9218) for `stream`, whose header went out, with `urgency` (0-7) and
/// `incremental`: what browsers send on long-lived connections. Completion: void(std::error_code).
template <class Executor, class CompletionToken = detail::default_token_t<Executor>>
auto send_priority_update(basic_request_stream<Executor>& stream, unsigned urgency, bool incremental,
                          CompletionToken&& token = CompletionToken{}) {
    return detail::initiate_stream_op<detail::status_signature>(
        std::forward<CompletionToken>(token), detail::handle_access::state(stream), stream.get_executor(),
        detail::stream_op_kind::header, [urgency, incremental](detail::stream_machine&, detail::stream_state& st, auto op) {
            auto owner = st.owner.lock();
            op.complete(owner ? owner->send_priority_update(st, urgency, incremental)
                              : make_error_code(error::connection_closed));
        });
}
/// Opens a unidirectional stream on `conn` and sends exactly `bytes` on it with its FIN: for testing
/// how peers treat reserved and GREASE stream types (RFC 9114 §6.2.3). Call it on the connection's
/// executor. asio::error::would_block when the peer's stream limit allows no other now.
template <class Executor>
std::error_code send_raw_uni_stream(basic_connection<Executor>& conn, std::span<const std::uint8_t> bytes) {
    auto& impl = detail::handle_access::impl(conn);
    if (!impl) return make_error_code(error::connection_closed);
    return impl->send_raw_uni_stream(bytes);
}
/// Request streams whose state is alive in this process, in any connection: a test that ends with
/// the same count it started with has leaked none.
inline long live_stream_states() noexcept {
    return detail::live_count<detail::stream_state>().load(std::memory_order_relaxed);
}

/// Connections (client and server) whose engine is alive in this process.
inline long live_connections() noexcept {
    return detail::live_count<detail::connection_tag>().load(std::memory_order_relaxed);
}

/// Asynchronous operations of h3co's alive in this process: waiting, or completed and not yet run.
inline long live_pending_ops() noexcept {
    return detail::live_count<detail::pending_op_tag>().load(std::memory_order_relaxed);
}

/// What the streams of one connection hold in memory now, the largest of each over its streams:
/// what connection_stats cannot say, since it sums or keeps maximums of windows only.
struct stream_memory {
    std::size_t streams = 0;               ///< streams the connection holds
    std::size_t closed_holding = 0;        ///< streams QUIC closed whose handle still holds bytes unread
    /// Body bytes received and not yet read by the application; for a closed stream, what the
    /// credit ledger owes for it (its handle holds them; debug builds assert the two are equal).
    std::uint64_t held_unread = 0;
    std::uint64_t held_over_window = 0;    ///< unread bytes beyond that stream's own receive window
    std::uint64_t buffered_to_send = 0;    ///< bytes in a send buffer: not yet sent, or sent and not acknowledged
};

namespace detail_testing {
inline stream_memory stream_memory_of(const detail::session* s) {
    stream_memory out;
    if (!s) return out;
    s->for_each_stream([&out](const detail::stream_state& st) {
        ++out.streams;
        const std::uint64_t held = st.recv_buf.size();
        out.held_unread = std::max(out.held_unread, held);
        if (held > st.window.size) out.held_over_window = std::max(out.held_over_window, held - st.window.size);
        out.buffered_to_send = std::max<std::uint64_t>(out.buffered_to_send, st.send_buf.size());
    });
    s->for_each_closed_unread([&out](std::int64_t, std::uint64_t held) {
        ++out.closed_holding;
        out.held_unread = std::max(out.held_unread, held);
    });
    return out;
}
}  // namespace detail_testing

/// The per-stream memory of the connection behind `conn` (empty: no connection). Iterates its
/// streams; costs nothing unless called. On the connection's executor.
template <class Executor>
stream_memory stream_memory_of(const basic_connection<Executor>& conn) {
    return detail_testing::stream_memory_of(detail::handle_access::impl(conn).get());
}

/// The same for the connection a server request came on. On the connection's executor.
template <class Executor>
stream_memory stream_memory_of(const basic_server_request<Executor>& req) {
    const auto& st = detail::handle_access::state(req);
    const auto owner = st ? st->owner.lock() : nullptr;
    return detail_testing::stream_memory_of(owner.get());
}

/// What identifies the connection behind `conn`: two handles on one connection give the same value
/// (the pooled client hands out several).
template <class Executor>
const void* connection_identity(const basic_connection<Executor>& conn) noexcept {
    return detail::handle_access::impl(conn).get();
}

}  // namespace h3co::testing
