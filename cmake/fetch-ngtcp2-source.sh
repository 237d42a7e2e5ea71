#!/usr/bin/env bash
# Fetch Debian's ngtcp2 *source* package, exactly the version of the installed
# libngtcp2-dev, and extract it into DESTDIR (default: <repo>/.deps/ngtcp2-src).
#
# deb-src entries are derived from the machine's own `deb` entries and written
# into a private apt configuration under <DESTDIR>/../apt (cmake/private-apt.sh),
# so the system apt setup is never modified. No mirror host name is written
# anywhere in the repo.
#
# Idempotent: when DESTDIR/.h3co-version already holds the installed version,
# nothing is done (no network access).
set -euo pipefail

die() { echo "fetch-ngtcp2-source: error: $*" >&2; exit 1; }
log() { echo "fetch-ngtcp2-source: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/.deps/ngtcp2-src}"
mkdir -p "$(dirname "$dest")"
dest="$(cd "$(dirname "$dest")" && pwd)/$(basename "$dest")"
work="$(dirname "$dest")"          # downloads and private apt state live next to dest
stamp="$dest/.h3co-version"

command -v dpkg-query >/dev/null || die "dpkg-query not found (this script needs Debian)"
version="$(dpkg-query -W -f='${Version}' libngtcp2-dev 2>/dev/null || true)"
[[ -n "$version" ]] || die "libngtcp2-dev is not installed (run scripts/bootstrap.sh)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$version" && -f "$dest/crypto/boringssl/boringssl.c" ]]; then
    log "ngtcp2 source $version already in $dest"
    exit 0
fi

command -v dpkg-source >/dev/null || die "dpkg-source not found (install dpkg-dev)"
command -v apt-get >/dev/null || die "apt-get not found"

# --- private apt configuration (cmake/private-apt.sh) --------------------------
# shellcheck source=private-apt.sh
source "$repo_root/cmake/private-apt.sh"
apt_dir="$work/apt"
h3co_private_apt "$apt_dir" deb-src
apt_opts=("${h3co_apt_opts[@]}")

log "updating private source index (from the machine's own apt sources)"
apt-get "${apt_opts[@]}" -q update >&2 || die "apt-get update (private deb-src config) failed"

dl="$work/ngtcp2-download"
rm -rf "$dl"; mkdir -p "$dl"
log "downloading ngtcp2=$version source package"
(cd "$dl" && apt-get "${apt_opts[@]}" -q source --download-only "ngtcp2=$version" >&2) \
    || die "apt-get source ngtcp2=$version failed (is that version still on the configured mirrors?)"

dsc=("$dl"/ngtcp2_*.dsc)
[[ -f "${dsc[0]}" ]] || die "no .dsc downloaded into $dl"

rm -rf "$dest" "$dest.tmp"
log "extracting ${dsc[0]##*/} into $dest"
# --no-check: apt already verified the files against the signed Sources index
# (the .dsc's own inline signature would need the uploader's key in a keyring).
# --no-copy: do not copy the orig tarball next to DESTDIR.
dpkg-source --no-check --no-copy -x "${dsc[0]}" "$dest.tmp" >&2 || die "dpkg-source -x failed"
mv "$dest.tmp" "$dest"
[[ -f "$dest/crypto/boringssl/boringssl.c" && -f "$dest/crypto/shared.c" ]] \
    || die "extracted source lacks crypto/boringssl/boringssl.c or crypto/shared.c"
printf '%s' "$version" > "$stamp"
log "ngtcp2 source $version ready in $dest"
