# shellcheck shell=bash
# Shared helpers for the ci/peers/*.sh scripts that run real Zabbix daemons.
# Source it after setting LOG_TAG (the prefix of log lines). Bash only.
#
# Processes are checked by PID, never by process name: several CI jobs may run daemons
# side by side.

log() { printf '%s: %s\n' "${LOG_TAG:-peers}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

valid_port() { [[ $1 =~ ^[0-9]{1,5}$ ]] && ((10#$1 > 0 && 10#$1 < 65536)); }

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

# Alive and not a zombie: daemons are reparented to PID 1, which may reap late, and
# kill -0 succeeds on a zombie.
pid_alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true)
    [[ -n $state && $state != Z && $state != X ]]
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
