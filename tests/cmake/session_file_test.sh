#!/usr/bin/env bash
# The "cli.session_file" test: h3get and h3upload --session-file against examples' fileserver
# with 0-RTT on (--early-data all), on 127.0.0.1.
#
#   session_file_test.sh H3GET H3UPLOAD FILESERVER CERT_DIR WORK_DIR
#
# 1. a first h3get with --session-file makes a full handshake and writes FILE (mode 0600)
# 2. a repeat h3get sends its GET in 0-RTT ("0-RTT accepted") and gets the same bytes
# 3. h3upload with the same FILE but without --early-data resumes without 0-RTT
# 4. h3upload --early-data sends its PUT in 0-RTT; the stored file has the source's sha256
# 5. --early-data without --session-file is a usage error (2); a damaged FILE is ignored (exit 0)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../support/wait_for_port.sh"

[[ $# -eq 5 ]] || { echo "usage: $0 H3GET H3UPLOAD FILESERVER CERT_DIR WORK_DIR" >&2; exit 2; }
h3get="$1"; h3upload="$2"; server="$3"; certs="$4"; work="$5"

rm -rf "$work"; mkdir -p "$work/root"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [[ -f "$work/server.err" ]] && sed 's/^/server: /' "$work/server.err" | tail -n 40 >&2; exit 1; }

expect() {
    local want="$1" what="$2"; shift 3
    local rc=0
    timeout 60 "$@" >"$work/out" 2>"$work/err" || rc=$?
    if [[ "$rc" -ne "$want" ]]; then
        sed 's/^/stderr: /' "$work/err" >&2
        fail "$what: exit $rc, expected $want"
    fi
    echo "ok: $what (exit $rc)"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

ca=(--cacert "$certs/ca.pem")
session="$work/session.bin"
"$server" --address 127.0.0.1 --port 0 --port-file "$work/port" --root "$work/root" --early-data all \
    --cert "$certs/server-chain.pem" --key "$certs/server.key" 2>"$work/server.err" &
server_pid=$!
port="$(wait_for_port "$server_pid" "$work/port")" || fail "fileserver did not start"
url="https://127.0.0.1:$port"
head -c 100000 /dev/urandom >"$work/root/page.bin"

# 1. full handshake; the tickets land in the session file
expect 0 "first h3get" -- "$h3get" "${ca[@]}" --session-file "$session" -o "$work/got1.bin" "$url/page.bin"
[[ -s "$session" ]] || fail "no session file after the first h3get"
[[ "$(stat -c %a "$session")" == "600" ]] || fail "session file mode is $(stat -c %a "$session"), not 600"
grep -q "0-RTT" "$work/err" && fail "the first h3get claims 0-RTT: $(cat "$work/err")"

# 2. the repeat GET goes in 0-RTT
expect 0 "repeat h3get" -- "$h3get" "${ca[@]}" --session-file "$session" -o "$work/got2.bin" "$url/page.bin"
grep -q "h3get: 0-RTT accepted" "$work/err" || fail "the repeat h3get did not use 0-RTT: $(cat "$work/err")"
[[ "$(sha "$work/got2.bin")" == "$(sha "$work/root/page.bin")" ]] || fail "the 0-RTT download differs"

# 3. h3upload without --early-data: no 0-RTT
head -c 300000 /dev/urandom >"$work/src.bin"
expect 0 "h3upload without --early-data" -- "$h3upload" "${ca[@]}" --session-file "$session" "$work/src.bin" "$url/up1.bin"
grep -q "0-RTT" "$work/err" && fail "h3upload used 0-RTT without --early-data: $(cat "$work/err")"

# 4. h3upload --early-data: the PUT goes in 0-RTT
expect 0 "h3upload --early-data" -- "$h3upload" "${ca[@]}" --session-file "$session" --early-data "$work/src.bin" "$url/up2.bin"
grep -q "h3upload: 0-RTT accepted" "$work/err" || fail "h3upload --early-data did not use 0-RTT: $(cat "$work/err")"
grep -qx "HTTP/3 201" "$work/out" || fail "h3upload --early-data: no 'HTTP/3 201'"
[[ "$(sha "$work/root/up2.bin")" == "$(sha "$work/src.bin")" ]] || fail "the 0-RTT upload was stored differently"

# 5. usage and a damaged file
expect 2 "--early-data without --session-file" -- "$h3upload" "${ca[@]}" --early-data "$work/src.bin" "$url/up3.bin"
echo "not a session cache" >"$work/damaged.bin"
expect 0 "h3get with a damaged session file" -- "$h3get" "${ca[@]}" --session-file "$work/damaged.bin" -o "$work/got3.bin" "$url/page.bin"
grep -q "ignoring" "$work/err" || fail "a damaged session file was not reported: $(cat "$work/err")"
echo "PASS"
