#!/usr/bin/env bash
# Install what h3co needs on Debian 12 and fetch the ngtcp2 source for the BoringSSL
# crypto helper (which Debian does not ship as a library).
#
#   scripts/bootstrap.sh               what the library, examples and bench need, for the
#                                      default stack (ngtcp2 0.12 + nghttp3 0.8 from Debian 12)
#   scripts/bootstrap.sh --test-tools  also what only the test run needs: Doxygen
#                                      (the API reference target), Chromium
#                                      (the browser upload test), GNU time
#                                      (peak RSS in cli.h3get_fileserver) and clang
#                                      with its runtime libraries (libFuzzer: the fuzz pass)
#   scripts/bootstrap.sh --stack 1.x   set up the ngtcp2 1.11 + nghttp3 1.8 stack instead:
#                                      Debian 13's packages unpacked into .deps/stack-1.x
#                                      (cmake/fetch-stack-1x.sh); nothing is installed into
#                                      the system for it
#   --stack 0.12                       the default stack (the ngtcp2 source of the installed
#                                      libngtcp2-dev); --stack may be given more than once,
#                                      and combines with --test-tools
#
# apt is only touched when a package is missing, so repeated runs are fast and
# work offline. The ngtcp2 source is fetched once per installed libngtcp2-dev
# version into <repo>/.deps/ngtcp2-src (see cmake/fetch-ngtcp2-source.sh); the 1.x
# stack once per version into <repo>/.deps/stack-1.x.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

test_tools=0
stacks=()
while (($#)); do
    case "$1" in
    --test-tools) test_tools=1 ;;
    --stack) [[ $# -ge 2 ]] || { echo "bootstrap: --stack needs 0.12 or 1.x" >&2; exit 2; }
             stacks+=("$2"); shift ;;
    --stack=*) stacks+=("${1#--stack=}") ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "bootstrap: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
((${#stacks[@]})) || stacks=(0.12)
for st in "${stacks[@]}"; do
    [[ "$st" == 0.12 || "$st" == 1.x ]] || { echo "bootstrap: unknown stack '$st' (0.12 or 1.x)" >&2; exit 2; }
done

# The system packages are the same for both stacks: the 1.x stack still uses Android's
# BoringSSL, Asio and Catch2 from Debian 12, and the interop tests use ngtcp2's examples.
packages=(
    build-essential cmake pkg-config
    libngtcp2-dev libnghttp3-dev android-libboringssl-dev libasio-dev catch2
    ngtcp2-server ngtcp2-client
    dpkg-dev openssl xz-utils bc python3
)
if ((test_tools)); then
    packages+=(doxygen chromium time clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
    [[ "$status" == ii* ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "bootstrap: installing missing packages: ${missing[*]}"
    sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "bootstrap: all packages present"
fi

for st in "${stacks[@]}"; do
    case "$st" in
    0.12) ./cmake/fetch-ngtcp2-source.sh "$PWD/.deps/ngtcp2-src" ;;
    1.x)  ./cmake/fetch-stack-1x.sh "$PWD/.deps/stack-1.x" ;;
    esac
done
