# Sourced by the shell tests that start an example server with --port 0 --port-file FILE.
#
#   port="$(wait_for_port PID FILE)" || fail "..."
#
# Waits up to 10 s for the server (PID) to write its port into FILE and prints it; returns 1,
# with the reason on stderr, if the server exits first or writes nothing in time.
wait_for_port() {
    local pid="$1" file="$2" i
    for ((i = 0; i < 100; i++)); do
        if [[ -s "$file" ]]; then
            tr -dc '0-9' <"$file"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "the server (pid $pid) exited at start" >&2; return 1; }
        sleep 0.1
    done
    echo "the server (pid $pid) wrote no port file within 10 s" >&2
    return 1
}
