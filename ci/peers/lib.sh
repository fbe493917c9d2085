# shellcheck shell=bash
# Shared helpers for the ci/peers/*.sh scripts that run real Zabbix daemons.
# Source it after setting LOG_TAG (the prefix of log lines). Bash only.
#
# Everything here works by PID or process group read from the daemon's own pid file,
# never by process name: several helpers and CI jobs may run daemons side by side.

log() { printf '%s: %s\n' "${LOG_TAG:-peers}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
valid_port() { [[ $1 =~ ^[0-9]{1,5}$ ]] && ((10#$1 > 0 && 10#$1 < 65536)); }

# True when something listens on TCP port $1 (any local address).
port_listening() {
    local port=$1
    if command -v ss >/dev/null; then
        [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]]
        return
    fi
    # Fallback without iproute2: state 0A = LISTEN in /proc/net/tcp.
    local hex
    hex=$(printf '%04X' "$port")
    awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# render TEMPLATE OUT: substitute dollar-brace NAME placeholders from the shell
# variables of the same name. Only [A-Z_][A-Z0-9_]* names are recognised; an unset one
# is an error, so a typo cannot silently produce an empty config value.
render() {
    local tmpl=$1 out=$2 names name value sed_args=()
    # shellcheck disable=SC2016 # literal dollar-brace patterns, not expansions
    names=$(grep -o '\${[A-Z_][A-Z0-9_]*}' "$tmpl" | sort -u | tr -d '${}')
    for name in $names; do
        [[ -n ${!name+x} ]] || die "template variable $name is not set"
        value=${!name}
        [[ $value != *$'\n'* ]] || die "template variable $name contains a newline"
        # Escape sed replacement specials: backslash, the delimiter, and &.
        value=$(printf '%s' "$value" | sed -e 's/[\\|&]/\\&/g')
        sed_args+=(-e "s|\${$name}|$value|g")
    done
    sed "${sed_args[@]}" "$tmpl" >"$out"
}

# read_pidfile FILE: print the PID in FILE, fail if missing or not a number.
read_pidfile() {
    local pid
    [[ -f $1 ]] || return 1
    pid=$(head -n 1 "$1" | tr -d '[:space:]')
    is_uint "$pid" || return 1
    printf '%s\n' "$pid"
}

# cmdline_has PID WORD...: true when PID's command line contains every WORD. Guards
# against signalling an unrelated process that reused a stale PID.
cmdline_has() {
    local pid=$1 cmdline w
    shift
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    for w in "$@"; do
        [[ $cmdline == *"$w"* ]] || return 1
    done
}

# Alive and not a zombie: daemons are reparented to PID 1, which may reap late, and
# kill -0 succeeds on a zombie.
pid_alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true)
    [[ -n $state && $state != Z && $state != X ]]
}

# True while any non-zombie process is left in process group $1.
group_alive() {
    local p
    for p in $(pgrep -g "$1" 2>/dev/null || true); do
        pid_alive "$p" && return 0
    done
    return 1
}

# own_session_group PID: print PID's process-group id when that group is a session of
# its own (a daemon after setsid()) and not the caller's; print nothing otherwise.
own_session_group() {
    local pgid sid mine
    read -r pgid sid < <(ps -o pgid=,sid= -p "$1" || true)
    mine=$(ps -o pgid= -p $$ | tr -d ' ')
    if [[ -n ${pgid:-} && $pgid == "${sid:-}" && $pgid != "$mine" ]]; then
        printf '%s\n' "$pgid"
    fi
}

# stop_daemon NAME PID TIMEOUT: SIGTERM to PID, wait up to TIMEOUT s for it and its
# process group to go, then SIGKILL the group. Zabbix daemons run in a session of
# their own whose workers ignore TERM from anyone but their parent, so only the group
# KILL cleans up after a main process that does not exit.
stop_daemon() {
    local name=$1 pid=$2 timeout=$3 pgid
    pgid=$(own_session_group "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if ! pid_alive "$pid" && { [[ -z $pgid ]] || ! group_alive "$pgid"; }; then
            log "stopped $name pid $pid"
            return 0
        fi
        sleep 0.1
    done
    log "$name pid $pid still running ${timeout}s after TERM: KILL"
    if [[ -n $pgid ]]; then
        kill -KILL -- "-$pgid" 2>/dev/null || true
    else
        kill -KILL "$pid" 2>/dev/null || true
    fi
    local _
    for _ in $(seq 1 50); do
        pid_alive "$pid" || { [[ -n $pgid ]] && group_alive "$pgid"; } || break
        sleep 0.1
    done
    if pid_alive "$pid" || { [[ -n $pgid ]] && group_alive "$pgid"; }; then
        die "$name pid $pid (group ${pgid:-?}) survived KILL"
    fi
    log "killed $name pid $pid"
}

# wait_ready NAME PIDFILE LOG LINE_REGEX PORT TIMEOUT: wait until the daemon wrote its
# pid file, logged LINE_REGEX (grep -E) and, when PORT is not empty, listens on PORT.
# Fails early when the daemon dies. Prints the PID.
wait_ready() {
    local name=$1 pidfile=$2 logfile=$3 line=$4 port=$5 timeout=$6 pid=""
    local deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if [[ -z $pid ]]; then
            pid=$(read_pidfile "$pidfile" || true)
            # A daemon that fails early (e.g. cannot open its DB) may exit before or
            # right after writing the pid file, and removes it: fall back to the PID
            # that starts its first log line.
            local logpid
            logpid=$(awk -F: 'NR == 1 { gsub(/ /, "", $1); print $1 }' "$logfile" 2>/dev/null || true)
            if [[ -z $pid && -n $logpid ]] && is_uint "$logpid" && ! pid_alive "$logpid"; then
                log "$name (pid $logpid) exited during startup"
                return 1
            fi
        elif ! pid_alive "$pid"; then
            log "$name (pid $pid) exited during startup"
            return 1
        fi
        if [[ -n $pid ]] && grep -Eq "$line" "$logfile" 2>/dev/null &&
            { [[ -z $port ]] || port_listening "$port"; }; then
            printf '%s\n' "$pid"
            return 0
        fi
        sleep 0.1
    done
    log "$name not ready after ${timeout}s"
    [[ -z $pid ]] || printf '%s\n' "$pid"
    return 2
}

# tail_files FILE...: print the tail of each existing file to stderr (diagnostics).
tail_files() {
    local f
    for f in "$@"; do
        if [[ -s $f ]]; then
            log "--- tail of $f ---"
            tail -n 30 "$f" >&2
        fi
    done
}
