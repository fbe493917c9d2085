#!/usr/bin/env bash
# Foreground wrapper for `zbx-conform run --start-peer ci/peers/zabbix-server-6.0.yaml`:
# one throwaway real Zabbix 6.0.14 server (zabbix-server-pgsql, unpacked by
# `ci/install-peers.sh --server`) with its own throwaway PostgreSQL cluster.
#
#   ci/peers/zabbix-server-peer.sh RUNDIR
#
# It stays in the foreground as the leader of the process group the runner created, runs
# `zabbix_server -f` as its child and lives exactly as long as it: the runner stops a
# peer with SIGTERM to the group, then SIGKILL.
#
# PostgreSQL cannot share that group: it would get the same SIGTERM and go away under
# the server while the server still flushes to it, making every stop slow. pg_ctl puts
# the postmaster in a session of its own; we stop it ourselves once the server is gone
# (TERM/INT/exit trap, `pg_ctl stop -m immediate`), and a watchdog, also in a session of
# its own, does the same if this wrapper is SIGKILLed. Either way the cluster's data
# directory (a ~150 MB copy) is deleted; its log stays in RUNDIR/pg.
#
# Steps: copy the cached loaded 6.0 cluster (built once under a lock: ~15 s), start it on
# 127.0.0.1:PG_PORT with its socket in RUNDIR/pg, insert the proxies, apply the SQL
# files, render ci/peers/zabbix_server.conf.tmpl, run zabbix_server -f.
#
# Environment (the peer profile ci/peers/zabbix-server-6.0.yaml sets these):
#   SERVER_PORT, PG_PORT           required: trapper port and PostgreSQL port (127.0.0.1)
#   SERVER_ACTIVE_PROXIES          "name ..."       proxies with status 5 (active)
#   SERVER_PASSIVE_PROXIES         "name:port ..."  proxies with status 6 at 127.0.0.1:port
#   SERVER_PROXY_TLS               psk: every proxy above talks PSK with the server
#                                  (tls_connect 2, tls_accept SERVER_PROXY_TLS_ACCEPT,
#                                  default 2) with SERVER_PROXY_PSK_IDENTITY and the key in
#                                  SERVER_PROXY_PSK_FILE (read here, never printed)
#   SERVER_SQL                     "file ..."       SQL applied before the server starts
#                                                   (relative names: relative to RUNDIR)
#   SERVER_DEBUG_LEVEL (3) SERVER_TIMEOUT (3) SERVER_TRAPPER_TIMEOUT (30)
#   SERVER_PROXY_CONFIG_FREQUENCY (5) SERVER_PROXY_DATA_FREQUENCY (1)
#   SERVER_CACHE_UPDATE_FREQUENCY (5) SERVER_START_TRAPPERS (2) SERVER_START_PROXY_POLLERS (1)
#   SERVER_EXTRA_CONF              optional file appended to the server config
#   SERVER_STOP_TIMEOUT            seconds to wait for zabbix_server after TERM (default 8;
#                                  keep it below the profile's stop_grace)
#   ZBX_SERVER_CACHE               default $HOME/.cache/zbx-conform/zabbix-server-pgsql
#   PG_BINDIR                      default: newest /usr/lib/postgresql/*/bin
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE=$HERE/zabbix_server.conf.tmpl
LOG_TAG=zabbix-server-peer
# shellcheck source=ci/peers/lib.sh
. "$HERE/lib.sh"

SERVER_CACHE=${ZBX_SERVER_CACHE:-${HOME:-/root}/.cache/zbx-conform/zabbix-server-pgsql}
SERVER_BIN=$SERVER_CACHE/root/usr/sbin/zabbix_server
SQL_DIR=$SERVER_CACHE/root/usr/share/zabbix-server-pgsql
PG_TEMPLATE=$SERVER_CACHE/pgdata-6.0

pg_bindir() {
    if [[ -n ${PG_BINDIR:-} ]]; then
        printf '%s\n' "$PG_BINDIR"
        return
    fi
    local d
    d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    [[ -n $d ]] || die "no PostgreSQL server binaries (run ci/install-peers.sh --server)"
    printf '%s\n' "$d"
}

# Run a PostgreSQL program as the postgres user when we are root (initdb and postgres
# refuse to run as root).
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# pg_start DATA LOGDIR PORT: start a cluster on 127.0.0.1:PORT, TCP only: a run dir's
# path easily exceeds the 107 bytes a Unix socket path may have (everyone here connects
# over TCP anyway).
pg_start() {
    as_pg "$PGBIN/pg_ctl" -D "$1" -l "$2/postgres.log" -w -t 60 \
        -o "-p $3 -c unix_socket_directories= -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null
}

# pg_stop DATA MODE: stop the cluster if it runs.
pg_stop() {
    [[ -f $1/postmaster.pid ]] || return 0
    as_pg "$PGBIN/pg_ctl" -D "$1" -m "$2" -w -t 30 stop >/dev/null
}

psql_run() {
    local port=$1
    shift
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

# Build the cached cluster with the stock 6.0 schema, images and data, once. Several
# peers may start at the same time: the first builds under a lock, the others wait.
ensure_template() {
    [[ -f $PG_TEMPLATE/PG_VERSION ]] && return 0
    mkdir -p "$SERVER_CACHE"
    exec 9>"$SERVER_CACHE/.pgdata.lock"
    flock -w 300 9 || die "timed out waiting for $SERVER_CACHE/.pgdata.lock"
    if [[ -f $PG_TEMPLATE/PG_VERSION ]]; then
        exec 9>&-
        return 0
    fi
    log "building the loaded 6.0 database once (cached in $PG_TEMPLATE)"
    local build=$RUNDIR/pg/build f
    as_pg "$PGBIN/initdb" -D "$build" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$RUNDIR/pg/initdb.log" 2>&1 ||
        { tail_files "$RUNDIR/pg/initdb.log"; die "initdb failed"; }
    pg_start "$build" "$RUNDIR/pg" "$PG_PORT" || { tail_files "$RUNDIR/pg/postgres.log"; die "PostgreSQL did not start"; }
    psql_run "$PG_PORT" -d postgres -c "CREATE DATABASE zabbix" >/dev/null
    for f in schema images data; do
        [[ -f $SQL_DIR/$f.sql.gz ]] || die "$SQL_DIR/$f.sql.gz missing (run ci/install-peers.sh --server)"
        gzip -dc "$SQL_DIR/$f.sql.gz" | psql_run "$PG_PORT" -d zabbix >/dev/null 2>"$RUNDIR/pg/load-$f.err" ||
            { tail_files "$RUNDIR/pg/load-$f.err"; pg_stop "$build" immediate; die "loading $f.sql.gz failed"; }
    done
    pg_stop "$build" fast
    rm -f "$build"/postmaster.*
    rm -rf "$PG_TEMPLATE.tmp"
    mv "$build" "$PG_TEMPLATE.tmp"
    mv "$PG_TEMPLATE.tmp" "$PG_TEMPLATE"
    exec 9>&-
}

# Insert proxies as hosts rows (6.0 keeps proxies in `hosts`: status 5 active, 6
# passive; a passive proxy's address is its `interface` row). Host ids 900001...
register_proxies() {
    local id=900000 name port entry sql=""
    for name in ${SERVER_ACTIVE_PROXIES:-}; do
        id=$((id + 1))
        sql+="INSERT INTO hosts (hostid, host, name, status) VALUES ($id, '$name', '$name', 5);"$'\n'
    done
    for entry in ${SERVER_PASSIVE_PROXIES:-}; do
        name=${entry%%:*}
        port=${entry##*:}
        if [[ $entry != *:* ]] || ! valid_port "$port"; then
            die "SERVER_PASSIVE_PROXIES entry '$entry' is not name:port"
        fi
        id=$((id + 1))
        sql+="INSERT INTO hosts (hostid, host, name, status) VALUES ($id, '$name', '$name', 6);"$'\n'
        sql+="INSERT INTO interface (interfaceid, hostid, main, type, useip, ip, dns, port) VALUES ($id, $id, 1, 0, 1, '127.0.0.1', '', '$port');"$'\n'
    done
    [[ -z $sql ]] || printf '%s' "$sql" | psql_run "$PG_PORT" -d zabbix
    case ${SERVER_PROXY_TLS:-} in
    "" | unencrypted) ;;
    psk) proxies_psk ;;
    *) die "SERVER_PROXY_TLS='${SERVER_PROXY_TLS}' (psk or unencrypted)" ;;
    esac
}

# Give every proxy row the PSK (6.0 keeps a proxy's encryption in its `hosts` row). The
# key goes to psql on stdin only: never an argument, never in a log.
proxies_psk() {
    local file=${SERVER_PROXY_PSK_FILE:-} identity=${SERVER_PROXY_PSK_IDENTITY:-} key accept
    accept=${SERVER_PROXY_TLS_ACCEPT:-2}
    [[ -r $file ]] || die "SERVER_PROXY_PSK_FILE '$file' is not a readable file"
    [[ -n $identity && ${#identity} -le 128 ]] || die "SERVER_PROXY_PSK_IDENTITY must be 1 to 128 characters"
    [[ $accept =~ ^[1-7]$ ]] || die "SERVER_PROXY_TLS_ACCEPT '$accept' is not 1 to 7"
    key=$(head -n 1 "$file" | tr -d '[:space:]')
    [[ $key =~ ^[0-9a-fA-F]{32,512}$ ]] || die "SERVER_PROXY_PSK_FILE '$file' does not hold 32 to 512 hex digits"
    printf "UPDATE hosts SET tls_connect = 2, tls_accept = %s, tls_psk_identity = '%s', tls_psk = '%s' WHERE status IN (5, 6);\n" \
        "$accept" "${identity//\'/\'\'}" "$key" | psql_run "$PG_PORT" -d zabbix
}

# remove_sockdir RUNDIR: delete the short-path socket dir noted in RUNDIR/sockdir.
remove_sockdir() {
    local d
    d=$(head -n 1 "$1/sockdir" 2>/dev/null || true)
    if [[ $d == /tmp/zbxsrv.* && -d $d ]]; then rm -rf "$d"; fi
    rm -f "$1/sockdir"
}

# watchdog WRAPPER_PID RUNDIR: runs in a session of its own; once the wrapper is gone
# (however it died), stop PostgreSQL and delete its data.
watchdog() {
    local wpid=$1 rundir=$2
    while pid_alive "$wpid"; do sleep 0.3; done
    local d
    for d in "$rundir/pg/data" "$rundir/pg/build"; do
        [[ -d $d ]] || continue
        PGBIN=$(pg_bindir)
        pg_stop "$d" immediate || true
        rm -rf "$d"
        log "watchdog: stopped PostgreSQL in $d after the wrapper died"
    done
    remove_sockdir "$rundir"
}

ZPID=""
WATCHDOG_PID=""
CLEANED=0
# Stop zabbix_server (TERM, then KILL after SERVER_STOP_TIMEOUT), then PostgreSQL, then
# the watchdog. Runs once, from the signal traps or at exit.
cleanup() {
    [[ $CLEANED -eq 0 ]] || return 0
    CLEANED=1
    trap '' TERM INT
    if [[ -n $ZPID ]] && pid_alive "$ZPID"; then
        kill -TERM "$ZPID" 2>/dev/null || true
        local deadline=$((SECONDS + ${SERVER_STOP_TIMEOUT:-8}))
        while pid_alive "$ZPID" && ((SECONDS < deadline)); do sleep 0.1; done
        if pid_alive "$ZPID"; then
            log "zabbix_server pid $ZPID still running after TERM: KILL"
            kill -KILL "$ZPID" 2>/dev/null || true
        fi
    fi
    # Its workers, if any outlived it (they share our process group; the runner's
    # final group KILL would get them too).
    if [[ -n $ZPID ]]; then
        local p
        for p in $(pgrep -P "$ZPID" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
    fi
    # data: this run's cluster; build: the cache being built when a stop came first.
    local d
    for d in "$RUNDIR/pg/data" "$RUNDIR/pg/build"; do
        [[ -d $d ]] || continue
        pg_stop "$d" immediate || log "stopping PostgreSQL in $d failed"
        rm -rf "$d"
    done
    remove_sockdir "$RUNDIR"
    if [[ -n $WATCHDOG_PID ]]; then kill -TERM "$WATCHDOG_PID" 2>/dev/null || true; fi
}

# Variables named like the template's placeholders are read by render() through
# indirect expansion, which shellcheck cannot follow.
# shellcheck disable=SC2034
main() {
    [[ $# -eq 1 ]] || die "usage: $0 RUNDIR"
    [[ -x $SERVER_BIN ]] || die "$SERVER_BIN missing (run ci/install-peers.sh --server)"
    command -v psql >/dev/null || die "psql missing (run ci/install-peers.sh --server)"
    valid_port "${SERVER_PORT:-}" || die "SERVER_PORT must be set to a port"
    valid_port "${PG_PORT:-}" || die "PG_PORT must be set to a port"
    PGBIN=$(pg_bindir)
    SERVER_DEBUG_LEVEL=${SERVER_DEBUG_LEVEL:-3}
    SERVER_TIMEOUT=${SERVER_TIMEOUT:-3}
    SERVER_TRAPPER_TIMEOUT=${SERVER_TRAPPER_TIMEOUT:-30}
    SERVER_PROXY_CONFIG_FREQUENCY=${SERVER_PROXY_CONFIG_FREQUENCY:-5}
    SERVER_PROXY_DATA_FREQUENCY=${SERVER_PROXY_DATA_FREQUENCY:-1}
    SERVER_CACHE_UPDATE_FREQUENCY=${SERVER_CACHE_UPDATE_FREQUENCY:-5}
    SERVER_START_TRAPPERS=${SERVER_START_TRAPPERS:-2}
    SERVER_START_PROXY_POLLERS=${SERVER_START_PROXY_POLLERS:-1}
    if [[ $(id -u) -eq 0 ]]; then SERVER_ALLOW_ROOT=1; else SERVER_ALLOW_ROOT=0; fi

    mkdir -p "$1"
    RUNDIR=$(cd "$1" && pwd)
    rm -rf "$RUNDIR/pg"
    mkdir -p "$RUNDIR/pg"
    if [[ $(id -u) -eq 0 ]]; then
        chmod a+x "$RUNDIR"
        chown postgres: "$RUNDIR/pg"
        runuser -u postgres -- test -w "$RUNDIR/pg" ||
            die "user postgres cannot reach $RUNDIR/pg (a parent directory is not a+x?)"
    fi

    trap 'cleanup; exit 143' TERM
    trap 'cleanup; exit 130' INT
    trap cleanup EXIT

    local t0
    t0=$(date +%s%N)
    # The watchdog before any cluster (the cache build included): from here on,
    # nothing may outlive us.
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    setsid bash -c '. "$1"; watchdog "$2" "$3"' watchdog "$HERE/zabbix-server-peer.sh" "$$" "$RUNDIR" \
        >>"$RUNDIR/watchdog.log" 2>&1 </dev/null &
    WATCHDOG_PID=$!
    ensure_template
    cp -a "$PG_TEMPLATE" "$RUNDIR/pg/data"
    pg_start "$RUNDIR/pg/data" "$RUNDIR/pg" "$PG_PORT" ||
        { tail_files "$RUNDIR/pg/postgres.log"; die "PostgreSQL did not start"; }
    register_proxies || die "registering proxies failed"
    local f
    for f in ${SERVER_SQL:-}; do
        [[ $f == /* ]] || f=$RUNDIR/$f
        psql_run "$PG_PORT" -d zabbix -f "$f" >/dev/null || die "applying $f failed"
    done

    local conf=$RUNDIR/zabbix_server.conf
    render "$TEMPLATE" "$conf"
    # The server's IPC sockets need a short path (its limit is below the 107 bytes of a
    # Unix socket path, and run dirs are long): a private dir in /tmp, removed at the end.
    SOCKDIR=$(mktemp -d /tmp/zbxsrv.XXXXXX)
    printf '%s\n' "$SOCKDIR" >"$RUNDIR/sockdir"
    sed -i "s|^SocketDir=.*|SocketDir=$SOCKDIR|" "$conf"
    if [[ -n ${SERVER_EXTRA_CONF:-} ]]; then
        [[ -f $SERVER_EXTRA_CONF ]] || die "SERVER_EXTRA_CONF '$SERVER_EXTRA_CONF' is not a file"
        { printf '\n# from %s\n' "$SERVER_EXTRA_CONF"; cat "$SERVER_EXTRA_CONF"; } >>"$conf"
    fi
    log "database ready in $((($(date +%s%N) - t0) / 1000000)) ms; starting zabbix_server -f"
    # In the background so that the traps run as soon as a signal arrives (bash runs
    # traps only between commands, and `wait` is interruptible).
    "$SERVER_BIN" -f -c "$conf" &
    ZPID=$!
    local rc=0
    wait "$ZPID" || rc=$?
    log "zabbix_server exited with $rc"
    ZPID=""
    cleanup
    exit "$rc"
}

# Sourced by the watchdog for its functions only.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
