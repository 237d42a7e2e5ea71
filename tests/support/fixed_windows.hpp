// Receive windows that never grow, for tests of flow-control credit: what a peer may send is then
// exactly what was extended back, so a leak of credit stalls a connection within 1 MiB of bodies.
#pragma once

#include <h3co/options.hpp>

namespace test {

inline h3co::connection_options fixed_windows() {
    h3co::connection_options o;
    o.connection_receive_window = 1024 * 1024;
    o.max_connection_receive_window = o.connection_receive_window;
    o.stream_receive_window = 64 * 1024;
    o.max_stream_receive_window = o.stream_receive_window;
    return o;
}

}  // namespace test
