#!/usr/bin/env bash
# Run the zbx-conform server<->proxy conformance suite against YOUR zabbix_proxy build,
# for use in your CI. For every scenario a fresh proxy (SQLite build) is started on
# 127.0.0.1 from ci/peers/zabbix-proxy-{passive,active}.yaml, with its own config, DB
# and log in the output directory, and stopped by PID afterwards. The harness plays the
# Zabbix server.
#
# Usage:
#   ci/run-suite.sh [--proxy PATH] [--mode passive|active|both] [--out DIR]
#                   [--version V] [--jobs N] [-- EXTRA zbx-conform run ARGS...]
#
#   --proxy PATH   zabbix_proxy binary to test (env ZABBIX_PROXY; default
#                  /usr/sbin/zabbix_proxy). Must be built with SQLite3
#                  (./configure --enable-proxy --with-sqlite3).
#   --mode M       passive, active or both (env ZBXC_MODE; default both)
#   --out DIR      reports and peer run dirs (env ZBXC_OUT; default ./zbx-conform-out):
#                  junit-<mode>.xml, report-<mode>.json, run-<mode>/<scenario>/proxy.log
#   --version V    protocol version of the suite (env ZBXC_VERSION; default: the
#                  major.minor the binary reports with -V, e.g. 6.0)
#   --jobs N       proxies running at once (env ZBXC_JOBS; default 2)
#
# Environment:
#   ZBX_CONFORM          zbx-conform binary (default: build it with cargo --release)
#   ZABBIX_PROXY_SCHEMA  SQLite schema.sql.gz to preload the proxy DB from (default: the
#                        Debian package's; without it the proxy creates its DB itself)
#
# Exit code: the harness's — 0 all passed, 1 a check failed, 2 usage or scenario error,
# 3 a proxy could not be started or reached; with --mode both, the worst of the two
# (2 > 3 > 1 > 0). A run whose scenarios all passed still exits 1 when a proxy log shows
# rejected input or a crash: a real proxy answers "success" to a configuration it then
# fails to apply, which only its log tells.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

log() { printf 'run-suite: %s\n' "$*" >&2; }
usage() {
    sed -n '7,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

PROXY=${ZABBIX_PROXY:-/usr/sbin/zabbix_proxy}
MODE=${ZBXC_MODE:-both}
OUT=${ZBXC_OUT:-zbx-conform-out}
VERSION=${ZBXC_VERSION:-}
JOBS=${ZBXC_JOBS:-2}
EXTRA=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --proxy) PROXY=${2:?--proxy needs a path}; shift 2 ;;
        --mode) MODE=${2:?--mode needs a value}; shift 2 ;;
        --out) OUT=${2:?--out needs a directory}; shift 2 ;;
        --version) VERSION=${2:?--version needs a value}; shift 2 ;;
        --jobs) JOBS=${2:?--jobs needs a number}; shift 2 ;;
        -h | --help) usage ;;
        --) shift; EXTRA=("$@"); break ;;
        *) log "unknown argument '$1'"; usage ;;
    esac
done

case $MODE in
    passive | active) MODES=("$MODE") ;;
    both) MODES=(passive active) ;;
    *) log "--mode must be passive, active or both, got '$MODE'"; exit 2 ;;
esac
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || { log "--jobs must be a positive number, got '$JOBS'"; exit 2; }

if [[ $PROXY != */* ]]; then
    PROXY=$(command -v "$PROXY" || true)
fi
if [[ -z $PROXY || ! -x $PROXY ]]; then
    log "zabbix_proxy binary '${PROXY:-}' not found or not executable (--proxy PATH or ZABBIX_PROXY)"
    exit 3
fi
PROXY=$(cd "$(dirname "$PROXY")" && pwd)/$(basename "$PROXY")

# The suite's protocol version: what the binary says it is, unless given.
BANNER=$("$PROXY" -V 2>/dev/null | head -n 1 || true)
if [[ -z $VERSION ]]; then
    if [[ $BANNER =~ ([0-9]+)\.([0-9]+)\.[0-9]+ ]]; then
        VERSION=${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
    else
        log "cannot tell the version of $PROXY from '$BANNER': pass --version"
        exit 2
    fi
fi
log "testing $PROXY (${BANNER:-unknown}) with the protocol $VERSION suite, mode(s): ${MODES[*]}"

if [[ -n ${ZBX_CONFORM:-} ]]; then
    ZBXC=$ZBX_CONFORM
else
    log "building zbx-conform (cargo build --release)"
    (cd "$ROOT" && cargo build --release -q --bin zbx-conform)
    ZBXC=$ROOT/target/release/zbx-conform
fi
[[ -x $ZBXC ]] || { log "zbx-conform binary '$ZBXC' not found"; exit 2; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export ZABBIX_PROXY=$PROXY

# Log lines that mean a proxy rejected what a scenario sent, or crashed.
BAD_LOG='failed to update local proxy configuration copy|Something impossible has just happened|Crashing|One child process died'

# Worst exit code wins: 2 (usage/scenario) > 3 (peer) > 1 (check failed) > 0.
rank() { case $1 in 0) echo 0 ;; 1) echo 1 ;; 3) echo 2 ;; *) echo 3 ;; esac; }
code=0
for mode in "${MODES[@]}"; do
    rc=0
    rm -rf "$OUT/run-$mode"
    log "== $mode proxy"
    "$ZBXC" --root "$ROOT" run "$ROOT/scenarios/server-proxy/$mode" \
        --version "$VERSION" \
        --start-peer "$ROOT/ci/peers/zabbix-proxy-$mode.yaml" \
        --run-dir "$OUT/run-$mode" \
        --jobs "$JOBS" \
        --junit "$OUT/junit-$mode.xml" \
        --json "$OUT/report-$mode.json" \
        "${EXTRA[@]}" || rc=$?
    if [[ $rc -eq 0 ]] && grep -EH "$BAD_LOG" "$OUT/run-$mode"/*/proxy.log >&2 2>/dev/null; then
        log "$mode: every scenario passed, but the proxy logged rejected input or a crash (above)"
        rc=1
    fi
    log "$mode: exit code $rc (reports: $OUT/junit-$mode.xml, $OUT/report-$mode.json)"
    if [[ $(rank "$rc") -gt $(rank "$code") ]]; then
        code=$rc
    fi
done
exit "$code"
