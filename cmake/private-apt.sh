# Sourced by cmake/fetch-ngtcp2-source.sh and cmake/fetch-stack-1x.sh: a private apt
# configuration derived from the machine's own apt sources, so that the system's apt
# setup is never modified and no registry host name is written into the repo.
#
#   h3co_private_apt DIR TYPES [FROM_SUITE TO_SUITE]
#
# Writes DIR/sources.list (empty), DIR/sources.list.d/h3co-*.{list,sources}, DIR/lists,
# DIR/cache, and sets the array h3co_apt_opts (the -o options that make apt-get /
# apt-cache use them). TYPES replaces the entries' types ("deb-src", or "deb deb-src").
# With FROM_SUITE/TO_SUITE, only entries of suite FROM_SUITE are kept, switched to
# TO_SUITE (e.g. bookworm -> trixie); every other suite is dropped. Only entries whose
# type is "deb" are read; disabled deb822 stanzas (Enabled: no) and the files apt
# itself ignores (*.disabled, ...) are skipped.
#
# The caller defines die() (message, exit 1).

h3co_private_apt() {
    local dir="$1" types="$2" from="${3:-}" to="${4:-}"
    local etc="${H3CO_APT_ETC_DIR:-/etc/apt}"   # override only to test this function
    local f out n=0
    rm -rf "$dir"
    mkdir -p "$dir/sources.list.d" "$dir/lists/partial" "$dir/cache/archives/partial"
    : > "$dir/sources.list"        # empty: everything goes through sources.list.d

    shopt -s nullglob
    # One-line format: "deb [opts] URI SUITE COMPONENTS..." (opts may hold spaces).
    for f in "$etc/sources.list" "$etc"/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        out="$dir/sources.list.d/h3co-$n.list"; n=$((n + 1))
        awk -v types="$types" -v from="$from" -v to="$to" '
            /^[[:space:]]*deb[[:space:]]/ {
                nf = split($0, w, /[[:space:]]+/)
                i = (w[1] == "") ? 3 : 2            # the word after "deb"
                opts = ""
                if (w[i] ~ /^\[/) {
                    for (; i <= nf; i++) {
                        opts = opts (opts == "" ? "" : " ") w[i]
                        if (w[i] ~ /\]$/) { i++; break }
                    }
                }
                uri = w[i++]; suite = w[i++]; comps = ""
                for (; i <= nf && w[i] !~ /^#/; i++) if (w[i] != "") comps = comps " " w[i]
                if (uri == "" || suite == "") next
                if (from != "") { if (suite != from) next; suite = to }
                nt = split(types, t, " ")
                for (k = 1; k <= nt; k++)
                    print t[k] (opts == "" ? "" : " " opts) " " uri " " suite comps
            }' "$f" > "$out"
    done
    # deb822 format: keep stanzas whose Types include "deb"; continuation lines
    # (leading space) are kept verbatim.
    for f in "$etc"/sources.list.d/*.sources; do
        out="$dir/sources.list.d/h3co-$n.sources"; n=$((n + 1))
        awk -v types="$types" -v from="$from" -v to="$to" '
            function flush() {
                if (buf != "" && has_deb && !disabled && !no_suite) printf "%s\n", buf
                buf = ""; has_deb = 0; disabled = 0; no_suite = 0
            }
            /^[[:space:]]*$/ { flush(); next }
            /^#/ { next }
            /^[Tt]ypes:/ {
                line = $0; sub(/^[Tt]ypes:[[:space:]]*/, "", line)
                nt = split(line, t, /[[:space:]]+/)
                for (i = 1; i <= nt; i++) if (t[i] == "deb") has_deb = 1
                buf = buf "Types: " types "\n"; next
            }
            /^[Ss]uites:/ && from != "" {
                line = $0; sub(/^[Ss]uites:[[:space:]]*/, "", line)
                ns = split(line, s, /[[:space:]]+/); keep = ""
                for (i = 1; i <= ns; i++) if (s[i] == from) keep = to
                if (keep == "") no_suite = 1
                buf = buf "Suites: " keep "\n"; next
            }
            /^[Ee]nabled:[[:space:]]*[Nn][Oo]/ { disabled = 1 }
            { buf = buf $0 "\n" }
            END { flush() }
        ' "$f" > "$out"
    done
    shopt -u nullglob
    if ! grep -qs -E '^(deb|Types:)' "$dir"/sources.list.d/*; then
        if [[ -n "$from" ]]; then
            die "no 'deb' entry of suite '$from' in $etc/sources.list or $etc/sources.list.d/"
        fi
        die "no 'deb' entries found in $etc/sources.list or $etc/sources.list.d/"
    fi

    h3co_apt_opts=(
        -o "Dir::Etc::SourceList=$dir/sources.list"
        -o "Dir::Etc::SourceParts=$dir/sources.list.d"
        -o "Dir::State::Lists=$dir/lists"
        -o "Dir::Cache=$dir/cache"
        -o "Debug::NoLocking=1"
    )
    # As root, apt drops to the _apt user for downloads, which cannot write into a
    # root-owned private dir; download as the invoking user instead (no warning).
    if [[ "$(id -u)" -eq 0 ]]; then
        h3co_apt_opts+=(-o "APT::Sandbox::User=root")
    fi
}
