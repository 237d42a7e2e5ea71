// h3co::stack() (see h3co/versions.hpp).
#pragma once

#include <h3co/detail/h3/compat.hpp>
#include <h3co/detail/quic/compat.hpp>
#include <h3co/versions.hpp>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

namespace h3co {

H3CO_DECL stack_info stack() {
    stack_info out;
    if (const auto* v = ngtcp2_version(0)) out.ngtcp2_version = v->version_str;
    if (const auto* v = nghttp3_version(0)) out.nghttp3_version = v->version_str;
    out.h3_datagrams = detail::h3_compat::h3_datagrams_supported;
    out.pmtud_above_1452 = detail::compat::pmtud_probes_supported;
    out.extended_connect = true;
    return out;
}

}  // namespace h3co
