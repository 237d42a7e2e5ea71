#!/usr/bin/env bash
# Reproduce docs/performance.md: build h3co_bench (build-bench/, RelWithDebInfo) and run
#   1. h3co_bench compare  h3co and gtls (ngtcp2's example peers) clients x servers, upload and
#                          download, --runs times with the pairs alternated; medians and ratios
#   2. h3co_bench all      h3co only: upload, download, 16 parallel streams, 1 KiB chunk latency,
#                          handshakes/s
# Extra arguments go to both (e.g. --bytes 256M --runs 5, --csv, --json; --link-rtt 50ms
# --link-rate 100mbit runs every pair through the link emulator, see bench/README.md).
# Installs what is missing first (scripts/bootstrap.sh, which also installs gtlsserver/gtlsclient).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/bootstrap.sh >&2

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DH3CO_BUILD_TESTS=OFF -DH3CO_BUILD_EXAMPLES=OFF -DH3CO_SANITIZE=OFF >&2
cmake --build build-bench -j2 --target h3co_bench >&2

bench=build-bench/bench/h3co_bench
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "# machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# h3co $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(dpkg-query -W -f='libngtcp2-dev ${Version}, ' libngtcp2-dev 2>/dev/null)$(dpkg-query -W -f='libnghttp3-dev ${Version}' libnghttp3-dev 2>/dev/null)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" compare "$@"
echo
"$bench" all "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
