#!/usr/bin/env bash
# The paced path per side (issue 22; docs/performance.md, "Paced paths"): one transfer at a time
# through h3co_bench's link emulator (RTT 50 ms, 100 Mbit/s by default), h3co and gtls
# (gtlsserver / gtlsclient) alternated, upload and download, each peer process under `perf stat`
# (software counters and syscall tracepoints: no hardware counters needed). Prints per side the
# medians over --runs of: CPU ms, CPU us per datagram, system calls, epoll waits, context switches
# and timerfd re-arms per datagram (datagrams: what the emulator forwarded both ways), and the
# acknowledgement ratio (datagrams against the data direction / datagrams in it).
#
#   bench/paced_profile.sh [--bench PATH] [--runs N] [--bytes 16M] [--pairs "h3co gtls"] [--out DIR]
#                          [--certs DIR] [--breakdown] [-- h3co_bench --link-* flags instead of the default link]
#   bench/paced_profile.sh --bench old/h3co_bench --bench new/h3co_bench   # two builds side by side
#   bench/paced_profile.sh --bench "build/bench/h3co_bench --ack-threshold 2" --bench build/bench/h3co_bench
#                                          # --bench is a path and flags for both h3co peers
#
# --breakdown also counts each system call that a peer makes (epoll_ctl, read, write, futex, ...)
# and prints a second table: each call per datagram, per side and peer (medians).
#
# Needs perf (linux-perf) with access to the syscalls tracepoints (root, or perf_event_paranoid
# <= -1), and gtlsserver / gtlsclient for the gtls rows. CPU figures are noisy on a shared machine:
# compare rows of the same run only.
set -euo pipefail
benches=() runs=3 bytes=16M pairs="h3co gtls" out="" certs="" breakdown=0 link=(--link-rtt 50ms --link-rate 100mbit)
while (($#)); do
    case "$1" in
    --bench) benches+=("$2"); shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --bytes) bytes=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --certs) certs=$2; shift 2 ;;
    --breakdown) breakdown=1; shift ;;
    --) shift; link=("$@"); break ;;
    *) echo "paced_profile.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
((${#benches[@]})) || benches=("$root/build/bench/h3co_bench")
for b in "${benches[@]}"; do [[ -x ${b%% *} ]] || { echo "paced_profile.sh: no ${b%% *} (build h3co_bench first)" >&2; exit 2; }; done
first=${benches[0]%% *}
[[ -n $certs ]] || certs=$(dirname "$first")/../bench-certs
[[ -f $certs/ca.pem ]] || { echo "paced_profile.sh: no certificates in $certs" >&2; exit 2; }
[[ -n $out ]] || out=$(mktemp -d /tmp/paced_profile.XXXXXX)
mkdir -p "$out"
nbytes=$(numfmt --from=iec "$bytes")
events="task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait"
events+=",syscalls:sys_enter_recvmmsg,syscalls:sys_enter_recvmsg,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendmmsg"
events+=",syscalls:sys_enter_timerfd_settime"
# --breakdown: the other calls a peer makes on its paced path (what either event loop uses).
breakdown_calls="epoll_ctl read write futex recvfrom sendto poll ppoll getsockopt setsockopt ioctl clock_nanosleep"
breakdown_calls+=" mmap munmap madvise brk"
((breakdown)) && for c in $breakdown_calls; do events+=",syscalls:sys_enter_$c"; done
upload_file="$out/upload.bin"

# one BENCH IMPL DIRECTION PREFIX: one transfer, the server, the emulator and the client measured.
one() {
    local impl=$2 dir=$3 pre=$4 fifo sport lport srv_perf link_pid line bench flags
    read -ra flags <<<"$1"
    bench=${flags[0]}
    flags=("${flags[@]:1}")
    fifo=$(mktemp -u "$out/fifo.XXXXXX"); mkfifo "$fifo.srv" "$fifo.lnk"
    if [[ $impl == h3co ]]; then
        perf stat -x, -o "$pre.srv.perf" -e "$events" -- "$bench" --role server --port 0 --timeout 120 --cert-dir "$certs" "${flags[@]}" >"$fifo.srv" 2>/dev/null &
        srv_perf=$!
        exec {srv_fd}<"$fifo.srv"; read -r line <&"$srv_fd"; sport=${line#PORT }
    else
        sport=$(python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
        perf stat -x, -o "$pre.srv.perf" -e "$events" -- gtlsserver --no-quic-dump --no-http-dump -q -d "$out" \
            --max-dyn-length=$((nbytes + 1)) 127.0.0.1 "$sport" "$certs/server.key" "$certs/server.pem" >"$pre.srv.log" 2>&1 &
        srv_perf=$!
        for _ in $(seq 200); do grep -qi ":$(printf %04X "$sport") " /proc/net/udp && break; sleep 0.02; done
    fi
    "$bench" --role link --link-target "127.0.0.1:$sport" --port 0 --timeout 120 "${link[@]}" >"$fifo.lnk" &
    link_pid=$!
    exec {lnk_fd}<"$fifo.lnk"; read -r line <&"$lnk_fd"; lport=${line#PORT }
    if [[ $impl == h3co ]]; then
        perf stat -x, -o "$pre.cli.perf" -e "$events" -- "$bench" --role client --mode "$dir" --port "$lport" \
            --bytes "$nbytes" --timeout 120 --cert-dir "$certs" "${flags[@]}" >"$pre.cli.json" || echo "client failed: $pre" >&2
    elif [[ $dir == upload ]]; then
        perf stat -x, -o "$pre.cli.perf" -e "$events" -- gtlsclient -q --no-quic-dump --no-http-dump --exit-on-all-streams-close \
            --timeout=30s -m POST -d "$upload_file" 127.0.0.1 "$lport" "https://127.0.0.1:$lport/0" >"$pre.cli.log" 2>&1 || echo "client failed: $pre" >&2
    else
        perf stat -x, -o "$pre.cli.perf" -e "$events" -- gtlsclient -q --no-quic-dump --no-http-dump --exit-on-all-streams-close \
            --timeout=30s 127.0.0.1 "$lport" "https://127.0.0.1:$lport/$nbytes" >/dev/null 2>"$pre.cli.log" || echo "client failed: $pre" >&2
    fi
    kill -TERM "$(pgrep -P "$srv_perf" | head -1)" "$link_pid" 2>/dev/null || true
    [[ $impl == h3co ]] && { cat <&"$srv_fd" >"$pre.srv.json"; exec {srv_fd}<&-; }
    cat <&"$lnk_fd" >"$pre.lnk.json"; exec {lnk_fd}<&-
    wait "$srv_perf" "$link_pid" 2>/dev/null || true
    rm -f "$fifo.srv" "$fifo.lnk"
}

[[ $pairs == *gtls* ]] && head -c "$nbytes" /dev/zero >"$upload_file"
for ((run = 1; run <= runs; ++run)); do
    for dir in upload download; do
        for impl in $pairs; do
            if [[ $impl == h3co ]]; then
                for i in "${!benches[@]}"; do
                    echo "run $run/$runs: $dir h3co (${benches[$i]})" >&2
                    one "${benches[$i]}" h3co "$dir" "$out/h3co$i.$dir.$run"
                done
            else
                echo "run $run/$runs: $dir gtls" >&2
                one "$first" gtls "$dir" "$out/gtls.$dir.$run"
            fi
        done
    done
done
rm -f "$upload_file"

python3 - "$out" "$breakdown" "${benches[@]}" <<'PY'
import glob, json, os, statistics, sys
out, breakdown, benches = sys.argv[1], sys.argv[2] == '1', sys.argv[3:]
def perf(f):
    d = {}
    for l in open(f):
        p = l.strip().split(',')
        if len(p) > 2 and not l.startswith('#'):
            try: d[p[2].replace('raw_syscalls:sys_enter', 'syscalls').replace('syscalls:sys_enter_', '')] = float(p[0])
            except ValueError: pass
    return d
def last_json(f):
    for l in reversed(open(f).read().splitlines()):
        if l.startswith('{'): return json.loads(l)
rows = {}
for f in glob.glob(os.path.join(out, '*.cli.perf')):
    pre = f[:-len('.cli.perf')]
    name, direction, _ = os.path.basename(pre).split('.')
    link = last_json(pre + '.lnk.json')
    if not link or not os.path.exists(pre + '.srv.perf'): continue
    up = direction == 'upload'
    data = link['up_forwarded' if up else 'down_forwarded']
    back = link['down_forwarded' if up else 'up_forwarded']
    datagrams = data + back
    for side, file in (('client', pre + '.cli.perf'), ('server', pre + '.srv.perf')):
        p = perf(file)
        sender = (side == 'client') == up
        rows.setdefault((direction, side + (' (sender)' if sender else ' (receiver)'), name), []).append({
            'cpu': p['task-clock'], 'us': p['task-clock'] * 1000 / datagrams, 'sys': p['syscalls'] / datagrams,
            'wake': (p.get('epoll_wait', 0) + p.get('epoll_pwait', 0)) / datagrams,
            'cs': p['context-switches'] / datagrams, 'timer': p.get('timerfd_settime', 0) / datagrams,
            'ack': back / data,
            'calls': {k: v / datagrams for k, v in p.items() if k not in ('task-clock', 'context-switches', 'syscalls')}})
label = lambda n: 'gtls' if n == 'gtls' else 'h3co' + (f' ({benches[int(n[4:])]})' if len(benches) > 1 else '')
print('| direction | side | peer | runs | CPU ms | CPU us / datagram | syscalls / datagram | epoll waits / datagram | '
      'context switches / datagram | timerfd re-arms / datagram | datagrams back / data datagram |')
print('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|')
for k in sorted(rows, key=lambda k: (k[0] != 'upload', k[1], k[2] == 'gtls', k[2])):
    v = rows[k]
    m = lambda f: statistics.median(x[f] for x in v)
    print(f"| {k[0]} | {k[1]} | {label(k[2])} | {len(v)} | {m('cpu'):.0f} | {m('us'):.1f} | {m('sys'):.2f} | {m('wake'):.2f} | "
          f"{m('cs'):.2f} | {m('timer'):.2f} | {m('ack'):.3f} |")
if breakdown:
    names = sorted({c for v in rows.values() for x in v for c in x['calls']},
                   key=lambda c: -max(statistics.median(x['calls'].get(c, 0) for x in v) for v in rows.values()))
    names = [c for c in names if any(statistics.median(x['calls'].get(c, 0) for x in v) >= 0.005 for v in rows.values())]
    print('\nSystem calls per datagram, each (medians; only those at 0.005 or more somewhere):\n')
    print('| direction | side | peer | ' + ' | '.join(f'`{c}`' for c in names) + ' |')
    print('|---|---|---|' + '---:|' * len(names))
    for k in sorted(rows, key=lambda k: (k[0] != 'upload', k[1], k[2] == 'gtls', k[2])):
        v = rows[k]
        print(f"| {k[0]} | {k[1]} | {label(k[2])} | " +
              ' | '.join(f"{statistics.median(x['calls'].get(c, 0) for x in v):.2f}" for c in names) + ' |')
print(f'\n(files: {out})')
PY
