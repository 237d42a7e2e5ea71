#!/usr/bin/env bash
# What including h3co costs a file's compile: the same small client file (bench/compile_time/
# client.cpp, one pipe-fed request) header-only and in compiled mode (H3CO_SEPARATE_COMPILATION,
# the engine compiled once in h3co::h3co_compiled), next to a file that includes only <asio.hpp>
# and one with the same coroutines written against Asio alone, at -O0 and -O2, each with -g (as
# Debug and RelWithDebInfo builds compile). Prints the medians of --runs compiles (default 3) and
# the ratios to the <asio.hpp> file.
#
#   bench/compile_time.sh [--runs N] [--suite [REV]]
#
# --suite also times a clean build of the test suite (target h3co_tests, -j2, RelWithDebInfo) of
# this tree and, given REV (e.g. a commit before compiled mode), of that revision in a temporary
# git worktree, for the before/after of docs/performance.md.
#
# Compiler flags are the project's own: taken from CMake's compile_commands.json for bench/'s
# h3co_bench.cpp. Installs what is missing first (scripts/bootstrap.sh); honours H3CO_STACK.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
source scripts/stack.sh
h3co_stack_select "${H3CO_STACK:-0.12}"

runs=3
suite=0
suite_rev=""
while (($#)); do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --suite)
        suite=1
        if [[ $# -gt 1 && "$2" != --* ]]; then suite_rev="$2"; shift; fi
        shift ;;
    *) echo "compile_time.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

./scripts/bootstrap.sh --stack "$h3co_stack" >&2

build="build-compile-time$h3co_stack_suffix"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    -DH3CO_BUILD_TESTS=OFF -DH3CO_BUILD_EXAMPLES=OFF -DH3CO_BUILD_BENCH=ON -DH3CO_BUILD_DOCS=OFF \
    "${h3co_stack_cmake_args[@]}" >&2
cmake --build "$build" -j2 --target h3co_compiled >&2

# The flags CMake uses for a file of the bench (it links h3co::h3co_compiled), minus the
# optimisation, debug, output and source arguments that this script sets itself.
mapfile -t flags < <(python3 - "$build/compile_commands.json" <<'EOF'
import json, shlex, sys
for entry in json.load(open(sys.argv[1])):
    if entry["file"].endswith("bench/h3co_bench.cpp"):
        args = entry.get("arguments") or shlex.split(entry["command"])
        skip = False
        for a in args[1:]:
            if skip:
                skip = False
                continue
            if a in ("-o", "-c"):
                skip = a == "-o"
                continue
            if a.startswith(("-O", "-g")) or a == entry["file"] or a.endswith(".cpp"):
                continue
            print(a)
        break
EOF
)
((${#flags[@]})) || { echo "compile_time.sh: no compile command for bench/h3co_bench.cpp in $build" >&2; exit 1; }
compiler="$(python3 -c "import json,shlex,sys; e=[e for e in json.load(open('$build/compile_commands.json')) if e['file'].endswith('bench/h3co_bench.cpp')][0]; print((e.get('arguments') or shlex.split(e['command']))[0])")"
header_only_flags=()
for f in "${flags[@]}"; do [[ "$f" == -DH3CO_SEPARATE_COMPILATION* ]] || header_only_flags+=("$f"); done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# time_compile FILE OPT [flags...]: median wall seconds of $runs compiles
time_compile() {
    local file="$1" opt="$2"
    shift 2
    local times=() i start end
    for ((i = 0; i < runs; i++)); do
        start="$(date +%s.%N)"
        "$compiler" "$@" "$opt" -g -c "$file" -o "$tmp/out.o"
        end="$(date +%s.%N)"
        times+=("$(echo "$end - $start" | bc)")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

src=bench/compile_time
echo "# $(nproc) cores, $("$compiler" --version | head -1), $(h3co_stack_versions)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg); medians of $runs compiles, each with -g"
printf '%-44s %8s %8s %10s %10s\n' "file" "-O0 s" "-O2 s" "-O0 ratio" "-O2 ratio"
declare -A t
for opt in -O0 -O2; do
    t[asio$opt]="$(time_compile "$src/asio_only.cpp" "$opt" "${header_only_flags[@]}")"
    t[coro$opt]="$(time_compile "$src/asio_coroutines.cpp" "$opt" "${header_only_flags[@]}")"
    t[header$opt]="$(time_compile "$src/client.cpp" "$opt" "${header_only_flags[@]}")"
    t[compiled$opt]="$(time_compile "$src/client.cpp" "$opt" "${flags[@]}")"
done
row() {
    local name="$1" key="$2"
    printf '%-44s %8.2f %8.2f %9.2fx %9.2fx\n' "$name" "${t[$key-O0]}" "${t[$key-O2]}" \
        "$(echo "${t[$key-O0]} / ${t[asio-O0]}" | bc -l)" "$(echo "${t[$key-O2]} / ${t[asio-O2]}" | bc -l)"
}
row "<asio.hpp> only" asio
row "the same coroutines on Asio alone" coro
row "h3co client, header-only" header
row "h3co client, compiled mode" compiled

if ((suite)); then
    # suite_build DIR: seconds for a clean -j2 build of h3co_tests from source dir DIR
    suite_build() {
        local dir="$1" out="$tmp/suite-$RANDOM"
        cmake -S "$dir" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DH3CO_BUILD_EXAMPLES=OFF -DH3CO_BUILD_BENCH=OFF \
            -DH3CO_BUILD_DOCS=OFF -DH3CO_NGTCP2_SOURCE_DIR="$root/.deps/ngtcp2-src" "${h3co_stack_cmake_args[@]}" >/dev/null
        local start end
        start="$(date +%s.%N)"
        cmake --build "$out" -j2 --target h3co_tests >/dev/null
        end="$(date +%s.%N)"
        echo "$(echo "$end - $start" | bc) s, $(ls "$dir"/tests/test_*.cpp | wc -l) test files"
    }
    echo
    echo "suite build (h3co_tests, clean, -j2, RelWithDebInfo):"
    echo "  this tree ($(git rev-parse --short HEAD 2>/dev/null || echo '?')): $(suite_build "$root")"
    if [[ -n "$suite_rev" ]]; then
        git worktree add --detach "$tmp/rev" "$suite_rev" >/dev/null 2>&1
        echo "  $suite_rev: $(suite_build "$tmp/rev")"
        git worktree remove --force "$tmp/rev" >/dev/null 2>&1
    fi
fi
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
