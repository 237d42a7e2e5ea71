#!/usr/bin/env bash
# Install what h3co needs on Debian 12 and fetch ngtcp2's source package (for
# the BoringSSL crypto helper, which Debian does not ship as a library).
#
#   scripts/bootstrap.sh               what the library, examples and bench need
#   scripts/bootstrap.sh --test-tools  also what only the test run needs: Doxygen
#                                      (the API reference target), Chromium
#                                      (the browser upload test) and GNU time
#                                      (peak RSS in cli.h3get_fileserver)
#
# apt is only touched when a package is missing, so repeated runs are fast and
# work offline. The ngtcp2 source is fetched once per installed libngtcp2-dev
# version into <repo>/.deps/ngtcp2-src (see cmake/fetch-ngtcp2-source.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
    build-essential cmake pkg-config
    libngtcp2-dev libnghttp3-dev android-libboringssl-dev libasio-dev catch2
    ngtcp2-server ngtcp2-client
    dpkg-dev openssl
)
if [[ "${1:-}" == --test-tools ]]; then
    packages+=(doxygen chromium time)
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

./cmake/fetch-ngtcp2-source.sh "$PWD/.deps/ngtcp2-src"
