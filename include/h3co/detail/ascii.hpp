// ASCII case-insensitive comparison, for HTTP field names and values and host names: the locale
// plays no part, as RFC 9110 §5.1 and RFC 6761 want.
#pragma once

#include <string_view>

namespace h3co::detail {

inline constexpr char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

/// `a` and `b` are equal but for the case of ASCII letters.
inline constexpr bool ascii_iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

}  // namespace h3co::detail
