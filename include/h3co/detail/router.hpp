// Which handler serves a request path: an exact match, else the longest prefix ending in '/',
// else the fallback.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace h3co::detail {

template <class Handler>
class router {
public:
    explicit router(Handler fallback) : fallback_(std::move(fallback)) {}

    /// Serves `pattern`; a pattern ending in '/' also serves everything below it.
    void add(std::string pattern, Handler handler) { routes_[std::move(pattern)] = std::move(handler); }

    /// The handler for `full_path` (its query ignored).
    Handler find(std::string_view full_path) const {
        const std::string path(full_path.substr(0, full_path.find('?')));
        if (auto it = routes_.find(path); it != routes_.end()) return it->second;
        const Handler* best = nullptr;
        std::size_t best_len = 0;
        for (const auto& [pattern, handler] : routes_) {
            if (!pattern.empty() && pattern.back() == '/' && path.compare(0, pattern.size(), pattern) == 0 &&
                pattern.size() > best_len) {
                best = &handler;
                best_len = pattern.size();
            }
        }
        return best ? *best : fallback_;
    }

private:
    Handler fallback_;
    std::map<std::string, Handler> routes_;
};

}  // namespace h3co::detail
