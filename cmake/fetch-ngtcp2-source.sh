#!/usr/bin/env bash
# Fetch Debian's ngtcp2 *source* package, exactly the version of the installed
# libngtcp2-dev, and extract it into DESTDIR (default: <repo>/.deps/ngtcp2-src).
#
# deb-src entries are derived from the machine's own `deb` entries and written
# into a private apt configuration under <DESTDIR>/../apt, so the system apt
# setup is never modified. No mirror host name is written anywhere in the repo.
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

# --- private apt configuration -------------------------------------------------
apt_dir="$work/apt"
rm -rf "$apt_dir"
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
: > "$apt_dir/sources.list"        # empty: everything goes through sources.list.d

# One-line format: "deb [opts] URI SUITE COMPONENTS..." -> "deb-src ...".
n=0
shopt -s nullglob
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    out="$apt_dir/sources.list.d/h3co-$n.list"; n=$((n + 1))
    sed -n -E 's/^[[:space:]]*deb([[:space:]]+)/deb-src\1/p' "$f" > "$out"
done
# deb822 format: keep stanzas whose Types include "deb", rewrite Types to deb-src,
# drop disabled stanzas. Continuation lines (leading space) are kept verbatim.
for f in /etc/apt/sources.list.d/*.sources; do
    out="$apt_dir/sources.list.d/h3co-$n.sources"; n=$((n + 1))
    awk '
        function flush() {
            if (buf != "" && has_deb && !disabled) printf "%s\n", buf
            buf = ""; has_deb = 0; disabled = 0
        }
        /^[[:space:]]*$/ { flush(); next }
        /^#/ { next }
        /^[Tt]ypes:/ {
            line = $0; sub(/^[Tt]ypes:[[:space:]]*/, "", line)
            nt = split(line, t, /[[:space:]]+/)
            for (i = 1; i <= nt; i++) if (t[i] == "deb") has_deb = 1
            buf = buf "Types: deb-src\n"; next
        }
        /^[Ee]nabled:[[:space:]]*[Nn][Oo]/ { disabled = 1 }
        { buf = buf $0 "\n" }
        END { flush() }
    ' "$f" > "$out"
done
shopt -u nullglob
if ! grep -qs -E '^(deb-src|Types: deb-src)' "$apt_dir"/sources.list.d/*; then
    die "no 'deb' entries found in /etc/apt/sources.list or /etc/apt/sources.list.d/"
fi

apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "Debug::NoLocking=1"
)
# As root, apt drops to the _apt user for downloads, which cannot write into a
# root-owned private dir; download as the invoking user instead (no warning).
if [[ "$(id -u)" -eq 0 ]]; then
    apt_opts+=(-o "APT::Sandbox::User=root")
fi

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
