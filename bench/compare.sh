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
source scripts/stack.sh                      # H3CO_STACK=1.x: ngtcp2 1.11 / nghttp3 1.8
h3co_stack_select "${H3CO_STACK:-0.12}"
build="build-bench$h3co_stack_suffix"

./scripts/bootstrap.sh --stack "$h3co_stack" >&2

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${h3co_stack_cmake_args[@]}" \
    -DH3CO_BUILD_TESTS=OFF -DH3CO_BUILD_EXAMPLES=OFF -DH3CO_SANITIZE=OFF >&2
cmake --build "$build" -j2 --target h3co_bench >&2

bench="$build/bench/h3co_bench"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "# machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# h3co $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(h3co_stack_versions)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" compare "$@"
echo
"$bench" all "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
