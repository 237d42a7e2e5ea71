#!/usr/bin/env bash
# The "cli.fileserver" test: h3upload and h3get against examples' fileserver on 127.0.0.1.
#
#   fileserver_test.sh H3GET H3UPLOAD FILESERVER CERT_DIR WORK_DIR SANITIZED
#
# SANITIZED=1 (an ASan build): RSS means nothing there, so the memory bounds are not asserted and
# the big download is 64 MiB instead of 1 GiB.
#
# 1. 0 B, 1 B and 100 MB random files: h3upload PUTs each (201), the stored file and what h3get
#    brings back (-o FILE and stdout) have the source's sha256; no temporary file is left anywhere
# 2. h3get -I: the status line, content-length and content-type of a HEAD
# 3. each path traversal is refused (400 or 403, exit 5) and never returns the secret; the server
#    still serves after each; an upload to an escaping path is refused and creates nothing
# 4. exit codes: 404 -> 5 (and no -o file), wrong CA -> 4, usage -> 2, unwritable -o -> 6
# 5. a 1 GiB sparse file: h3get's bytes have the right sha256, its peak RSS (/usr/bin/time -f %M)
#    stays within 32 MiB of a 1-byte download's (the receive windows' maxima, and slack), and the
#    server's peak RSS (VmHWM) under 32 MiB
# 6. a server that does not answer (stopped with SIGSTOP): --connect-timeout 1 exits with 3 within
#    5 s; no server at all: exit 3
# 7. fileserver --workers 2: 16 clients at once upload and download 2 MB each, byte-exact; SIGTERM
#    stops it
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../support/wait_for_port.sh"

[[ $# -eq 6 ]] || { echo "usage: $0 H3GET H3UPLOAD FILESERVER CERT_DIR WORK_DIR SANITIZED" >&2; exit 2; }
h3get="$1"; h3upload="$2"; server="$3"; certs="$4"; work="$5"; sanitized="$6"

[[ -x /usr/bin/time ]] || { echo "FAIL: /usr/bin/time is missing (Debian package 'time'; scripts/bootstrap.sh --test-tools)" >&2; exit 1; }

rm -rf "$work"; mkdir -p "$work/root/sub" "$work/outside"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill -CONT "$server_pid" 2>/dev/null || true
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [[ -f "$work/server.err" ]] && sed 's/^/server: /' "$work/server.err" | tail -n 40 >&2; exit 1; }

# expect CODE DESCRIPTION -- COMMAND...: runs COMMAND (60 s at most) with stdout in $work/out and
# stderr in $work/err, and checks its exit code.
expect() {
    local want="$1" what="$2"; shift 3
    local rc=0
    timeout 60 "$@" >"$work/out" 2>"$work/err" || rc=$?
    if [[ "$rc" -ne "$want" ]]; then
        head -c 2000 "$work/out" | sed 's/^/stdout: /' >&2
        sed 's/^/stderr: /' "$work/err" >&2
        fail "$what: exit $rc, expected $want"
    fi
    echo "ok: $what (exit $rc)"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
no_temporaries() {
    local left
    left="$(find "$work" -name '.*.upload-*' -o -name '*.h3get-*')"
    [[ -z "$left" ]] || fail "temporary files left behind: $left"
}

ca=(--cacert "$certs/ca.pem")
"$server" --address 127.0.0.1 --port 0 --port-file "$work/port" --root "$work/root" \
    --cert "$certs/server-chain.pem" --key "$certs/server.key" 2>"$work/server.err" &
server_pid=$!
port="$(wait_for_port "$server_pid" "$work/port")" || fail "fileserver did not start"
url="https://127.0.0.1:$port"

# 1. round trips, byte-exact
for size in 0 1 100000000; do
    src="$work/src-$size.bin"
    head -c "$size" /dev/urandom >"$src"
    expect 0 "upload $size B" -- "$h3upload" "${ca[@]}" "$src" "$url/file-$size.bin"
    grep -qx "HTTP/3 201" "$work/out" || fail "upload $size B: no 'HTTP/3 201'"
    [[ "$(sha "$work/root/file-$size.bin")" == "$(sha "$src")" ]] || fail "upload $size B: the stored file differs"
    expect 0 "download $size B with -o" -- "$h3get" "${ca[@]}" -o "$work/got-$size.bin" "$url/file-$size.bin"
    [[ "$(sha "$work/got-$size.bin")" == "$(sha "$src")" ]] || fail "download $size B (-o): different bytes"
    expect 0 "download $size B to stdout" -- "$h3get" "${ca[@]}" "$url/file-$size.bin"
    [[ "$(sha "$work/out")" == "$(sha "$src")" ]] || fail "download $size B (stdout): different bytes"
    echo "ok: $size B: sha256 identical after upload, -o and stdout"
    rm -f "$work/got-$size.bin"
done
expect 0 "upload again over the same name (replaces it)" -- "$h3upload" "${ca[@]}" "$work/src-1.bin" "$url/file-0.bin"
grep -qx "HTTP/3 200" "$work/out" || fail "replacing upload: no 'HTTP/3 200'"
cmp -s "$work/root/file-0.bin" "$work/src-1.bin" || fail "replacing upload: the file was not replaced"
no_temporaries

# 2. HEAD
printf 'hello\n' >"$work/root/hello.txt"
expect 0 "h3get -I" -- "$h3get" "${ca[@]}" -I "$url/hello.txt"
grep -qx "HTTP/3 200" "$work/out" || fail "-I: no 'HTTP/3 200'"
grep -qx "content-length: 6" "$work/out" || fail "-I: no 'content-length: 6'"
grep -qx "content-type: text/plain; charset=utf-8" "$work/out" || fail "-I: wrong content-type"
expect 0 "h3get -I -o FILE" -- "$h3get" "${ca[@]}" -I -o "$work/head.txt" "$url/file-1.bin"
grep -qx "content-type: application/octet-stream" "$work/head.txt" || fail "-I -o: wrong content-type"

# 3. path traversal
secret="the secret outside the root"
printf '%s\n' "$secret" >"$work/secret.txt"
printf '%s\n' "$secret" >"$work/outside/secret.txt"
ln -s ../secret.txt "$work/root/out-rel"             # relative, leads out
ln -s "$work/secret.txt" "$work/root/out-abs"        # absolute, leads out
ln -s ../outside "$work/root/out-dir"                # a directory outside
ln -s hello.txt "$work/root/in-rel"                  # relative, stays inside: served
traversals=(
    "/../secret.txt 400"
    "/%2e%2e/secret.txt 400"
    "/%2E%2E/secret.txt 400"
    "/..%2fsecret.txt 400"
    "/sub/..%2F..%2Fsecret.txt 400"
    "/sub/../../secret.txt 400"
    "//etc/passwd 400"
    "/%2fetc/passwd 400"
    "/%00 400"
    "/out-rel 403"
    "/out-abs 403"
    "/out-dir/secret.txt 403"
)
for entry in "${traversals[@]}"; do
    path="${entry% *}"; status="${entry##* }"
    expect 5 "GET $path is refused" -- "$h3get" "${ca[@]}" "$url$path"
    grep -q "the server answered $status" "$work/err" || fail "GET $path: not answered with $status"
    ! grep -q "$secret" "$work/out" "$work/err" || fail "GET $path: the secret came back"
    kill -0 "$server_pid" 2>/dev/null || fail "the server died after GET $path"
    expect 0 "  ... and the server still serves" -- "$h3get" "${ca[@]}" "$url/hello.txt"
    grep -qx hello "$work/out" || fail "the server does not serve hello.txt after GET $path"
done
expect 0 "a symlink that stays inside the root is followed" -- "$h3get" "${ca[@]}" "$url/in-rel"
grep -qx hello "$work/out" || fail "in-rel: wrong content"
for entry in "/../evil.txt 400" "/%2e%2e/evil.txt 400" "/out-dir/evil.txt 403"; do
    path="${entry% *}"; status="${entry##* }"
    expect 5 "PUT $path is refused" -- "$h3upload" "${ca[@]}" "$work/src-1.bin" "$url$path"
    grep -qx "HTTP/3 $status" "$work/out" || fail "PUT $path: not answered with $status"
done
[[ -z "$(find "$work" -name 'evil.txt')" ]] || fail "an escaping upload created a file"
echo "ok: no escaping upload created a file"

# 4. exit codes
expect 5 "404 is an HTTP failure" -- "$h3get" "${ca[@]}" -o "$work/missing.bin" "$url/no-such-file"
grep -q "the server answered 404" "$work/err" || fail "404: not said on stderr"
[[ ! -e "$work/missing.bin" ]] || fail "404: -o created the file"
expect 4 "--cacert other-ca.pem is a TLS failure" -- "$h3get" --cacert "$certs/other-ca.pem" "$url/hello.txt"
grep -q "h3co.tls" "$work/err" || fail "no h3co.tls error on stderr"
expect 2 "no URL is a usage error" -- "$h3get"
expect 2 "an http:// URL is a usage error" -- "$h3get" "http://127.0.0.1:$port/hello.txt"
expect 6 "-o into a missing directory is a local I/O error" -- "$h3get" "${ca[@]}" -o "$work/no-dir/x" "$url/hello.txt"
no_temporaries

# 5. a 1 GiB download: streamed, so h3get's memory stays flat
if [[ "$sanitized" == 1 ]]; then big=$((64 * 1024 * 1024)); else big=$((1024 * 1024 * 1024)); fi
truncate -s "$big" "$work/root/sparse.bin"
want_sum="$(head -c "$big" /dev/zero | sha256sum | cut -d' ' -f1)"
got_sum="$(timeout 120 /usr/bin/time -f %M -o "$work/rss-big" "$h3get" "${ca[@]}" -q "$url/sparse.bin" | sha256sum | cut -d' ' -f1)" ||
    fail "the big download failed"
[[ "$got_sum" == "$want_sum" ]] || fail "the big download has different bytes"
timeout 60 /usr/bin/time -f %M -o "$work/rss-small" "$h3get" "${ca[@]}" "$url/file-1.bin" >/dev/null || fail "the small download failed"
rss_big="$(tail -n 1 "$work/rss-big")"; rss_small="$(tail -n 1 "$work/rss-small")"
server_rss="$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")"
echo "ok: $((big >> 20)) MiB downloaded, sha256 identical; peak RSS: h3get $rss_big KiB (1 B download: $rss_small KiB), server $server_rss KiB"
if [[ "$sanitized" != 1 ]]; then
    # What h3get may hold is its receive window, which grows with a fast reader up to
    # connection_options::max_connection_receive_window (24 MiB; a stream's up to 16 MiB), plus
    # 8 MiB of slack for the allocator; anything near the body's size would mean it is buffered.
    ((rss_big - rss_small < 32768)) || fail "h3get's peak RSS grew by $((rss_big - rss_small)) KiB for a 1 GiB download"
    ((server_rss < 32768)) || fail "the server's peak RSS is $server_rss KiB"
    echo "ok: h3get grew by $((rss_big - rss_small)) KiB (< 32 MiB), the server stayed under 32 MiB"
fi

# 6. unreachable servers
kill -STOP "$server_pid"
start=$(date +%s%N)
expect 3 "a server that does not answer: --connect-timeout 1" -- "$h3get" "${ca[@]}" --connect-timeout 1 "$url/hello.txt"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
((elapsed_ms < 5000)) || fail "--connect-timeout 1 took $elapsed_ms ms"
echo "ok: gave up after $elapsed_ms ms"
kill -CONT "$server_pid"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
expect 3 "a port with no server is a connection failure" -- "$h3get" "${ca[@]}" --connect-timeout 5 "$url/hello.txt"

# 7. --workers 2: 16 clients at once, each uploading and downloading 2 MB, byte-exact; then
#    SIGTERM stops every worker
"$server" --address 127.0.0.1 --port 0 --port-file "$work/port2" --root "$work/root" --workers 2 \
    --cert "$certs/server-chain.pem" --key "$certs/server.key" 2>"$work/server.err" &
server_pid=$!
port="$(wait_for_port "$server_pid" "$work/port2")" || fail "fileserver --workers 2 did not start"
url="https://127.0.0.1:$port"
pids=()
for i in $(seq 1 16); do
    head -c 2000000 /dev/urandom >"$work/src-w$i.bin"
    ( timeout 60 "$h3upload" "${ca[@]}" "$work/src-w$i.bin" "$url/w$i.bin" >/dev/null 2>"$work/err-w$i" &&
      timeout 60 "$h3get" "${ca[@]}" -q -o "$work/got-w$i.bin" "$url/w$i.bin" 2>>"$work/err-w$i" ) &
    pids+=($!)
done
for i in $(seq 1 16); do
    wait "${pids[$((i - 1))]}" || { cat "$work/err-w$i" >&2; fail "--workers 2: client $i failed"; }
    cmp -s "$work/src-w$i.bin" "$work/got-w$i.bin" || fail "--workers 2: client $i got different bytes"
done
echo "ok: --workers 2: 16 clients at once, 2 MB up and down each, byte-exact"
kill "$server_pid"
for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$server_pid" 2>/dev/null && fail "--workers 2: the server did not stop on SIGTERM within 10 s"
wait "$server_pid" 2>/dev/null || true; server_pid=""
echo "ok: --workers 2: SIGTERM stopped every worker"

rm -f "$work"/src-*.bin "$work"/got-w*.bin "$work"/root/*.bin "$work/out"  # the big files; the logs stay
echo "fileserver + h3get: all checks passed"
