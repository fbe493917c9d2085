#!/usr/bin/env bash
# Run the standard suites against every real Zabbix peer of the version matrix
# (ci/matrix.tsv: Debian 12's 6.0.14 peers on the host, Debian 13's 7.0.22 peers in the
# trixie root), then print the merged coverage matrix (message kinds × versions: which
# were exchanged with a real peer) and pass/fail counts and wall time per version.
#
# Usage:
#   ci/run-matrix.sh [--versions 6.0,7.0] [--out DIR] [--matrix FILE] [--only LABEL]
#                    [--with-report FILE]
#
#   --versions LIST  versions of ci/matrix.tsv to run (default: all)
#   --out DIR        JUnit and JSON report per run, run dirs of failed scenarios
#                    (default: target/matrix)
#   --matrix FILE    the run list (default: ci/matrix.tsv)
#   --only LABEL     only the lines with this label (repeatable)
#   --with-report F  also merge this `run --json` report into the coverage matrix, e.g.
#                    the reference-peer run, so its cells show `ref` (repeatable)
#
# Encrypted lines: a `TLS=connect`, `TLS=accept`, `TLS=accept-any` or `TLS=both` entry in
# the last column runs the line with a PSK made for this run (OUT/tls/run.psk, 256 random
# bits, never kept in the repository): the harness gets `--tls-connect psk`, `--tls-accept
# psk`, `--tls-accept unencrypted,psk` or both `--tls-connect psk --tls-accept psk` (it
# plays an active and a passive proxy) with identity zbx-conform and that file, the peer
# profile gets PSK_IDENTITY, PSK_FILE and PSK_DIR (its folder, which the trixie-root
# profiles mount inside the root).
# A `CERT=connect`, `CERT=accept` or `CERT=accept-any` entry runs the line with
# certificates made for this run by the openssl command in OUT/tls (a CA, the peer's
# certificate, the harness's, and for the refusal scenarios one from another CA and one
# of another subject; in a folder only this user can read, replaced on the next run): the harness
# gets `--tls-connect cert`, `--tls-accept cert` or `--tls-accept unencrypted,cert` with
# its certificate, the peer profile gets CA_FILE, CERT_FILE, KEY_FILE, TLS_DIR and
# TLS_SUBJECT_SETTING (the peer accepts the harness's subject only), the refusal
# scenarios ROGUE_CERT_FILE/ROGUE_KEY_FILE and OTHER_CERT_FILE/OTHER_KEY_FILE.
#
# Needs: the 6.0 peers (ci/install-peers.sh --server), the Go SDK test plugin
# (ci/plugins/build.sh) and, for 7.0, the trixie root (ci/trixie/build-root.sh; root).
# Environment: ZBX_CONFORM (zbx-conform binary; default target/debug/zbx-conform, built
# if missing). Exit code: 0 when every run passed, else 1 (2 for usage errors).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"

log() { printf 'run-matrix: %s\n' "$*" >&2; }
usage() {
    sed -n '7,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

VERSIONS=""
OUT=target/matrix
MATRIX=ci/matrix.tsv
ONLY=()
EXTRA_REPORTS=()
while (($#)); do
    case $1 in
    --versions) VERSIONS=${2:?--versions needs a list}; shift 2 ;;
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    --matrix) MATRIX=${2:?--matrix needs a file}; shift 2 ;;
    --only) ONLY+=("${2:?--only needs a label}"); shift 2 ;;
    --with-report)
        [[ -f ${2:-} ]] || { log "--with-report: no such file: ${2:-}"; exit 2; }
        EXTRA_REPORTS+=("$2"); shift 2 ;;
    -h | --help) usage ;;
    *) log "unknown argument '$1'"; usage ;;
    esac
done
[[ -f $MATRIX ]] || { log "no such run list: $MATRIX"; exit 2; }

ZBXC=${ZBX_CONFORM:-target/debug/zbx-conform}
if [[ ! -x $ZBXC ]]; then
    log "building zbx-conform"
    cargo build -q
fi

wanted_version() { [[ -z $VERSIONS ]] || [[ ",$VERSIONS," == *",$1,"* ]]; }
wanted_label() {
    ((${#ONLY[@]} == 0)) && return 0
    local l
    for l in "${ONLY[@]}"; do [[ $l == "$1" ]] && return 0; done
    return 1
}

rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # peers chdir and chroot: every path handed to them is absolute
# The key of the encrypted lines: made now, readable by this user only, never printed.
PSK_DIR="$OUT/tls"
mkdir -p "$PSK_DIR"
chmod 700 "$PSK_DIR"
(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$PSK_DIR/run.psk")
PSK_IDENTITY=zbx-conform
TLS_DIR=$PSK_DIR
HARNESS_SUBJECT="CN=zbxc harness,O=zbx-conform"
certs_made=0
# ssl NAME CA SUBJECT: a key and a certificate NAME.{key,crt} in TLS_DIR, signed by CA
# (CA "-" makes a self-signed CA). SUBJECT is in openssl's /O=../CN=.. form.
ssl() {
    local name=$1 ca=$2 subject=$3
    (
        cd "$TLS_DIR" && umask 077
        if [[ $ca == - ]]; then
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "$subject" \
                -keyout "$name.key" -out "$name.crt"
        else
            openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$name.key" -out "$name.csr"
            openssl x509 -req -days 2 -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" \
                -CAcreateserial -out "$name.crt"
        fi
    ) >/dev/null 2>&1 || { log "openssl cannot make the $name certificate (is openssl installed?)"; exit 1; }
}
make_certs() {
    ((certs_made)) && return 0
    ssl ca - "/O=zbx-conform/CN=zbxc test CA"
    ssl peer ca "/O=zbx-conform/CN=zbxc peer"
    ssl harness ca "/O=zbx-conform/CN=zbxc harness"
    ssl other ca "/O=zbx-conform/CN=zbxc someone else"
    ssl rogue-ca - "/O=zbx-conform/CN=zbxc rogue CA"
    ssl rogue rogue-ca "/O=zbx-conform/CN=zbxc harness"
    chmod 644 "$TLS_DIR"/*.crt
    certs_made=1
}
declare -A PASSED FAILED OTHER WALL_MS RUNS
versions_seen=()
worst=0

while read -r version label scenarios profile vars; do
    [[ -z ${version:-} || $version == \#* ]] && continue
    wanted_version "$version" || continue
    wanted_label "$label" || continue
    [[ -v "RUNS[$version]" ]] || {
        versions_seen+=("$version")
        RUNS[$version]=0 PASSED[$version]=0 FAILED[$version]=0 OTHER[$version]=0 WALL_MS[$version]=0
    }
    name="$version-$label"
    log "== $name: $scenarios against $profile"
    started=$(($(date +%s%N) / 1000000))
    # A line can take minutes: say every 10 s how far it is (results so far, and the
    # harness's last line: what it is still waiting for, or the last result).
    (
        while sleep 10; do
            results=$(grep -cE '^(PASS|FAIL|SKIP|ERROR|UNREACH)' "$OUT/$name.txt" 2>/dev/null)
            last=$(grep -v '^[[:space:]]*$' "$OUT/$name.txt" 2>/dev/null | tail -n 1 | cut -c1-110)
            log "$name: still running ($((($(date +%s%N) / 1000000 - started) / 1000)) s, ${results:-0} results so far): ${last:-no output yet}"
        done
    ) &
    heartbeat=$!
    set +e
    if [[ $profile == certify:* ]]; then
        "$ZBXC" certify-plugin "${profile#certify:}" --version "$version" \
            --junit "$OUT/$name.xml" --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1
    else
        IFS=, read -r -a paths <<<"$scenarios"
        var_args=()
        tls_args=()
        cert_args=()
        if [[ -n ${vars:-} ]]; then
            IFS=, read -r -a pairs <<<"$vars"
            for pair in "${pairs[@]}"; do
                case $pair in
                TLS=connect) tls_args=(--tls-connect psk) ;;
                TLS=accept) tls_args=(--tls-accept psk) ;;
                TLS=accept-any) tls_args=(--tls-accept unencrypted,psk) ;;
                TLS=both) tls_args=(--tls-connect psk --tls-accept psk) ;;
                TLS=*) log "$name: unknown $pair (connect, accept, accept-any or both)"; exit 2 ;;
                CERT=connect) cert_args=(--tls-connect cert) ;;
                CERT=accept) cert_args=(--tls-accept cert) ;;
                CERT=accept-any) cert_args=(--tls-accept unencrypted,cert) ;;
                CERT=*) log "$name: unknown $pair (connect, accept or accept-any)"; exit 2 ;;
                *) var_args+=(--var "$pair") ;;
                esac
            done
        fi
        if ((${#tls_args[@]})); then
            tls_args+=(--tls-psk-identity "$PSK_IDENTITY" --tls-psk-file "$PSK_DIR/run.psk")
            var_args+=(--var "PSK_IDENTITY=$PSK_IDENTITY" --var "PSK_FILE=$PSK_DIR/run.psk"
                --var "PSK_DIR=$PSK_DIR")
        fi
        if ((${#cert_args[@]})); then
            make_certs
            tls_args+=("${cert_args[@]}" --tls-ca-file "$TLS_DIR/ca.crt"
                --tls-cert-file "$TLS_DIR/harness.crt" --tls-key-file "$TLS_DIR/harness.key")
            var_args+=(--var "TLS_DIR=$TLS_DIR" --var "CA_FILE=$TLS_DIR/ca.crt"
                --var "CERT_FILE=$TLS_DIR/peer.crt" --var "KEY_FILE=$TLS_DIR/peer.key"
                --var "TLS_SUBJECT_SETTING=TLSServerCertSubject=$HARNESS_SUBJECT"
                --var "ROGUE_CERT_FILE=$TLS_DIR/rogue.crt" --var "ROGUE_KEY_FILE=$TLS_DIR/rogue.key"
                --var "OTHER_CERT_FILE=$TLS_DIR/other.crt" --var "OTHER_KEY_FILE=$TLS_DIR/other.key")
        fi
        "$ZBXC" run "${paths[@]}" --version "$version" --start-peer "$profile" --jobs 2 \
            "${var_args[@]}" "${tls_args[@]}" \
            --run-dir "$OUT/run-$name" --no-matrix --color never \
            --junit "$OUT/$name.xml" --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1
    fi
    rc=$?
    kill "$heartbeat" 2>/dev/null
    wait "$heartbeat" 2>/dev/null
    set -e
    elapsed=$(($(date +%s%N) / 1000000 - started))
    counts=$(tail -n 1 "$OUT/$name.txt")
    # "N passed, N failed[, N errors][, N unreachable][, N skipped] in T"
    p=$(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<<"$counts")
    f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$counts")
    o=0
    for word in errors unreachable; do
        n=$(sed -n "s/.* \\([0-9]*\\) $word.*/\\1/p" <<<"$counts")
        o=$((o + ${n:-0}))
    done
    if [[ -z $p || -z $f ]]; then
        # No counts line: the harness refused the run (usage error, missing peer).
        p=0 f=0 o=1
        tail -n 20 "$OUT/$name.txt" >&2
    elif ((rc != 0)); then
        grep -E '^(FAIL|ERROR|UNREACH) ' "$OUT/$name.txt" >&2 || true
    fi
    ((rc == 0)) || worst=1
    log "$name: $counts (exit $rc, $((elapsed / 1000)).$((elapsed % 1000 / 100)) s wall)"
    RUNS[$version]=$((RUNS[$version] + 1))
    PASSED[$version]=$((PASSED[$version] + p))
    FAILED[$version]=$((FAILED[$version] + f))
    OTHER[$version]=$((OTHER[$version] + o))
    WALL_MS[$version]=$((WALL_MS[$version] + elapsed))
done <"$MATRIX"

if ((${#versions_seen[@]} == 0)); then
    log "no line of $MATRIX matched"
    exit 2
fi

echo
echo "== coverage across all runs (JSON reports in $OUT)"
shopt -s nullglob
"$ZBXC" matrix "$OUT"/*.json "${EXTRA_REPORTS[@]}"
echo
printf '%-8s %5s %7s %7s %14s %9s\n' version runs passed failed error/unreach seconds
for v in "${versions_seen[@]}"; do
    printf '%-8s %5d %7d %7d %14d %7d.%d\n' "$v" "${RUNS[$v]}" "${PASSED[$v]}" "${FAILED[$v]}" \
        "${OTHER[$v]}" $((WALL_MS[$v] / 1000)) $((WALL_MS[$v] % 1000 / 100))
done
exit "$worst"
