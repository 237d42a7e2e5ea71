#!/usr/bin/env bash
# Run h3co's two request-body streaming demos over HTTP/3 on localhost:
#   bodystream     the request body is fed through a pipe while it is sent
#   requeststream  the client drives the request stream directly (takeover)
# Each server prints the body bytes it receives as they arrive; each client
# prints the response status. Ports are chosen by the OS (--port 0).
# Installs whatever is missing first (scripts/bootstrap.sh).
# H3CO_STACK=1.x builds against ngtcp2 1.11 / nghttp3 1.8 (in build-demo-1.x/) instead of
# Debian 12's ngtcp2 0.12 / nghttp3 0.8 (scripts/stack.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
source scripts/stack.sh
h3co_stack_select "${H3CO_STACK:-0.12}"

./scripts/bootstrap.sh --stack "$h3co_stack"

build="$root/build-demo$h3co_stack_suffix"
echo "== building the examples in ${build##*/}/ ($(h3co_stack_versions)) =="
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${h3co_stack_cmake_args[@]}" \
    -DH3CO_BUILD_EXAMPLES=ON -DH3CO_BUILD_TESTS=OFF -DH3CO_BUILD_BENCH=OFF
cmake --build "$build" -j2

certs="$build/certs"
./cmake/make-certs.sh "$certs"

tmp="$(mktemp -d)"
server_pids=()
cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_demo NAME TITLE
run_demo() {
    local name="$1" title="$2"
    local server="$build/examples/${name}_server" client="$build/examples/${name}_client"
    local port_file="$tmp/$name.port" port="" pid i
    for exe in "$server" "$client"; do
        [[ -x "$exe" ]] || { echo "demo: $exe was not built (is its source there?)" >&2; return 1; }
    done

    echo
    echo "== $name: $title =="
    : > "$port_file"
    # stdbuf: line-buffer the server's stdout so each chunk shows up as it arrives.
    stdbuf -oL -eL "$server" --port 0 --port-file "$port_file" \
        --cert "$certs/server.pem" --key "$certs/server.key" \
        > >(sed -u 's/^/  [server] /') 2>&1 &
    pid=$!
    server_pids+=("$pid")

    for ((i = 0; i < 100; i++)); do       # up to ~10 s
        [[ -s "$port_file" ]] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "demo: $name server exited before writing its port" >&2; return 1
        fi
        sleep 0.1
    done
    port="$(tr -dc '0-9' < "$port_file")"
    [[ -n "$port" ]] || { echo "demo: $name server did not write its port within 10 s" >&2; return 1; }
    echo "  ($name server listening on UDP port $port)"

    local rc=0
    stdbuf -oL -eL "$client" --url "https://localhost:$port/stream" --ca "$certs/ca.pem" 2>&1 \
        | sed -u 's/^/  [client] /' || rc=$?

    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${server_pids[@]}"; do [[ "$p" == "$pid" ]] || keep+=("$p"); done
    server_pids=("${keep[@]}")
    sleep 0.1   # let the server's last output drain before the next header
    if ((rc != 0)); then
        echo "demo: $name client failed (exit $rc)" >&2
        return 1
    fi
}

run_demo bodystream "pipe-fed request body"
run_demo requeststream "direct request-stream control (takeover)"

echo
echo "== demo: both demos finished OK =="
