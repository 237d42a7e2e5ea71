#!/usr/bin/env bash
# Prints the quic-interop-runner matrix of h3co against ngtcp2's example peers as a Markdown
# table: case x role, each cell "pass", "FAIL" or why it is not run. It runs the Catch2 cases
# tagged [interop-matrix] or [im-<case>][im-as-client|im-as-server] (tests/test_interop_matrix.cpp
# and the interop files it names), one cell at a time. docs/interop.md shows its output.
#   usage: tests/cmake/interop_matrix.sh BUILD_DIR/tests/h3co_tests
# Exit status 1 when a cell that runs fails.
set -u
tests=${1:?usage: interop_matrix.sh path/to/h3co_tests}

cases="handshake transfer retry resumption zerortt http3 multiplexing rebind-port rebind-addr
connectionmigration keyupdate chacha20 v2 ecn amplificationlimit handshakeloss transferloss
handshakecorruption transfercorruption blackhole longrtt"

# Why a cell has no test: "case role" -> reason.
declare -A not_run=(
  ["v2 client"]="peer lacks it: gtls 0.12 speaks only v2draft (h3co to h3co on ngtcp2 1.x: test_quic_versions.cpp)"
  ["v2 server"]="peer lacks it: gtls 0.12 speaks only v2draft (h3co to h3co on ngtcp2 1.x: test_quic_versions.cpp)"
)

cell() {  # case role(client|server)
  local names
  names=$("$tests" --list-test-names-only "[im-$1][im-as-$2]" 2>/dev/null | grep -v '^$')
  if [ -z "$names" ]; then
    echo "${not_run["$1 $2"]:-no test yet}"
    return
  fi
  if "$tests" "[im-$1][im-as-$2]" >/dev/null 2>&1; then
    echo "pass"
  else
    echo "FAIL"
  fi
}

table="| case | h3co client with gtlsserver | gtlsclient with h3co server |
|---|---|---|"
for c in $cases; do
  table+=$'\n'"| $c | $(cell "$c" client) | $(cell "$c" server) |"
done
echo "$table"
! grep -q '| FAIL' <<<"$table"
