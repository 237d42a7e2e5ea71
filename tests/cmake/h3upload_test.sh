#!/usr/bin/env bash
# The "cli.h3upload" test: h3upload against examples' bodystream_server on 127.0.0.1.
#
#   h3upload_test.sh H3UPLOAD BODYSTREAM_SERVER CERT_DIR WORK_DIR
#
# 1. a 2 MiB generated file, PUT: exit 0, and the server printed exactly the file
# 2. the same from stdin (a pipe), POST: exit 0, the server printed it again
# 3. --cacert other-ca.pem: exit 4 (TLS)
# 4. a path the server does not serve (404): exit 5 (HTTP)
# 4b. a 2xx answer that stopped the upload part-way (STOP_SENDING): exit 5 (HTTP), with a message
# 5. a port with no server: exit 3 (connection)
# 6. no arguments: exit 2 (usage); a missing file: exit 6 (local I/O)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../support/wait_for_port.sh"

[[ $# -eq 4 ]] || { echo "usage: $0 H3UPLOAD BODYSTREAM_SERVER CERT_DIR WORK_DIR" >&2; exit 2; }
h3upload="$1"; server="$2"; certs="$3"; work="$4"

rm -rf "$work"; mkdir -p "$work"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [[ -f "$work/server.err" ]] && sed 's/^/server: /' "$work/server.err" >&2; exit 1; }

# expect CODE DESCRIPTION -- COMMAND...: runs COMMAND (30 s at most), checks its exit code.
expect() {
    local want="$1" what="$2"; shift 3
    local rc=0
    timeout 30 "$@" >"$work/out" 2>"$work/err" || rc=$?
    if [[ "$rc" -ne "$want" ]]; then
        sed 's/^/h3upload stdout: /' "$work/out" >&2
        sed 's/^/h3upload stderr: /' "$work/err" >&2
        fail "$what: exit $rc, expected $want"
    fi
    echo "ok: $what (exit $rc)"
}

# 2 MiB of random bytes.
size=$((2 * 1024 * 1024))
head -c "$size" /dev/urandom >"$work/body.bin"

"$server" --address 127.0.0.1 --port 0 --port-file "$work/port" \
    --cert "$certs/server-chain.pem" --key "$certs/server.key" \
    >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port="$(wait_for_port "$server_pid" "$work/port")" || fail "bodystream_server did not start"
url="https://127.0.0.1:$port/stream"

# 1. file upload
expect 0 "upload a 2 MiB file" -- "$h3upload" --cacert "$certs/ca.pem" "$work/body.bin" "$url"
grep -qx "HTTP/3 200" "$work/out" || fail "no 'HTTP/3 200' on stdout"
got="$(stat -c %s "$work/server.out")"
[[ "$got" -eq "$size" ]] || fail "server received $got bytes, expected $size"
cmp -s "$work/server.out" "$work/body.bin" || fail "server received different bytes"
echo "ok: server received $got bytes, identical"

# 2. stdin through a pipe (size unknown), POST, with an extra header
cat "$work/body.bin" | expect 0 "upload stdin through a pipe" -- \
    "$h3upload" -X POST -H 'X-Upload: h3upload test' --cacert "$certs/ca.pem" - "$url"
got="$(stat -c %s "$work/server.out")"
[[ "$got" -eq $((2 * size)) ]] || fail "after the stdin upload the server has $got bytes, expected $((2 * size))"
cmp -s <(tail -c "$size" "$work/server.out") "$work/body.bin" || fail "stdin upload: different bytes"
echo "ok: server received the stdin upload, identical"

# 3. wrong CA
expect 4 "--cacert other-ca.pem is a TLS failure" -- \
    "$h3upload" --cacert "$certs/other-ca.pem" "$work/body.bin" "$url"
grep -q "h3co.tls" "$work/err" || fail "no h3co.tls error on stderr"

# 4. HTTP error
expect 5 "404 is an HTTP failure" -- "$h3upload" --cacert "$certs/ca.pem" "$work/body.bin" "https://127.0.0.1:$port/nothing-here"
grep -qx "HTTP/3 404" "$work/out" || fail "no 'HTTP/3 404' on stdout"

# 4b. POST /log takes 4 KiB of a body and returns without a status: h3co answers 200 and stops the
# rest with STOP_SENDING (H3_NO_ERROR). The server's answer is complete, the upload is not.
expect 5 "a 2xx answer that stopped the upload part-way is an HTTP failure" -- \
    "$h3upload" -X POST --cacert "$certs/ca.pem" "$work/body.bin" "https://127.0.0.1:$port/log"
grep -qx "HTTP/3 200" "$work/out" || fail "no 'HTTP/3 200' on stdout"
grep -q "stopped the upload after" "$work/err" || fail "no word on stderr that the upload was stopped"

# 5. no server: a port that was free a moment ago
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
expect 3 "a port with no server is a connection failure" -- \
    "$h3upload" --cacert "$certs/ca.pem" --connect-timeout 5 "$work/body.bin" "$url"

# 6. usage and local I/O
expect 2 "no arguments is a usage error" -- "$h3upload"
expect 6 "a missing file is a local I/O error" -- "$h3upload" --cacert "$certs/ca.pem" "$work/no-such-file" "$url"

echo "h3upload: all checks passed"
