#!/usr/bin/env bash
# Start/stop a throwaway real Zabbix proxy (Debian 12 zabbix-proxy-sqlite3, 6.0.14) for
# the zbx-conform interoperability tests.
#
#   ci/peers/zabbix-proxy.sh start passive|active RUNDIR
#   ci/peers/zabbix-proxy.sh stop RUNDIR
#   ci/peers/zabbix-proxy.sh status RUNDIR
#
# start renders ci/peers/zabbix_proxy.conf.tmpl into RUNDIR/zabbix_proxy.conf, starts the
# proxy (it daemonizes and writes RUNDIR/proxy.pid), waits until it is ready and prints
# shell-style KEY=VALUE lines on stdout (PROXY_PID, PROXY_PORT, PROXY_CONF, PROXY_LOG,
# PROXY_STARTUP_MS).
# On failure it prints the log tail, stops whatever it started, and exits non-zero.
#
# Ready means: the log has the main process's "started [main process]" line and, when
# trappers are configured, 127.0.0.1:$PROXY_PORT is listening.
#
# stop signals the PID from RUNDIR/proxy.pid (never a process name): TERM, wait, then
# KILL of the proxy's process group (the daemon runs in a session of its own, shared by
# its workers, which ignore TERM from anyone but their parent).
#
# Environment (caller picks the ports; nothing here chooses one):
#   PROXY_PORT                  required: ListenPort on 127.0.0.1
#   SERVER_PORT                 required for active: the server (trapper) port on 127.0.0.1
#   PROXY_SERVER                Server= value (default: passive 127.0.0.1,
#                               active 127.0.0.1:$SERVER_PORT)
#   PROXY_HOSTNAME              default zbx-conform-proxy
#   PROXY_DEBUG_LEVEL           default 3
#   PROXY_TIMEOUT               default 3        (1-30)
#   PROXY_TRAPPER_TIMEOUT       default 30       (1-300)
#   PROXY_HEARTBEAT_FREQUENCY   default 1        (0-3600, active only)
#   PROXY_CONFIG_FREQUENCY      default 5        (active only)
#   PROXY_DATA_SENDER_FREQUENCY default 1        (1-3600, active only)
#   PROXY_START_TRAPPERS        default 2
#   PROXY_EXTRA_CONF            optional file whose lines are appended to the config
#   PROXY_START_TIMEOUT         seconds to wait for readiness (default 30)
#   PROXY_STOP_TIMEOUT          seconds to wait after TERM before KILL (default 15)
#   ZABBIX_PROXY_BIN            default: zabbix_proxy from PATH or /usr/sbin
#   PROXY_DB_INIT               schema (default): load the packaged schema.sql.gz with the
#                               sqlite3 CLI in one transaction (~40 ms); proxy: let the
#                               proxy create the DB itself (~0.9 s, it commits per statement)
#   PROXY_SCHEMA                default /usr/share/zabbix-proxy-sqlite3/schema.sql.gz
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE=$HERE/zabbix_proxy.conf.tmpl

LOG_TAG=zabbix-proxy
# shellcheck source=ci/peers/lib.sh
. "$HERE/lib.sh"

usage() {
    sed -n '5,7p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2
    exit 2
}

proxy_bin() {
    if [[ -n ${ZABBIX_PROXY_BIN:-} ]]; then
        printf '%s\n' "$ZABBIX_PROXY_BIN"
    elif command -v zabbix_proxy >/dev/null; then
        command -v zabbix_proxy
    elif [[ -x /usr/sbin/zabbix_proxy ]]; then
        printf '/usr/sbin/zabbix_proxy\n'
    else
        die "zabbix_proxy not found (run ci/install-peers.sh)"
    fi
}

read_pid() { read_pidfile "$1/proxy.pid"; }

# True when PID is a zabbix_proxy using RUNDIR's config.
is_our_proxy() { pid_alive "$1" && cmdline_has "$1" zabbix_proxy "$2/zabbix_proxy.conf"; }

log_tail() { tail_files "$1/proxy.stderr" "$1/proxy.log"; }

# Create the SQLite DB from the packaged schema in a single transaction. Without a DB
# file the proxy creates one itself from its built-in copy of the same schema, but
# statement by statement, which costs most of its startup time.
init_db() {
    local db=$1 schema=${PROXY_SCHEMA:-/usr/share/zabbix-proxy-sqlite3/schema.sql.gz}
    case ${PROXY_DB_INIT:-schema} in
        proxy) return 0 ;;
        schema) ;;
        *) die "PROXY_DB_INIT must be schema or proxy, got '${PROXY_DB_INIT}'" ;;
    esac
    if [[ ! -f $schema ]] || ! command -v sqlite3 >/dev/null; then
        log "no $schema or sqlite3 CLI: the proxy will create its DB itself"
        return 0
    fi
    if ! { printf 'BEGIN;\n'; gzip -dc "$schema"; printf 'COMMIT;\n'; } | sqlite3 -bail "$db" >/dev/null; then
        rm -f "$db"
        die "loading $schema into $db failed"
    fi
}

# Variables named like the template's placeholders are read by render() through
# indirect expansion, which shellcheck cannot follow.
# shellcheck disable=SC2034
cmd_start() {
    [[ $# -eq 2 ]] || usage
    local mode=$1 rundir=$2
    case $mode in
        passive) PROXY_MODE=1 ;;
        active) PROXY_MODE=0 ;;
        *) die "MODE must be passive or active, got '$mode'" ;;
    esac
    [[ -n ${PROXY_PORT:-} ]] || die "PROXY_PORT must be set (the caller picks the port)"
    valid_port "$PROXY_PORT" || die "bad PROXY_PORT '$PROXY_PORT'"
    if [[ $mode == active ]]; then
        [[ -n ${SERVER_PORT:-} ]] || die "SERVER_PORT must be set for an active proxy"
        valid_port "$SERVER_PORT" || die "bad SERVER_PORT '$SERVER_PORT'"
        PROXY_SERVER=${PROXY_SERVER:-127.0.0.1:$SERVER_PORT}
    else
        PROXY_SERVER=${PROXY_SERVER:-127.0.0.1}
    fi
    PROXY_HOSTNAME=${PROXY_HOSTNAME:-zbx-conform-proxy}
    PROXY_DEBUG_LEVEL=${PROXY_DEBUG_LEVEL:-3}
    PROXY_TIMEOUT=${PROXY_TIMEOUT:-3}
    PROXY_TRAPPER_TIMEOUT=${PROXY_TRAPPER_TIMEOUT:-30}
    PROXY_HEARTBEAT_FREQUENCY=${PROXY_HEARTBEAT_FREQUENCY:-1}
    PROXY_CONFIG_FREQUENCY=${PROXY_CONFIG_FREQUENCY:-5}
    PROXY_DATA_SENDER_FREQUENCY=${PROXY_DATA_SENDER_FREQUENCY:-1}
    PROXY_START_TRAPPERS=${PROXY_START_TRAPPERS:-2}
    # Only root needs AllowRoot; as another user the proxy runs as that user anyway.
    if [[ $(id -u) -eq 0 ]]; then PROXY_ALLOW_ROOT=1; else PROXY_ALLOW_ROOT=0; fi
    local start_timeout=${PROXY_START_TIMEOUT:-30}
    is_uint "$start_timeout" || die "bad PROXY_START_TIMEOUT '$start_timeout'"

    mkdir -p "$rundir"
    RUNDIR=$(cd "$rundir" && pwd) # absolute: the daemon chdirs to /
    rundir=$RUNDIR

    local pid
    if pid=$(read_pid "$rundir") && is_our_proxy "$pid" "$rundir"; then
        die "a proxy from $rundir is already running (pid $pid); stop it first"
    fi
    if port_listening "$PROXY_PORT"; then
        die "port $PROXY_PORT is already in use"
    fi
    # A fresh run: stale files from an earlier run would confuse readiness checks,
    # and every run starts from an empty DB.
    rm -f "$rundir"/proxy.db "$rundir"/proxy.log "$rundir"/proxy.pid "$rundir"/proxy.stderr \
        "$rundir"/zabbix_proxy_*.sock

    init_db "$rundir/proxy.db"

    local conf=$rundir/zabbix_proxy.conf
    render "$TEMPLATE" "$conf"
    if [[ -n ${PROXY_EXTRA_CONF:-} ]]; then
        [[ -f $PROXY_EXTRA_CONF ]] || die "PROXY_EXTRA_CONF '$PROXY_EXTRA_CONF' is not a file"
        { printf '\n# from %s\n' "$PROXY_EXTRA_CONF"; cat "$PROXY_EXTRA_CONF"; } >>"$conf"
    fi

    local bin t0 rc=0
    bin=$(proxy_bin)
    t0=$(date +%s%N)
    # The launcher forks the daemon and returns; config errors show up here (rc != 0).
    "$bin" -c "$conf" >"$rundir/proxy.stderr" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]]; then
        log "zabbix_proxy exited with $rc at startup"
        log_tail "$rundir"
        exit 1
    fi

    local port_check="" ready_rc=0
    [[ $PROXY_START_TRAPPERS -eq 0 ]] || port_check=$PROXY_PORT
    pid=$(wait_ready proxy "$rundir/proxy.pid" "$rundir/proxy.log" 'started \[main process\]' \
        "$port_check" "$start_timeout") || ready_rc=$?
    if [[ $ready_rc -ne 0 ]]; then
        log_tail "$rundir"
        [[ -z $pid ]] || ! is_our_proxy "$pid" "$rundir" || stop_daemon proxy "$pid" "${PROXY_STOP_TIMEOUT:-15}" || true
        exit 1
    fi
    local ms=$((($(date +%s%N) - t0) / 1000000))
    log "started $mode proxy pid $pid on 127.0.0.1:$PROXY_PORT in ${ms} ms"
    printf 'PROXY_PID=%s\nPROXY_PORT=%s\nPROXY_CONF=%s\nPROXY_LOG=%s\nPROXY_STARTUP_MS=%s\n' \
        "$pid" "$PROXY_PORT" "$conf" "$rundir/proxy.log" "$ms"
}

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    local rundir pid
    [[ -d $1 ]] || die "no such RUNDIR '$1'"
    rundir=$(cd "$1" && pwd)
    if ! pid=$(read_pid "$rundir"); then
        log "no pid file in $rundir: nothing to stop"
        return 0
    fi
    if ! is_our_proxy "$pid" "$rundir"; then
        log "pid $pid from $rundir/proxy.pid is not running (or not our proxy): nothing to stop"
        return 0
    fi
    stop_daemon proxy "$pid" "${PROXY_STOP_TIMEOUT:-15}"
    rm -f "$rundir/proxy.pid"
}

cmd_status() {
    [[ $# -eq 1 ]] || usage
    local rundir pid
    rundir=$(cd "$1" 2>/dev/null && pwd) || { echo stopped; return 3; }
    if pid=$(read_pid "$rundir") && is_our_proxy "$pid" "$rundir"; then
        echo "running $pid"
    else
        echo stopped
        return 3
    fi
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    *) usage ;;
esac
