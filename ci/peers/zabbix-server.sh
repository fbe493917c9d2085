#!/usr/bin/env bash
# Start/stop a throwaway real Zabbix 6.0.14 server (zabbix-server-pgsql, unpacked by
# `ci/install-peers.sh --server`) with its own throwaway PostgreSQL cluster.
#
#   ci/peers/zabbix-server.sh start RUNDIR
#   ci/peers/zabbix-server.sh stop RUNDIR
#   ci/peers/zabbix-server.sh status RUNDIR
#   ci/peers/zabbix-server.sh sql RUNDIR < statements.sql   # run SQL in its DB (psql)
#
# start: creates a PostgreSQL cluster in RUNDIR/pg (from a cached, already loaded copy
# when one exists: loading the 6.0 schema+data takes ~13 s, copying ~1 s), applies the
# caller's fixtures, renders ci/peers/zabbix_server.conf.tmpl into
# RUNDIR/zabbix_server.conf, starts the server and waits until it logged
# "server #0 started [main process]" and listens. Prints KEY=VALUE lines on stdout.
# On failure: log tails on stderr, everything started is stopped, exit non-zero.
#
# The server's DB has the stock 6.0 data (host "Zabbix server", templates, groups).
# To talk to proxies it needs them as hosts rows: SERVER_ACTIVE_PROXIES /
# SERVER_PASSIVE_PROXIES below insert them; anything else goes through SERVER_SQL.
#
# Environment (caller picks the ports):
#   SERVER_PORT                    required: trapper ListenPort on 127.0.0.1
#   PG_PORT                        required: PostgreSQL port on 127.0.0.1
#   SERVER_ACTIVE_PROXIES          "name ..."            proxies with status 5 (active)
#   SERVER_PASSIVE_PROXIES         "name:port ..."       proxies with status 6 (passive) at 127.0.0.1:port
#   SERVER_SQL                     "file ..."            SQL files applied before the server starts
#   SERVER_DEBUG_LEVEL             default 3
#   SERVER_TIMEOUT                 default 3
#   SERVER_TRAPPER_TIMEOUT         default 30
#   SERVER_PROXY_CONFIG_FREQUENCY  default 5   (passive proxies: config push period)
#   SERVER_PROXY_DATA_FREQUENCY    default 1   (passive proxies: data poll period)
#   SERVER_CACHE_UPDATE_FREQUENCY  default 5
#   SERVER_START_TRAPPERS          default 2
#   SERVER_START_PROXY_POLLERS     default 1
#   SERVER_EXTRA_CONF              optional file appended to the server config
#   SERVER_START_TIMEOUT           default 60 (s)
#   SERVER_STOP_TIMEOUT            default 15 (s)
#   ZBX_SERVER_CACHE               default $HOME/.cache/zbx-conform/zabbix-server-pgsql
#   PG_BINDIR                      default: newest /usr/lib/postgresql/*/bin
#
# When run as root, PostgreSQL runs as user postgres (initdb refuses root): RUNDIR and
# its parents must be traversable by that user; the script makes RUNDIR itself a+x.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE=$HERE/zabbix_server.conf.tmpl
LOG_TAG=zabbix-server
# shellcheck source=ci/peers/lib.sh
. "$HERE/lib.sh"

SERVER_CACHE=${ZBX_SERVER_CACHE:-${HOME:-/root}/.cache/zbx-conform/zabbix-server-pgsql}
SERVER_ROOT=$SERVER_CACHE/root
SERVER_BIN=$SERVER_ROOT/usr/sbin/zabbix_server
SQL_DIR=$SERVER_ROOT/usr/share/zabbix-server-pgsql
PG_TEMPLATE=$SERVER_CACHE/pgdata-6.0

usage() {
    sed -n '5,8p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2
    exit 2
}

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

# Run a PostgreSQL program as the postgres user when we are root.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_start() {
    local data=$1 sock=$2
    as_pg "$PGBIN/pg_ctl" -D "$data" -l "$sock/postgres.log" -w -t 60 \
        -o "-p $PG_PORT -k $sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null
}

pg_stop() {
    local data=$1
    [[ -f $data/postmaster.pid ]] || return 0
    as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
}

psql_run() {
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

# Load the stock 6.0 schema, images and data into database "zabbix".
load_zabbix_db() {
    local f
    psql_run -d postgres -c "CREATE DATABASE zabbix" >/dev/null
    for f in schema images data; do
        [[ -f $SQL_DIR/$f.sql.gz ]] || die "$SQL_DIR/$f.sql.gz missing (run ci/install-peers.sh --server)"
        gzip -dc "$SQL_DIR/$f.sql.gz" | psql_run -d zabbix >/dev/null 2>"$RUNDIR/pg/load-$f.err" ||
            { tail_files "$RUNDIR/pg/load-$f.err"; die "loading $f.sql.gz failed"; }
    done
}

# Insert proxies as hosts rows (6.0 keeps proxies in `hosts`: status 5 active, 6 passive;
# a passive proxy's address is its `interface` row).
register_proxies() {
    local id=900000 name port sql=""
    for name in ${SERVER_ACTIVE_PROXIES:-}; do
        id=$((id + 1))
        sql+="INSERT INTO hosts (hostid, host, name, status) VALUES ($id, '$name', '$name', 5);"$'\n'
    done
    local entry
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
    [[ -z $sql ]] || printf '%s' "$sql" | psql_run -d zabbix
}

read_pid() { read_pidfile "$1/server.pid"; }
is_our_server() { pid_alive "$1" && cmdline_has "$1" zabbix_server "$2/zabbix_server.conf"; }

fail_start() {
    log "$1"
    tail_files "$RUNDIR/server.stderr" "$RUNDIR/server.log" "$RUNDIR/pg/postgres.log"
    cmd_stop "$RUNDIR" || true
    exit 1
}

# Variables named like the template's placeholders are read by render() through
# indirect expansion, which shellcheck cannot follow.
# shellcheck disable=SC2034
cmd_start() {
    [[ $# -eq 1 ]] || usage
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
    local start_timeout=${SERVER_START_TIMEOUT:-60}
    is_uint "$start_timeout" || die "bad SERVER_START_TIMEOUT '$start_timeout'"

    mkdir -p "$1"
    RUNDIR=$(cd "$1" && pwd)
    local pid
    if pid=$(read_pid "$RUNDIR") && is_our_server "$pid" "$RUNDIR"; then
        die "a server from $RUNDIR is already running (pid $pid); stop it first"
    fi
    [[ ! -f $RUNDIR/pg/data/postmaster.pid ]] || die "a PostgreSQL cluster from $RUNDIR/pg seems to run; stop it first"
    if port_listening "$SERVER_PORT"; then die "port $SERVER_PORT is already in use"; fi
    if port_listening "$PG_PORT"; then die "port $PG_PORT is already in use"; fi

    local t0
    t0=$(date +%s%N)
    rm -rf "$RUNDIR/pg" "$RUNDIR"/server.{log,pid,stderr}
    mkdir -p "$RUNDIR/pg"
    if [[ $(id -u) -eq 0 ]]; then
        chmod a+x "$RUNDIR"
        chown postgres: "$RUNDIR/pg"
        runuser -u postgres -- test -w "$RUNDIR/pg" ||
            die "user postgres cannot reach $RUNDIR/pg (a parent directory is not a+x?)"
    fi
    local data=$RUNDIR/pg/data
    if [[ -f $PG_TEMPLATE/PG_VERSION ]]; then
        cp -a "$PG_TEMPLATE" "$data"
        pg_start "$data" "$RUNDIR/pg" || fail_start "PostgreSQL did not start"
    else
        log "building the loaded 6.0 database once (cached in $PG_TEMPLATE)"
        as_pg "$PGBIN/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$RUNDIR/pg/initdb.log" 2>&1 ||
            { tail_files "$RUNDIR/pg/initdb.log"; die "initdb failed"; }
        pg_start "$data" "$RUNDIR/pg" || fail_start "PostgreSQL did not start"
        load_zabbix_db
        pg_stop "$data"
        mkdir -p "$SERVER_CACHE"
        rm -rf "$PG_TEMPLATE.tmp"
        cp -a "$data" "$PG_TEMPLATE.tmp"
        rm -f "$PG_TEMPLATE.tmp"/postmaster.*
        mv "$PG_TEMPLATE.tmp" "$PG_TEMPLATE"
        pg_start "$data" "$RUNDIR/pg" || fail_start "PostgreSQL did not start"
    fi
    register_proxies || fail_start "registering proxies failed"
    local f
    for f in ${SERVER_SQL:-}; do
        psql_run -d zabbix -f "$f" >/dev/null || fail_start "applying $f failed"
    done

    local conf=$RUNDIR/zabbix_server.conf
    render "$TEMPLATE" "$conf"
    if [[ -n ${SERVER_EXTRA_CONF:-} ]]; then
        [[ -f $SERVER_EXTRA_CONF ]] || fail_start "SERVER_EXTRA_CONF '$SERVER_EXTRA_CONF' is not a file"
        { printf '\n# from %s\n' "$SERVER_EXTRA_CONF"; cat "$SERVER_EXTRA_CONF"; } >>"$conf"
    fi
    local rc=0
    "$SERVER_BIN" -c "$conf" >"$RUNDIR/server.stderr" 2>&1 || rc=$?
    [[ $rc -eq 0 ]] || fail_start "zabbix_server exited with $rc at startup"
    pid=$(wait_ready server "$RUNDIR/server.pid" "$RUNDIR/server.log" 'server #0 started \[main process\]' \
        "$SERVER_PORT" "$start_timeout") || fail_start "server did not become ready"
    local ms=$((($(date +%s%N) - t0) / 1000000))
    log "started server pid $pid on 127.0.0.1:$SERVER_PORT (PostgreSQL on $PG_PORT) in ${ms} ms"
    printf 'SERVER_PID=%s\nSERVER_PORT=%s\nPG_PORT=%s\nSERVER_CONF=%s\nSERVER_LOG=%s\nSERVER_STARTUP_MS=%s\n' \
        "$pid" "$SERVER_PORT" "$PG_PORT" "$conf" "$RUNDIR/server.log" "$ms"
}

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    [[ -d $1 ]] || die "no such RUNDIR '$1'"
    local rundir pid
    rundir=$(cd "$1" && pwd)
    if pid=$(read_pid "$rundir") && is_our_server "$pid" "$rundir"; then
        stop_daemon server "$pid" "${SERVER_STOP_TIMEOUT:-15}"
        rm -f "$rundir/server.pid"
    else
        log "no running server from $rundir"
    fi
    if [[ -f $rundir/pg/data/postmaster.pid ]]; then
        PGBIN=${PGBIN:-$(pg_bindir)}
        pg_stop "$rundir/pg/data" || die "stopping PostgreSQL in $rundir/pg failed"
        log "stopped PostgreSQL in $rundir/pg"
    fi
}

cmd_status() {
    [[ $# -eq 1 ]] || usage
    local rundir pid
    rundir=$(cd "$1" 2>/dev/null && pwd) || { echo stopped; return 3; }
    if pid=$(read_pid "$rundir") && is_our_server "$pid" "$rundir"; then
        echo "running $pid"
    else
        echo stopped
        return 3
    fi
}

cmd_sql() {
    [[ $# -eq 1 ]] || usage
    local rundir
    rundir=$(cd "$1" && pwd)
    PG_PORT=$(awk -F= '$1 == "DBPort" { print $2 }' "$rundir/zabbix_server.conf" 2>/dev/null || true)
    [[ -n $PG_PORT ]] || die "no DBPort in $rundir/zabbix_server.conf"
    psql_run -d zabbix
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    sql) cmd_sql "$@" ;;
    *) usage ;;
esac
