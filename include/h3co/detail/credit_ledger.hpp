// The connection's receive credit, kept in one place. QUIC flow control lets the peer send only what
// we have extended credit for; a byte whose credit never comes back shrinks the window for good, and
// one credited twice lets the peer overrun what we bound. The invariant this ledger keeps:
//
//     every byte QUIC delivers is extended exactly once,
//
// when the application reads it, when nghttp3 consumes it (framing, QPACK), when it is discarded
// (the stream is dropped, reset, stopped, malformed, or nobody is left to read it), or when the
// connection ends. So at any moment
//
//     delivered == extended + released_at_end + sum over streams of owed(stream)
//
// and a stream that QUIC has closed owes exactly the bytes its receive buffer still holds.
// The session (impl/session_transport.ipp) is the only caller: it asks the ledger how much it may
// extend and passes that to ngtcp2; nothing else calls ngtcp2's extend functions for received data.
#pragma once

#include <cassert>
#include <cstdint>
#include <unordered_map>

namespace h3co::detail {

class credit_ledger {
public:
    /// QUIC delivered `n` bytes of `stream_id` (recv_stream_data).
    void delivered(std::int64_t stream_id, std::uint64_t n) {
        if (n == 0 || ended_) return;
        streams_[stream_id].delivered += n;
        delivered_ += n;
    }

    /// Credit for `n` bytes of `stream_id` goes back. Returns how many may be extended: `n`, or less
    /// where fewer are owed. `exact`: the caller knows the bytes are owed (the application read
    /// them from the stream's buffer); debug builds check it. Otherwise (nghttp3 consuming bytes
    /// that a discard already released) the excess is dropped, never extended twice.
    std::uint64_t extend(std::int64_t stream_id, std::uint64_t n, [[maybe_unused]] bool exact) {
        auto it = streams_.find(stream_id);
        const std::uint64_t owed = it == streams_.end() ? 0 : it->second.delivered - it->second.extended;
        assert(!exact || ended_ || n <= owed);
        const std::uint64_t k = n < owed ? n : owed;
        if (k == 0) return 0;
        it->second.extended += k;
        extended_ += k;
        forget_if_settled(it);
        return k;
    }

    /// Everything `stream_id` still owes (its buffer was dropped, nobody will read): the amount to
    /// extend.
    std::uint64_t release(std::int64_t stream_id) {
        auto it = streams_.find(stream_id);
        if (it == streams_.end()) return 0;
        return extend(stream_id, it->second.delivered - it->second.extended, false);
    }

    /// QUIC closed the stream: no more bytes will be delivered. Its entry goes once nothing is owed.
    void closed(std::int64_t stream_id) {
        auto it = streams_.find(stream_id);
        if (it == streams_.end()) return;
        it->second.closed = true;
        forget_if_settled(it);
    }

    /// What `stream_id` owes: bytes delivered whose credit has not gone back.
    std::uint64_t owed(std::int64_t stream_id) const {
        auto it = streams_.find(stream_id);
        return it == streams_.end() ? 0 : it->second.delivered - it->second.extended;
    }

    /// The connection ended: whatever is owed is released with it (there is no window to return it to).
    void connection_ended() {
        if (ended_) return;
        ended_ = true;
        released_at_end_ = delivered_ - extended_;
        streams_.clear();
    }

    std::uint64_t delivered_total() const noexcept { return delivered_; }
    std::uint64_t extended_total() const noexcept { return extended_; }
    std::uint64_t released_at_end() const noexcept { return released_at_end_; }
    /// Bytes delivered and not yet extended: what the streams' buffers (and nghttp3) hold.
    std::uint64_t held() const noexcept { return delivered_ - extended_ - released_at_end_; }
    /// Calls `f(stream_id, owed)` for each closed stream that still owes: the bytes its handle
    /// holds unread, which no stream map of the session reaches any more (h3co::testing).
    template <class F>
    void for_each_closed_owing(F&& f) const {
        for (const auto& [id, e] : streams_)
            if (e.closed && e.delivered > e.extended) f(id, e.delivered - e.extended);
    }
    /// Streams with an entry: open ones, and closed ones whose buffered bytes are not yet read.
    std::size_t tracked_streams() const noexcept { return streams_.size(); }

private:
    struct stream_entry {
        std::uint64_t delivered = 0;
        std::uint64_t extended = 0;
        bool closed = false;
    };
    using map = std::unordered_map<std::int64_t, stream_entry>;

    void forget_if_settled(map::iterator it) {
        if (it->second.closed && it->second.delivered == it->second.extended) streams_.erase(it);
    }

    map streams_;
    std::uint64_t delivered_ = 0;
    std::uint64_t extended_ = 0;
    std::uint64_t released_at_end_ = 0;
    bool ended_ = false;
};

}  // namespace h3co::detail
