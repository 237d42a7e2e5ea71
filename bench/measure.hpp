// What the bench measures and how children report it: a flat JSON record (one line per child on
// stdout, read back by the orchestrator), the process's own rusage, percentiles and medians, the
// clock that chunk latencies share across processes, an h3co connection's end-of-transfer numbers,
// and the body bytes every workload sends.
#pragma once

#include "process.hpp"

#include <h3co/h3co.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace bench {

// ---------------------------------------------------------------------------------------------
// A flat JSON object: what children print, and what the orchestrator reads back.

class json_record {
public:
    void set(const std::string& k, double v) { num_[k] = v; order(k); }
    void set(const std::string& k, const std::string& v) { str_[k] = v; order(k); }
    double num(const std::string& k, double def = NAN) const {
        auto it = num_.find(k);
        return it == num_.end() ? def : it->second;
    }
    std::string str(const std::string& k) const {
        auto it = str_.find(k);
        return it == str_.end() ? std::string{} : it->second;
    }
    bool has(const std::string& k) const { return num_.count(k) || str_.count(k); }
    const std::vector<std::string>& keys() const { return keys_; }
    /// The value of `k` as a CSV field.
    std::string field(const std::string& k) const {
        if (auto it = str_.find(k); it != str_.end()) return it->second;
        const double v = num(k);
        if (std::isnan(v)) return {};
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        return buf;
    }

    std::string dump() const {
        std::string out = "{";
        for (const auto& k : keys_) {
            if (out.size() > 1) out += ",";
            out += "\"" + k + "\":";
            if (auto it = num_.find(k); it != num_.end()) {
                char buf[64];
                if (std::isnan(it->second)) std::snprintf(buf, sizeof buf, "null");
                else std::snprintf(buf, sizeof buf, "%.17g", it->second);
                out += buf;
            } else {
                out += "\"" + escape(str_.at(k)) + "\"";
            }
        }
        return out + "}";
    }

    /// Parses what dump() writes (flat: strings, numbers, null, true/false).
    static json_record parse(const std::string& s) {
        json_record r;
        std::size_t i = s.find('{');
        if (i == std::string::npos) return r;
        ++i;
        auto skip = [&] { while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i; };
        auto string_at = [&]() {
            std::string out;
            ++i;  // opening quote
            while (i < s.size() && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < s.size()) ++i;
                out += s[i++];
            }
            ++i;
            return out;
        };
        for (;;) {
            skip();
            if (i >= s.size() || s[i] != '"') break;
            const std::string key = string_at();
            if (i >= s.size() || s[i] != ':') break;
            ++i;
            if (i < s.size() && s[i] == '"') {
                r.set(key, string_at());
            } else {
                const std::size_t end = s.find_first_of(",}", i);
                const std::string tok = s.substr(i, end - i);
                if (tok == "true") r.set(key, 1.0);
                else if (tok == "false") r.set(key, 0.0);
                else if (tok == "null") r.set(key, NAN);
                else r.set(key, std::strtod(tok.c_str(), nullptr));
                i = end;
            }
        }
        return r;
    }

private:
    static std::string escape(const std::string& s) {
        std::string out;
        for (char ch : s) {
            if (ch == '"' || ch == '\\') out += '\\';
            if (ch == '\n') { out += "\\n"; continue; }
            out += ch;
        }
        return out;
    }
    void order(const std::string& k) {
        if (std::find(keys_.begin(), keys_.end(), k) == keys_.end()) keys_.push_back(k);
    }
    std::map<std::string, double> num_;
    std::map<std::string, std::string> str_;
    std::vector<std::string> keys_;
};

inline void add_self_usage(json_record& r) {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    r.set("utime_s", tv_seconds(ru.ru_utime));
    r.set("stime_s", tv_seconds(ru.ru_stime));
    r.set("cpu_s", tv_seconds(ru.ru_utime) + tv_seconds(ru.ru_stime));
    r.set("maxrss_kib", static_cast<double>(ru.ru_maxrss));
}

inline double percentile(std::vector<double> v, double p) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    const auto idx = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) ;
    return v[std::min(v.size() - 1, idx == 0 ? 0 : idx - 1)];
}

inline double median(std::vector<double> v) {
    v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    const auto n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count());
}

/// The request header naming which of the client's connections a request came on, so that the
/// server counts each connection's received datagrams once (parallel streams share one).
inline constexpr const char* connection_tag_field = "x-bench-connection";

/// Body bytes: a fixed pattern (no compression anywhere in HTTP/3, so its content does not matter).
const std::vector<char>& payload(std::size_t size) {
    static std::vector<char> data;
    if (data.size() < size) {
        data.resize(size);
        for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + (i * 7919) % 26);
    }
    return data;
}

/// The connection's numbers at the end of a transfer, as JSON fields of a child's report: what
/// limited a run (RTT, congestion window, losses, how far the windows and send buffers grew).
inline void add_connection_stats(json_record& r, const h3co::connection_stats& s) {
    r.set("srtt_ms", static_cast<double>(s.smoothed_rtt.count()) / 1e6);
    r.set("min_rtt_ms", static_cast<double>(s.min_rtt.count()) / 1e6);
    r.set("cwnd", static_cast<double>(s.congestion_window));
    r.set("lost", static_cast<double>(s.packets_lost));
    r.set("packets_sent", static_cast<double>(s.packets_sent));
    r.set("stream_window", static_cast<double>(s.stream_receive_window));
    r.set("conn_window", static_cast<double>(s.connection_receive_window));
    r.set("send_buffer", static_cast<double>(s.stream_send_buffer));
    r.set("cc", h3co::to_string(s.algorithm));
}

}  // namespace bench
