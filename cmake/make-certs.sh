#!/usr/bin/env bash
# Make the test/demo PKI in OUTDIR with the openssl CLI (ECDSA P-256 keys):
#   ca.pem / ca.key                 test CA (CA:TRUE, keyCertSign)
#   server.pem / server.key         signed by ca.pem; SAN DNS:localhost,
#                                   IP:127.0.0.1, IP:::1; serverAuth; 825 days
#   server-chain.pem                server.pem + ca.pem
#   other-ca.pem / other-ca.key     an unrelated CA (wrong-CA tests)
#   wronghost.pem / wronghost.key   signed by ca.pem, SAN DNS:not-localhost.invalid
#                                   only (wrong-host tests)
#   big-chain.pem / big-chain.key   a leaf like server.pem under 5 intermediates
#                                   (ca.pem -> int1 -> ... -> int5 -> leaf), leaf
#                                   first; each intermediate carries a 2 KB comment, so
#                                   the chain is > 10 KB: far more than 3 x a client's
#                                   Initial (the amplificationlimit interop cell)
#   sim-server.pem / sim-server.key like server.pem, but an RSA-2048 key: h3co_sim's
#                                   server. An ECDSA signature is randomized and its DER
#                                   length varies (70-72 bytes), which moves the handshake's
#                                   bytes and with them the seed's trace; RSA-PSS's is fixed
# Idempotent: does nothing when OUTDIR/ca.pem exists, is newer than this script
# and all the other files are there.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out="$1"
self="${BASH_SOURCE[0]}"
files=(ca.pem ca.key server.pem server.key server-chain.pem
       other-ca.pem other-ca.key wronghost.pem wronghost.key
       renewed.pem renewed.key sni-a.pem sni-a.key sni-b.pem sni-b.key
       client.pem client.key other-client.pem other-client.key
       big-chain.pem big-chain.key sim-server.pem sim-server.key)

if [[ -f "$out/ca.pem" && "$out/ca.pem" -nt "$self" ]]; then
    complete=1
    for f in "${files[@]}"; do [[ -f "$out/$f" ]] || complete=0; done
    if ((complete)); then
        exit 0
    fi
fi

command -v openssl >/dev/null || { echo "make-certs: openssl CLI not found" >&2; exit 1; }

mkdir -p "$out"
tmp="$(mktemp -d "${out%/}/.make-certs.XXXXXX")"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

ossl() {
    local log
    if ! log="$(openssl "$@" 2>&1)"; then
        echo "make-certs: openssl $1 failed:" >&2
        echo "$log" >&2
        exit 1
    fi
}

genkey() { # file; key_alg=rsa in the environment: RSA-2048 instead of P-256
    if [[ ${key_alg:-ec} == rsa ]]; then
        ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/$1"
    else
        ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$1"
    fi
}
serial() { echo "0x$(openssl rand -hex 8)"; }

make_ca() { # name subject
    genkey "$1.key"
    ossl req -x509 -new -key "$tmp/$1.key" -out "$tmp/$1.pem" -days 3650 -sha256 \
        -subj "$2" -set_serial "$(serial)" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash"
}

make_leaf() { # name subject san [issuer] [extendedKeyUsage]
    local issuer="${4:-ca}" eku="${5:-serverAuth}"
    genkey "$1.key"
    ossl req -new -key "$tmp/$1.key" -out "$tmp/$1.csr" -subj "$2"
    cat > "$tmp/$1.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=$eku
subjectAltName=$3
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
    ossl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$issuer.pem" -CAkey "$tmp/$issuer.key" \
        -set_serial "$(serial)" -days 825 -sha256 -extfile "$tmp/$1.ext" -out "$tmp/$1.pem"
    rm -f "$tmp/$1.csr" "$tmp/$1.ext"
}

make_ca ca "/CN=h3co test CA"
make_ca other-ca "/CN=h3co unrelated test CA"
make_leaf server "/CN=localhost" "DNS:localhost,IP:127.0.0.1,IP:::1"
key_alg=rsa make_leaf sim-server "/CN=localhost" "DNS:localhost,IP:127.0.0.1,IP:::1"
make_leaf wronghost "/CN=not-localhost.invalid" "DNS:not-localhost.invalid"
make_leaf renewed "/O=h3co renewed/CN=localhost" "DNS:localhost,IP:127.0.0.1,IP:::1"
make_leaf sni-a "/CN=a.h3co.test" "DNS:a.h3co.test"
make_leaf sni-b "/CN=b.h3co.test" "DNS:b.h3co.test"
make_leaf client "/O=h3co tests/CN=h3co test client" \
    "DNS:client.h3co.test,URI:spiffe://h3co.test/client" ca clientAuth
make_leaf other-client "/CN=h3co unrelated client" "DNS:other.h3co.test" other-ca clientAuth
cat "$tmp/server.pem" "$tmp/ca.pem" > "$tmp/server-chain.pem"

# A long chain for the amplificationlimit case. Like the interop runner's chain (which pads its
# certificates with long random SANs), it is large by padding: an nsComment of 2000 characters
# per intermediate. EC keys keep it fast to make.
make_intermediate() { # name subject issuer
    genkey "$1.key"
    ossl req -new -key "$tmp/$1.key" -out "$tmp/$1.csr" -subj "$2"
    cat > "$tmp/$1.ext" <<EXT
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
nsComment=$(printf 'h3co amplificationlimit padding %.0s' $(seq 1 62))
EXT
    ossl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$3.pem" -CAkey "$tmp/$3.key" \
        -set_serial "$(serial)" -days 825 -sha256 -extfile "$tmp/$1.ext" -out "$tmp/$1.pem"
    rm -f "$tmp/$1.csr" "$tmp/$1.ext"
}
issuer=ca
for i in 1 2 3 4 5; do
    make_intermediate "int$i" "/CN=h3co test intermediate $i" "$issuer"
    issuer="int$i"
done
make_leaf big-chain "/CN=localhost" "DNS:localhost,IP:127.0.0.1,IP:::1" int5
cat "$tmp/big-chain.pem" "$tmp"/int5.pem "$tmp"/int4.pem "$tmp"/int3.pem "$tmp"/int2.pem "$tmp"/int1.pem \
    > "$tmp/chain.tmp"
mv "$tmp/chain.tmp" "$tmp/big-chain.pem"

# Sanity checks.
ossl verify -CAfile "$tmp/ca.pem" "$tmp/server.pem"
ossl verify -CAfile "$tmp/ca.pem" -verify_hostname localhost "$tmp/server.pem"
ossl verify -CAfile "$tmp/ca.pem" -verify_ip ::1 "$tmp/server.pem"
ossl verify -CAfile "$tmp/ca.pem" "$tmp/wronghost.pem"
ossl verify -CAfile "$tmp/ca.pem" -purpose sslclient "$tmp/client.pem"
ossl verify -CAfile "$tmp/other-ca.pem" -purpose sslclient "$tmp/other-client.pem"
ossl verify -CAfile "$tmp/ca.pem" -verify_hostname b.h3co.test "$tmp/sni-b.pem"
ossl verify -CAfile "$tmp/ca.pem" -untrusted "$tmp/big-chain.pem" -verify_ip 127.0.0.1 "$tmp/big-chain.pem"
big_der=0
while read -r n; do big_der=$((big_der + n)); done < <(
    awk '/BEGIN CERT/{f=1; b=""} f{b=b $0 "\n"} /END CERT/{f=0; printf "%s", b > "'"$tmp"'/one.pem"; close("'"$tmp"'/one.pem");
         system("openssl x509 -in '"$tmp"'/one.pem -outform DER | wc -c")}' "$tmp/big-chain.pem")
rm -f "$tmp/one.pem"
if ((big_der < 8192)); then
    echo "make-certs: big-chain.pem is only $big_der bytes of DER, want >= 8192" >&2; exit 1
fi
if openssl verify -CAfile "$tmp/other-ca.pem" "$tmp/server.pem" >/dev/null 2>&1; then
    echo "make-certs: server.pem unexpectedly verifies against other-ca.pem" >&2; exit 1
fi
if openssl verify -CAfile "$tmp/ca.pem" -verify_hostname localhost "$tmp/wronghost.pem" >/dev/null 2>&1; then
    echo "make-certs: wronghost.pem unexpectedly matches localhost" >&2; exit 1
fi

# gtlsserver (GnuTLS, used by the interop tests) must accept the key and cert:
# it exits at once when it cannot load them. It needs a port (no port 0), so
# pick random high ones and retry on a (rare) clash.
gtlsserver="$(command -v gtlsserver || true)"
[[ -n "$gtlsserver" || ! -x /usr/sbin/gtlsserver ]] || gtlsserver=/usr/sbin/gtlsserver
if [[ -n "$gtlsserver" ]]; then
    ok=0
    for _ in 1 2 3; do
        port=$((20000 + RANDOM % 40000))
        "$gtlsserver" --no-quic-dump -q -d "$tmp" 127.0.0.1 "$port" \
            "$tmp/server.key" "$tmp/server-chain.pem" >"$tmp/gtls.log" 2>&1 &
        pid=$!
        sleep 1
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            ok=1; break
        fi
        wait "$pid" 2>/dev/null || true
    done
    if ((!ok)); then
        echo "make-certs: gtlsserver did not accept server.key/server-chain.pem:" >&2
        cat "$tmp/gtls.log" >&2
        exit 1
    fi
    rm -f "$tmp/gtls.log"
else
    echo "make-certs: note: gtlsserver not installed, skipping its check" >&2
fi

chmod 600 "$tmp"/*.key
for f in "${files[@]}"; do mv -f "$tmp/$f" "$out/$f"; done
touch "$out/ca.pem"   # newest file: the idempotence stamp
echo "make-certs: certificates in $out"
