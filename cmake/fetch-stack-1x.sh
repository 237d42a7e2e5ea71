#!/usr/bin/env bash
# Fetch the ngtcp2 1.x / nghttp3 1.x stack from Debian 13 ("trixie") into DESTDIR
# (default: <repo>/.deps/stack-1.x) and build ngtcp2's BoringSSL crypto helper for it.
# Run by `scripts/bootstrap.sh --stack 1.x`. Nothing is installed into the system.
#
#   DESTDIR/usr/                 a prefix, given to CMake as -DH3CO_STACK_PREFIX=DESTDIR/usr
#     include/ngtcp2, include/nghttp3, lib/<multiarch>/libngtcp2.*, libnghttp3.*
#                                from libngtcp2-16, libngtcp2-dev, libnghttp3-9,
#                                libnghttp3-dev (dpkg -x of Debian 13's packages)
#     src/ngtcp2-<upstream>/     ngtcp2's upstream tarball (ngtcp2_<upstream>.orig.tar.xz),
#                                checked against the SHA-256 in trixie's Sources index;
#                                CMake builds h3co's crypto helper target from it
#     include/ngtcp2/ngtcp2_crypto{,_boringssl}.h, lib/<multiarch>/libngtcp2_crypto_boringssl.a
#                                the helper, built here from crypto/boringssl/boringssl.c
#                                and crypto/shared.c against Android's BoringSSL: the prefix
#                                then looks like an ngtcp2 installed with ENABLE_BORINGSSL
#   DESTDIR/apt/                 private apt configuration and indexes
#   DESTDIR/download/            the .deb files and the tarball (kept: re-runs are offline)
#   DESTDIR/build/               the helper's objects and the set-up check program
#
# Then it links and runs cmake/stack-1x-selfcheck.c (a QUIC handshake between two
# in-process ngtcp2 connections through the helper) against the unpacked stack.
#
# Where from: a private apt configuration derived from the machine's own apt sources
# (cmake/private-apt.sh): the entries of the machine's release (VERSION_CODENAME in
# /etc/os-release, e.g. bookworm) switched to suite trixie, types deb and deb-src. No
# registry host name is written into the repo; the system apt setup is not touched.
# Debian 13 serves the binary packages and the upstream tarball, but not ngtcp2's .dsc
# (so `apt-get source` does not work): the tarball is fetched alone, by the URI and
# SHA-256 that `apt-get source --print-uris` reads from the signed Sources index.
#
# Versions (environment, defaults are the versions the project is tested with):
#   H3CO_STACK_1X_NGTCP2   Debian version of libngtcp2-16/-dev  (1.11.0-1+deb13u1)
#   H3CO_STACK_1X_NGHTTP3  Debian version of libnghttp3-9/-dev  (1.8.0-1)
#   H3CO_STACK_1X_SUITE    Debian suite                          (trixie)
#   H3CO_BORINGSSL_INCLUDE_DIR / H3CO_BORINGSSL_LIBRARY_DIR       Android BoringSSL
#
# Idempotent: DESTDIR/.h3co-stack records the versions and a hash of this script and
# the check program; when it matches, nothing is done (no network, well under a second).
# The downloads are kept, so a rebuild after a change to this script is offline too.
set -euo pipefail

die() { echo "fetch-stack-1x: error: $*" >&2; exit 1; }
log() { echo "fetch-stack-1x: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/.deps/stack-1.x}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

ngtcp2_version="${H3CO_STACK_1X_NGTCP2:-1.11.0-1+deb13u1}"
nghttp3_version="${H3CO_STACK_1X_NGHTTP3:-1.8.0-1}"
suite="${H3CO_STACK_1X_SUITE:-trixie}"
ssl_include="${H3CO_BORINGSSL_INCLUDE_DIR:-/usr/include/android}"
cc="${CC:-cc}"
selfcheck_src="$repo_root/cmake/stack-1x-selfcheck.c"

command -v dpkg >/dev/null || die "dpkg not found (this script needs Debian)"
multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || "$cc" -print-multiarch)"
[[ -n "$multiarch" ]] || die "cannot tell the multiarch triplet (install dpkg-dev)"
ssl_libdir="${H3CO_BORINGSSL_LIBRARY_DIR:-/usr/lib/$multiarch/android}"

# "1:1.11.0-1+deb13u1" -> "1.11.0"
upstream_of() { local v="${1#*:}"; echo "${v%-*}"; }
ngtcp2_upstream="$(upstream_of "$ngtcp2_version")"
nghttp3_upstream="$(upstream_of "$nghttp3_version")"

recipe="$(cat "${BASH_SOURCE[0]}" "$repo_root/cmake/private-apt.sh" "$selfcheck_src" \
          | sha256sum | cut -c1-16)"
want_stamp="suite=$suite ngtcp2=$ngtcp2_version nghttp3=$nghttp3_version recipe=$recipe"
stamp="$dest/.h3co-stack"
prefix="$dest/usr"
libdir="$prefix/lib/$multiarch"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" &&
      -f "$prefix/include/ngtcp2/version.h" && -f "$prefix/include/nghttp3/version.h" &&
      -f "$libdir/libngtcp2_crypto_boringssl.a" &&
      -f "$prefix/src/ngtcp2-$ngtcp2_upstream/crypto/boringssl/boringssl.c" ]]; then
    log "ngtcp2 $ngtcp2_version + nghttp3 $nghttp3_version already in $prefix"
    exit 0
fi

# --- downloads (skipped when all of them are already there) --------------------------
dl="$dest/download"
mkdir -p "$dl"
debs=("libngtcp2-16=$ngtcp2_version" "libngtcp2-dev=$ngtcp2_version"
      "libnghttp3-9=$nghttp3_version" "libnghttp3-dev=$nghttp3_version")
deb_file() { # name=version -> the file name apt-get download writes (epoch ':' as %3a)
    local name="${1%%=*}" version="${1#*=}"
    echo "${name}_${version//:/%3a}_$(dpkg --print-architecture).deb"
}
orig="ngtcp2_$ngtcp2_upstream.orig.tar.xz"
have_all=1
for d in "${debs[@]}"; do [[ -f "$dl/$(deb_file "$d")" ]] || have_all=0; done
[[ -f "$dl/$orig" && -f "$dl/$orig.sha256" ]] || have_all=0

if ((!have_all)); then
    command -v apt-get >/dev/null || die "apt-get not found"
    [[ -r /etc/os-release ]] || die "/etc/os-release missing: cannot tell this machine's release"
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [[ -n "$codename" ]] || die "no VERSION_CODENAME in /etc/os-release"

    # shellcheck source=private-apt.sh
    source "$repo_root/cmake/private-apt.sh"
    h3co_private_apt "$dest/apt" "deb deb-src" "$codename" "$suite"
    apt_opts=("${h3co_apt_opts[@]}")

    log "updating a private index of Debian '$suite' (the machine's '$codename' sources, suite switched)"
    apt-get "${apt_opts[@]}" -q update >&2 || die "apt-get update (private $suite config) failed"

    tmp="$dl/.partial"
    rm -rf "$tmp"; mkdir -p "$tmp"
    log "downloading ${debs[*]}"
    if ! (cd "$tmp" && apt-get "${apt_opts[@]}" -q download "${debs[@]}" >&2); then
        for p in libngtcp2-dev libnghttp3-dev; do
            apt-cache "${apt_opts[@]}" madison "$p" >&2 || true
        done
        die "apt-get download failed. Versions $suite offers are listed above; choose them with" \
            "H3CO_STACK_1X_NGTCP2=<version> / H3CO_STACK_1X_NGHTTP3=<version>."
    fi

    # The tarball's URI and SHA-256, as apt reads them from the signed Sources index.
    uris="$(apt-get "${apt_opts[@]}" -q source --print-uris "ngtcp2=$ngtcp2_version" 2>/dev/null)" \
        || die "ngtcp2=$ngtcp2_version is not in $suite's Sources index"
    line="$(grep -F " $orig " <<<"$uris" | head -n1)" \
        || die "Sources index lists no $orig for ngtcp2=$ngtcp2_version"
    uri="$(awk '{print $1}' <<<"$line" | tr -d "'")"
    sha256="$(grep -o 'SHA256:[0-9a-f]\{64\}' <<<"$line" | cut -d: -f2)"
    [[ -n "$uri" && -n "$sha256" ]] || die "cannot read the URI/SHA-256 of $orig from: $line"
    log "downloading $uri (SHA-256 $sha256 from $suite's Sources index)"
    helper_opts=()
    [[ "$(id -u)" -ne 0 ]] || helper_opts=(-o "APT::Sandbox::User=root")
    /usr/lib/apt/apt-helper "${helper_opts[@]}" download-file "$uri" "$tmp/$orig" "SHA256:$sha256" >&2 \
        || die "downloading $uri failed"
    echo "$sha256  $orig" > "$tmp/$orig.sha256"
    mv -f "$tmp"/* "$dl"/
    rmdir "$tmp"
fi
(cd "$dl" && sha256sum --quiet -c "$orig.sha256") || die "$dl/$orig does not match the SHA-256 of $suite's Sources index"

# --- unpack into a fresh prefix ---------------------------------------------------------
new="$dest/usr.new"
rm -rf "$new" "$dest/stage"
mkdir -p "$dest/stage"
for d in "${debs[@]}"; do
    dpkg -x "$dl/$(deb_file "$d")" "$dest/stage" || die "dpkg -x $(deb_file "$d") failed"
done
mv "$dest/stage/usr" "$new"
rm -rf "$dest/stage"
newlib="$new/lib/$multiarch"
for f in "$new/include/ngtcp2/ngtcp2.h" "$new/include/nghttp3/nghttp3.h" \
         "$newlib/libngtcp2.so" "$newlib/libnghttp3.so"; do
    [[ -e "$f" ]] || die "unpacked packages lack $f"
done
header_version() { sed -n -E "s/^#define $2 \"([^\"]*)\".*/\\1/p" "$1"; }
[[ "$(header_version "$new/include/ngtcp2/version.h" NGTCP2_VERSION)" == "$ngtcp2_upstream" ]] \
    || die "libngtcp2-dev $ngtcp2_version does not say NGTCP2_VERSION \"$ngtcp2_upstream\""
[[ "$(header_version "$new/include/nghttp3/version.h" NGHTTP3_VERSION)" == "$nghttp3_upstream" ]] \
    || die "libnghttp3-dev $nghttp3_version does not say NGHTTP3_VERSION \"$nghttp3_upstream\""

src="$new/src/ngtcp2-$ngtcp2_upstream"
mkdir -p "$new/src"
tar -xJf "$dl/$orig" -C "$new/src" || die "extracting $orig failed"
[[ -f "$src/crypto/boringssl/boringssl.c" && -f "$src/crypto/shared.c" ]] \
    || die "$orig lacks crypto/boringssl/boringssl.c or crypto/shared.c"

# --- ngtcp2's BoringSSL crypto helper ---------------------------------------------------
# What ngtcp2's own build would put into config.h on this machine (only byte-order
# helpers in lib/ngtcp2_net.h and crypto/boringssl/boringssl.c depend on it).
[[ -f "$ssl_include/openssl/ssl.h" ]] || die "no BoringSSL headers in $ssl_include (android-libboringssl-dev)"
command -v "$cc" >/dev/null || die "no C compiler ($cc)"
probe() { printf '%b\n' "$1" | "$cc" -x c -fsyntax-only - >/dev/null 2>&1; }
defs=()
for h in arpa/inet.h netinet/in.h byteswap.h endian.h sys/endian.h; do
    macro="HAVE_$(tr 'a-z/.' 'A-Z__' <<<"$h")"
    if probe "#include <$h>"; then defs+=("-D$macro=1"); fi
done
probe '#include <endian.h>\nunsigned long long f(unsigned long long x) { return be64toh(x); }' \
    && defs+=(-DHAVE_DECL_BE64TOH=1) || defs+=(-DHAVE_DECL_BE64TOH=0)
probe '#include <byteswap.h>\nunsigned long long f(unsigned long long x) { return bswap_64(x); }' \
    && defs+=(-DHAVE_DECL_BSWAP_64=1) || defs+=(-DHAVE_DECL_BSWAP_64=0)
probe '#if __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__\n#error little\n#endif' && defs+=(-DWORDS_BIGENDIAN=1)

build="$dest/build"
rm -rf "$build"; mkdir -p "$build"
# The 1.x ngtcp2 headers from the new prefix, never /usr/include's 0.12 ones; BoringSSL's
# <openssl/*.h> from the Android directory, never OpenSSL 3's (libssl-dev).
incs=(-I"$src/crypto/includes" -I"$src/crypto" -I"$src/lib" -I"$new/include" -isystem "$ssl_include")
log "building the BoringSSL crypto helper from $orig (${defs[*]})"
for c in crypto/boringssl/boringssl.c crypto/shared.c; do
    "$cc" -c -O2 -g -fPIC "${defs[@]}" "${incs[@]}" "$src/$c" -o "$build/$(basename "$c" .c).o" \
        || die "compiling $c failed"
done
ar rcs "$newlib/libngtcp2_crypto_boringssl.a" "$build/boringssl.o" "$build/shared.o"
cp "$src/crypto/includes/ngtcp2/ngtcp2_crypto.h" "$src/crypto/includes/ngtcp2/ngtcp2_crypto_boringssl.h" \
   "$new/include/ngtcp2/"

log "linking and running the set-up check (cmake/stack-1x-selfcheck.c)"
"$cc" -O1 -g -Wall -Wextra -Werror -I"$new/include" -isystem "$ssl_include" \
    "$selfcheck_src" -o "$build/selfcheck" \
    "$newlib/libngtcp2_crypto_boringssl.a" "$newlib/libngtcp2.so" "$newlib/libnghttp3.so" \
    "$ssl_libdir/libssl.so" "$ssl_libdir/libcrypto.so" \
    -Wl,-rpath,"$newlib" -Wl,-rpath,"$ssl_libdir" -Wl,--enable-new-dtags \
    || die "linking the set-up check against the helper failed"
"$build/selfcheck" >&2 || die "the set-up check failed (see above)"

rm -rf "$prefix"
mv "$new" "$prefix"
printf '%s' "$want_stamp" > "$stamp"
log "ngtcp2 $ngtcp2_version + nghttp3 $nghttp3_version ready in $prefix (CMake: -DH3CO_STACK_PREFIX=$prefix)"
