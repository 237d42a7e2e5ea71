#!/usr/bin/env bash
# Runs h3co's libFuzzer targets one after another (the machine is shared: never in parallel).
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
#
# BUILD_DIR is a tree configured with -DH3CO_FUZZ=ON (clang) and built. Each target (default:
# all, from BUILD_DIR/tests/fuzz/targets.txt) fuzzes for SECONDS / number-of-targets seconds,
# starting from its committed seeds and past findings (tests/fuzz/corpus/<target>,
# tests/fuzz/regressions/<target>), copied into BUILD_DIR/fuzz-work/<target> so that the
# repository is never written to. New findings land in BUILD_DIR/fuzz-artifacts/.
#
#   H3CO_FUZZ_RUNS=N       also stop each target after N executions (-runs=N); with a large
#                          SECONDS, that is the long run of docs/fuzzing.md
#   H3CO_FUZZ_SEED=N       libFuzzer's -seed=N: the same inputs in the same order on every run
#                          (scripts/test.sh sets 1); unset, each run draws its own
#   H3CO_FUZZ_ARGS="..."   more libFuzzer flags
#
# Exit status: 0 when every target ran its time without a finding; 1 otherwise (the finding's
# input and libFuzzer's report are printed). Prints each target's executions and rate.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2; exit 2; }
build="$(cd "$1" && pwd)"
seconds="$2"
shift 2
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if (($#)); then
    targets=("$@")
else
    [[ -f "$build/tests/fuzz/targets.txt" ]] || {
        echo "fuzz: $build/tests/fuzz/targets.txt missing: configure $build with -DH3CO_FUZZ=ON and build it" >&2
        exit 1
    }
    mapfile -t targets < "$build/tests/fuzz/targets.txt"
fi
((${#targets[@]})) || { echo "fuzz: no targets" >&2; exit 1; }
per_target=$((seconds / ${#targets[@]}))
((per_target >= 1)) || per_target=1

# A smaller quarantine keeps each run's memory modest on a shared machine; leaks are still checked
# (per input for the stateless targets, at exit for the ones that keep a connection: see below).
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

mkdir -p "$build/fuzz-artifacts"
failed=0
summary=()
for t in "${targets[@]}"; do
    exe="$build/tests/fuzz/h3co_fuzz_$t"
    [[ -x "$exe" ]] || { echo "fuzz: $exe not built" >&2; failed=1; summary+=("$t: NOT BUILT"); continue; }
    work="$build/fuzz-work/$t"
    mkdir -p "$work"
    for d in "$src/corpus/$t" "$src/regressions/$t"; do
        [[ -d "$d" ]] && cp -n "$d"/* "$work"/ 2>/dev/null || true
    done
    args=(-max_total_time="$per_target" -print_final_stats=1 -timeout=20
          -artifact_prefix="$build/fuzz-artifacts/$t-")
    case "$t" in
    # These keep one established connection from input to input (a handshake costs far more than an
    # exchange), so an input may end with more allocations than it started with; libFuzzer's
    # per-input leak check would then scan the whole heap each time. Leaks are checked at exit.
    h3_*|server_datagram) args+=(-detect_leaks=0) ;;
    esac
    [[ -n "${H3CO_FUZZ_RUNS:-}" ]] && args+=(-runs="$H3CO_FUZZ_RUNS")
    [[ -n "${H3CO_FUZZ_SEED:-}" ]] && args+=(-seed="$H3CO_FUZZ_SEED")
    # shellcheck disable=SC2206
    [[ -n "${H3CO_FUZZ_ARGS:-}" ]] && args+=($H3CO_FUZZ_ARGS)
    log="$build/fuzz-artifacts/$t.log"
    echo "== fuzz: $t for ${per_target}s =="
    if "$exe" "${args[@]}" "$work" > "$log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
        rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
        cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
        summary+=("$t: ${runs:-?} runs, ${rate:-?}/s, $cov")
    else
        failed=1
        summary+=("$t: FAILED (see $log)")
        echo "fuzz: $t FAILED; the end of its log:" >&2
        grep -v -E '^#[0-9]+ +(NEW|REDUCE|pulse)' "$log" | tail -40 >&2
    fi
done

echo
for s in "${summary[@]}"; do echo "fuzz: $s"; done
exit "$failed"
