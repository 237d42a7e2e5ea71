# Sourced by scripts/demo.sh, scripts/test.sh and bench/compare.sh: which ngtcp2/nghttp3
# stack a build uses, and where its build directory is.
#
#   H3CO_STACK=0.12  (default) Debian 12's packages: ngtcp2 0.12, nghttp3 0.8, in the system
#   H3CO_STACK=1.x   Debian 13's ngtcp2 1.11 / nghttp3 1.8, unpacked into .deps/stack-1.x by
#                    `scripts/bootstrap.sh --stack 1.x` (cmake/fetch-stack-1x.sh)
#
#   h3co_stack_select STACK   checks STACK and sets, for it:
#       h3co_stack             "0.12" or "1.x"
#       h3co_stack_suffix      "" or "-1.x": build dirs are build$suffix, build-asan$suffix, ...
#       h3co_stack_cmake_args  array: -DH3CO_STACK_PREFIX=... (empty for 0.12, so that a
#                              reused build directory goes back to the system packages)
#   h3co_stack_versions       "ngtcp2 X, nghttp3 Y (where)" of the selected stack, from the
#                              headers (for reports; empty fields when not set up yet)
#
# The repository root is this file's parent directory.

h3co_stack_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
h3co_stack_prefix_1x="$h3co_stack_root/.deps/stack-1.x/usr"

h3co_stack_select() {
    case "$1" in
    0.12)
        h3co_stack=0.12
        h3co_stack_suffix=""
        h3co_stack_cmake_args=(-DH3CO_STACK_PREFIX=)
        ;;
    1.x)
        h3co_stack=1.x
        h3co_stack_suffix="-1.x"
        h3co_stack_cmake_args=("-DH3CO_STACK_PREFIX=$h3co_stack_prefix_1x")
        ;;
    *)
        echo "h3co: unknown stack '$1' (H3CO_STACK / H3CO_STACKS take 0.12 or 1.x)" >&2
        return 1
        ;;
    esac
}

h3co_stack_versions() {
    local inc=/usr/include where="Debian 12 packages"
    if [[ "$h3co_stack" == 1.x ]]; then
        inc="$h3co_stack_prefix_1x/include"
        where="Debian 13 packages in .deps/stack-1.x"
    fi
    local v1 v2
    v1="$(sed -n -E 's/^#define NGTCP2_VERSION "([^"]*)".*/\1/p' "$inc/ngtcp2/version.h" 2>/dev/null)"
    v2="$(sed -n -E 's/^#define NGHTTP3_VERSION "([^"]*)".*/\1/p' "$inc/nghttp3/version.h" 2>/dev/null)"
    echo "ngtcp2 ${v1:-?}, nghttp3 ${v2:-?} ($where)"
}
