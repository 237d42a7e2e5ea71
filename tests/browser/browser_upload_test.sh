#!/usr/bin/env bash
# The "browser.chromium_streaming_upload" test: headless Chromium loads the bodystream example's
# page over HTTP/3 and streams an upload with fetch() (a ReadableStream body, duplex: 'half').
#
#   browser_upload_test.sh BODYSTREAM_SERVER CERT_DIR WORK_DIR
#
# The server (examples/bodystream/server.cpp, --log-arrivals on) prints the body on stdout and,
# on stderr, when each part arrived (ms since the request headers) and the page's progress
# lines (POST /log). Checks, all from what the server saw:
#   1. the page reports it was loaded over h3, and the upload was sent over h3 with status 200
#   2. the body is exactly "chunk 0\n" .. "chunk 7\n", in order
#   3. it arrived while it was produced: the page waits 300 ms between chunks, so the first and
#      the last part arrived at least 7 * 300 / 2 ms apart, in at least 4 separate reads
#   4. the server exits with 0 on SIGTERM (under ASan: no error, no leak)
# Exit 77 (skipped) when Chromium is not installed (scripts/bootstrap.sh --test-tools installs it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../support/wait_for_port.sh"

[[ $# -eq 3 ]] || { echo "usage: $0 BODYSTREAM_SERVER CERT_DIR WORK_DIR" >&2; exit 2; }
server="$1"; certs="$2"; work="$3"

chunks=8 delay_ms=300   # as in the page's script

chromium=""
for c in chromium chromium-browser; do
    if command -v "$c" >/dev/null; then chromium="$(command -v "$c")"; break; fi
done
if [[ -z "$chromium" ]]; then
    echo "SKIP: Chromium is not installed (Debian package 'chromium'; scripts/bootstrap.sh --test-tools installs it)"
    exit 77
fi
command -v openssl >/dev/null || { echo "FAIL: the openssl command is needed for the certificate's SPKI hash" >&2; exit 1; }
for f in server.pem server.key; do
    [[ -f "$certs/$f" ]] || { echo "FAIL: $certs/$f is missing (build the h3co_test_certs target)" >&2; exit 1; }
done

rm -rf "$work"; mkdir -p "$work"
profile="$(mktemp -d "$work/profile.XXXXXX")"   # a fresh Chromium profile for every run
server_pid="" chromium_pid=""
cleanup() {
    # Chromium was started with setsid: its process group id is its pid, and holds only
    # the processes of this run (never a name-based kill: other Chromiums are not ours).
    if [[ -n "$chromium_pid" ]]; then
        kill -TERM -- "-$chromium_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 -- "-$chromium_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$chromium_pid" 2>/dev/null || true
        wait "$chromium_pid" 2>/dev/null || true
    fi
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$profile"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $*" >&2
    [[ -f "$work/server.err" ]] && sed 's/^/server stderr: /' "$work/server.err" >&2
    [[ -f "$work/server.out" ]] && sed 's/^/server stdout: /' "$work/server.out" >&2
    [[ -f "$work/chromium.log" ]] && tail -n 40 "$work/chromium.log" | sed 's/^/chromium: /' >&2
    exit 1
}

"$server" --port 0 --port-file "$work/port" --cert "$certs/server.pem" --key "$certs/server.key" \
    --log-arrivals on >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port="$(wait_for_port "$server_pid" "$work/port")" || fail "bodystream_server did not start"

# Chromium accepts the test certificate by the SHA-256 hash of its public key (SPKI).
spki="$(openssl x509 -in "$certs/server.pem" -pubkey -noout | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64)"

url="https://localhost:$port/"
echo "server on UDP port $port (:: serves ::1 and 127.0.0.1); $(
    "$chromium" --version 2>/dev/null || echo chromium) loads $url"
setsid "$chromium" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --enable-quic --origin-to-force-quic-on="localhost:$port" \
    --ignore-certificate-errors-spki-list="$spki" "$url" >"$work/chromium.log" 2>&1 &
chromium_pid=$!

# Wait (60 s at most) for the page's last progress line.
started=$SECONDS
while ! grep -qE '^page: upload (done|failed)' "$work/server.err"; do
    ((SECONDS - started < 60)) || fail "no 'upload done' from the page within 60 s"
    kill -0 "$server_pid" 2>/dev/null || fail "bodystream_server exited"
    kill -0 "$chromium_pid" 2>/dev/null || fail "chromium exited before the upload finished"
    sleep 0.2
done
echo "page finished after $((SECONDS - started)) s; server stderr:"
sed 's/^/  /' "$work/server.err"

# 1. HTTP/3, as the page saw it (the server speaks nothing else, but the browser tells us too).
grep -qx 'page: page loaded over h3' "$work/server.err" || fail "the page was not loaded over h3"
grep -qE "^page: upload done: status 200, protocol h3, $chunks chunks in [0-9]+ ms\$" "$work/server.err" ||
    fail "the page did not report an upload over h3 with status 200"

# 2. The body, exactly.
for ((i = 0; i < chunks; i++)); do echo "chunk $i"; done >"$work/expected.out"
cmp -s "$work/server.out" "$work/expected.out" || fail "the server received a different body"
echo "ok: the body is chunk 0 .. chunk $((chunks - 1)), in order"

# 3. Spread over time, as measured by the server ("stream ID +MS ms: N bytes").
mapfile -t arrivals < <(sed -nE 's/^stream [0-9]+ \+([0-9]+) ms: [0-9]+ bytes$/\1/p' "$work/server.err")
((${#arrivals[@]} >= chunks / 2)) || fail "the body arrived in ${#arrivals[@]} reads, expected at least $((chunks / 2))"
spread=$((arrivals[-1] - arrivals[0]))
min_spread=$(((chunks - 1) * delay_ms / 2))
((spread >= min_spread)) || fail "the body arrived within $spread ms; a streamed body takes at least $min_spread ms"
echo "ok: the body arrived in ${#arrivals[@]} reads over $spread ms (at least $min_spread ms expected)"

# 4. The server stops cleanly on SIGTERM (exit 0: under ASan, no error or leak on the way out).
kill -TERM "$server_pid"
for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$server_pid" 2>/dev/null && fail "bodystream_server did not exit within 10 s of SIGTERM"
rc=0; wait "$server_pid" || rc=$?
server_pid=""
((rc == 0)) || fail "bodystream_server exited with $rc after SIGTERM"
echo "ok: the server exited cleanly"
echo "browser streaming upload over HTTP/3: all checks passed"
