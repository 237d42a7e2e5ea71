#!/usr/bin/env bash
# h3co and gtls (ngtcp2's example peers) side by side through the emulated link, over a matrix of
#   RTT (0 10 50 200 ms) x rate (100mbit 1gbit) x loss (0 0.1% 1%) x direction (upload download)
# and one markdown table at the end: h3co->h3co and gtls->gtls MB/s, their ratio, each as % of the
# link's rate, peak RSS per side, and the datagrams lost in the data direction: dropped by the
# emulator's queue, lost at random, and dropped by the receiving peer's own socket (its buffer was
# full: not the link's doing). Each row is one `h3co_bench compare --pairs h3co-h3co,gtls-gtls` run.
#
# Bytes per row, so that a row takes seconds, not minutes: --seconds (4) times the rate the link
# allows (the rate, or with loss the Mathis et al. bound 1200 B / RTT x 1.22 / sqrt(loss), RTT at
# least 1 ms), between 1 MiB and --max-bytes (256M). E.g. 100 Mbit/s, no loss: 48 MiB.
#
#   bench/link_matrix.sh                                  the whole matrix (48 rows, ~2 x 48 runs)
#   bench/link_matrix.sh --rtts "50" --rates 100mbit --losses "0 1%"    a few rows
#   bench/link_matrix.sh --dry-run                        the rows and their sizes, nothing run
#   bench/link_matrix.sh --runs 3 -- --link-queue 0.5bdp  extra flags after -- go to h3co_bench
#
# Builds like bench/compare.sh: installs what is missing (scripts/bootstrap.sh), builds build-bench/
# (H3CO_STACK=1.x: build-bench-1.x/, on ngtcp2 1.11 / nghttp3 1.8).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

rtts="0 10 50 200"
rates="100mbit 1gbit"
losses="0 0.1% 1%"
directions="upload download"
runs=1
seconds=4
max_bytes=$((256 * 1024 * 1024))
dry_run=0
extra=()
while (($#)); do
    case "$1" in
        --rtts) rtts="$2"; shift 2 ;;
        --rates) rates="$2"; shift 2 ;;
        --losses) losses="$2"; shift 2 ;;
        --directions) directions="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --max-bytes) max_bytes="$(numfmt --from=iec "$2")"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n "2,18p" "$0"; exit 0 ;;
        *) echo "link_matrix.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
    esac
done

# rate_bps RATE: 100mbit -> 100000000 (the units h3co_bench takes)
rate_bps() {
    awk -v r="$1" 'BEGIN {
        r = tolower(r); n = r + 0; u = r; sub(/^[0-9.]+/, "", u)
        m = (u == "gbit") ? 1e9 : (u == "mbit") ? 1e6 : (u == "kbit") ? 1e3 : (u == "bit") ? 1 : -1
        if (m < 0) exit 1
        printf "%.0f", n * m }'
}
# loss_fraction LOSS: 1% -> 0.01, 0.001 -> 0.001
loss_fraction() { awk -v l="$1" 'BEGIN { n = l + 0; if (l ~ /%$/) n /= 100; printf "%.6g", n }'; }
# row_bytes RTT_MS RATE_BPS LOSS_FRACTION: bytes for about $seconds of transfer
row_bytes() {
    awk -v rtt="$1" -v bps="$2" -v p="$3" -v s="$seconds" -v max="$max_bytes" 'BEGIN {
        Bps = bps / 8
        if (p > 0) { r = (rtt < 1 ? 1 : rtt) / 1000; m = 1200 / r * 1.22 / sqrt(p); if (m < Bps) Bps = m }
        b = Bps * s; min = 1048576
        if (b < min) b = min; if (b > max) b = max
        printf "%.0f", int(b / 1048576) * 1048576 }'
}

source scripts/stack.sh                      # H3CO_STACK=1.x: ngtcp2 1.11 / nghttp3 1.8
h3co_stack_select "${H3CO_STACK:-0.12}"
build="build-bench$h3co_stack_suffix"
if ((!dry_run)); then
    ./scripts/bootstrap.sh --stack "$h3co_stack" >&2
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${h3co_stack_cmake_args[@]}" \
        -DH3CO_BUILD_TESTS=OFF -DH3CO_BUILD_EXAMPLES=OFF -DH3CO_SANITIZE=OFF >&2
    cmake --build "$build" -j2 --target h3co_bench >&2
fi
bench="$build/bench/h3co_bench"
log="$(mktemp -t h3co_link_matrix.XXXXXX)"
trap 'rm -f "$log"' EXIT

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "# link matrix: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# h3co $(git rev-parse --short HEAD 2>/dev/null || echo "?"), $(h3co_stack_versions); $runs run(s) per row (medians); ~${seconds} s of transfer per row; extra flags: ${extra[*]:-none}"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

table=()
failed=0
for dir in $directions; do
    for rate in $rates; do
        bps="$(rate_bps "$rate")" || { echo "link_matrix.sh: bad rate $rate" >&2; exit 2; }
        for rtt in $rtts; do
            for loss in $losses; do
                p="$(loss_fraction "$loss")"
                bytes="$(row_bytes "$rtt" "$bps" "$p")"
                mib=$((bytes / 1048576))
                # Bounded: a row gets 20x its expected time, at least 2 minutes per child.
                timeout_s=$((seconds * 20 > 120 ? seconds * 20 : 120))
                echo "# row: $dir, RTT ${rtt} ms, $rate, loss $loss: ${mib} MiB" >&2
                if ((dry_run)); then
                    table+=("| $dir | $rtt | $rate | $loss | $mib | | | | | | | | |")
                    continue
                fi
                "$bench" compare --pairs h3co-h3co,gtls-gtls --directions "$dir" --runs "$runs" --bytes "$bytes" \
                    --timeout "$timeout_s" --csv --link-rtt "${rtt}ms" --link-rate "$rate" --link-loss "$loss" \
                    "${extra[@]}" >"$log" 2>&1 || true  # a failed pair shows as FAIL in its row
                # Medians per pair; drops in the data direction, averaged over runs.
                # Exit status 3: a pair failed or is missing.
                rc=0
                row="$(awk -F, -v dir="$dir" -v bps="$bps" '
                    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
                    !("kind" in col) { next }
                    {
                        pair = $col["client"] "-" $col["server"]
                        if ($col["kind"] == "median") {
                            ok[pair] = $col["ok"]; mbs[pair] = $col["mb_per_s"]
                            crss[pair] = $col["client_maxrss_kib"]; srss[pair] = $col["server_maxrss_kib"]
                        } else if ($col["kind"] == "run") {
                            p = (dir == "upload") ? "link_up_" : "link_down_"
                            q[pair] += $col[p "queue_drops"]; l[pair] += $col[p "lost"]; s[pair] += $col[p "peer_drops"]; n[pair]++
                        }
                    }
                    function mb(x) { return (ok[x] == 1) ? sprintf("%.1f", mbs[x]) : "FAIL" }
                    function pct(x) { return (ok[x] == 1) ? sprintf("%.0f %%", mbs[x] * 8e6 / bps * 100) : "-" }
                    function rss(x) { return (ok[x] == 1) ? sprintf("%.1f / %.1f", crss[x] / 1024, srss[x] / 1024) : "-" }
                    function drops(x) { return n[x] ? sprintf("%.0f / %.0f / %.0f", q[x] / n[x], l[x] / n[x], s[x] / n[x]) : "-" }
                    END {
                        h = "h3co-h3co"; g = "gtls-gtls"
                        ratio = (ok[h] == 1 && ok[g] == 1 && mbs[g] > 0) ? sprintf("%.2f", mbs[h] / mbs[g]) : "-"
                        printf "%s | %s | %s | %s | %s | %s | %s | %s; %s", mb(h), mb(g), ratio, pct(h), pct(g), rss(h), rss(g), drops(h), drops(g)
                        if (ok[h] != 1 || ok[g] != 1) exit 3
                    }' "$log")" || rc=$?
                table+=("| $dir | $rtt | $rate | $loss | $mib | $row |")
                if ((rc != 0)); then
                    failed=1
                    echo "# row failed: $dir, RTT ${rtt} ms, $rate, loss $loss; h3co_bench said:" >&2
                    grep -v '^run,\|^median,\|^ratio,\|^kind,' "$log" | tail -20 >&2 || true
                fi
            done
        done
    done
done

echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| direction | RTT ms | rate | loss | MiB | h3co→h3co MB/s | gtls→gtls MB/s | h3co / gtls | h3co % of link | gtls % of link | h3co RSS cli / srv MiB | gtls RSS cli / srv MiB | drops queue / random / receiver socket: h3co; gtls |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|"
printf '%s\n' "${table[@]}"
exit "$failed"
