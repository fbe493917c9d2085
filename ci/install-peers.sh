#!/usr/bin/env bash
# Install the real Zabbix 6.0.14 peers (Debian 12 packages) that the zbx-conform
# interoperability tests drive: zabbix_proxy (sqlite3), zabbix_get, zabbix_agentd,
# zabbix_sender, zabbix_agent2, plus the sqlite3 CLI.
#
# Idempotent: packages already installed are left alone; running it twice is a no-op
# apart from the final "no Zabbix service is running" check.
#
# The Debian packages ship init scripts / systemd units and would normally start the
# daemons on install. Tests start their own peers on loopback ports they pick, so a
# packaged daemon listening on 10050/10051 would only get in the way: we block service
# starts with a policy-rc.d (exit 101) during the install, then stop and disable the
# units in case something slipped through, and finally fail if any zabbix process runs.
#
# Usage:
#   ci/install-peers.sh            # proxy + agents + sqlite3 + tcpdump
#   ci/install-peers.sh --server   # additionally unpack zabbix-server-pgsql into a cache
#                                  # dir (it conflicts with the proxy package, so it is
#                                  # never installed) and make sure postgresql is installed
#   ci/install-peers.sh --server-only
# Env:
#   ZBX_SERVER_CACHE   where the server package is unpacked (default: $HOME/.cache/zbx-conform/zabbix-server-pgsql)
#   ZBX_APT_UPDATE=0   never run `apt-get update` (default: once, when a wanted package
#                      has no install candidate)
set -euo pipefail

# tcpdump: the tests record what the real daemons send (harness/tests/long_lived_peers.rs).
# libssl-dev, pkg-config, openssl: the harness links the system OpenSSL for TLS, and the TLS
# tests make their certificates with the openssl command.
PEER_PKGS=(zabbix-proxy-sqlite3 zabbix-agent zabbix-agent2 sqlite3 tcpdump libssl-dev pkg-config openssl)
SERVER_PKG=zabbix-server-pgsql
SERVER_CACHE=${ZBX_SERVER_CACHE:-${HOME:-/root}/.cache/zbx-conform/zabbix-server-pgsql}
SERVICES=(zabbix-proxy zabbix-agent zabbix-agent2 zabbix-server)

log() { printf 'install-peers: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "must run as root (or have sudo)"
    SUDO=(sudo)
fi

# True when a package is installed (dpkg status "install ok installed").
is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

# Run `apt-get update` at most once, and only when one of the given packages has no
# install candidate yet (a fresh machine has empty package lists).
APT_UPDATED=0
apt_update_if_needed() {
    [[ $APT_UPDATED -eq 0 && ${ZBX_APT_UPDATE:-1} != 0 ]] || return 0
    local p cand
    for p in "$@"; do
        cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ { print $2 }')
        if [[ -z $cand || $cand == "(none)" ]]; then
            log "apt-get update"
            "${SUDO[@]}" apt-get update -qq
            APT_UPDATED=1
            return 0
        fi
    done
}

# Block service starts for the duration of an install. An existing policy-rc.d
# (container images often ship one) is kept and restored untouched.
POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=""
POLICY_CREATED=0
block_services() {
    if [[ -e $POLICY ]]; then
        POLICY_BACKUP=$(mktemp)
        "${SUDO[@]}" cp -p "$POLICY" "$POLICY_BACKUP"
    fi
    printf '#!/bin/sh\n# zbx-conform install-peers: no service starts during install\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    POLICY_CREATED=1
}
unblock_services() {
    [[ $POLICY_CREATED -eq 1 ]] || return 0
    if [[ -n $POLICY_BACKUP ]]; then
        "${SUDO[@]}" cp -p "$POLICY_BACKUP" "$POLICY"
        rm -f "$POLICY_BACKUP"
    else
        "${SUDO[@]}" rm -f "$POLICY"
    fi
    POLICY_CREATED=0
}
trap unblock_services EXIT

# Stop and disable every packaged Zabbix service, whatever init system is present.
stop_and_disable_services() {
    local svc
    for svc in "${SERVICES[@]}"; do
        if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
            "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
        fi
        if [[ -x /etc/init.d/$svc ]]; then
            "${SUDO[@]}" /etc/init.d/"$svc" stop >/dev/null 2>&1 || true
            if command -v update-rc.d >/dev/null; then
                "${SUDO[@]}" update-rc.d "$svc" disable >/dev/null 2>&1 || true
            fi
        fi
    done
}

# Fail if any zabbix process is still alive: the tests own every peer they run.
# Zombies (exited daemons that PID 1 has not reaped yet) do not count.
check_no_zabbix_running() {
    local procs="" pid state
    for pid in $(pgrep zabbix || true); do
        state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)
        [[ -z $state || $state == Z || $state == X ]] || procs+="$(ps -o pid=,args= -p "$pid" || true)"$'\n'
    done
    if [[ -n $procs ]]; then
        log "zabbix processes still running after install:"
        printf '%s' "$procs" >&2
        return 1
    fi
}

install_pkgs() {
    local missing=() p
    for p in "$@"; do
        is_installed "$p" || missing+=("$p")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "already installed: $*"
        return 0
    fi
    apt_update_if_needed "${missing[@]}"
    log "installing: ${missing[*]}"
    block_services
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    unblock_services
}

install_peers() {
    install_pkgs "${PEER_PKGS[@]}"
    stop_and_disable_services
    local bin
    for bin in zabbix_proxy zabbix_get zabbix_agentd zabbix_sender zabbix_agent2 sqlite3; do
        command -v "$bin" >/dev/null || [[ -x /usr/sbin/$bin ]] || die "$bin not found after install"
    done
    [[ -f /usr/share/zabbix-proxy-sqlite3/schema.sql.gz ]] ||
        die "/usr/share/zabbix-proxy-sqlite3/schema.sql.gz missing (proxy DB schema)"
}

# zabbix-server-pgsql conflicts with zabbix-proxy-sqlite3 (both provide the same
# /etc/zabbix, share files), so it is never installed: `apt-get download` + `dpkg -x`
# into a cache dir. Its runtime libraries come from its Depends, which we install
# (they do not conflict), as well as postgresql for its database.
prepare_server() {
    install_pkgs postgresql
    stop_and_disable_services
    local bin=$SERVER_CACHE/root/usr/sbin/zabbix_server
    if [[ -x $bin ]]; then
        log "server already unpacked: $bin"
    else
        apt_update_if_needed "$SERVER_PKG"
        local dl
        dl=$(mktemp -d)
        # apt drops privileges to _apt for downloads; let it write there.
        if [[ $(id -u) -eq 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
        log "downloading $SERVER_PKG"
        (cd "$dl" && apt-get download -qq "$SERVER_PKG" >/dev/null)
        local deb
        deb=$(ls "$dl"/"$SERVER_PKG"_*.deb)
        # Library dependencies of the server binary (everything but the conflicting
        # zabbix/debconf bits); installing them lets the unpacked binary run.
        local deps
        deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/[[:space:]]//g' |
            grep -v -E '^(debconf|dbconfig|ucf|adduser|lsb-base|zabbix|fping|$)' || true)
        # shellcheck disable=SC2086
        [[ -z $deps ]] || install_pkgs $deps
        mkdir -p "$SERVER_CACHE"
        rm -rf "$SERVER_CACHE/root"
        dpkg-deb -x "$deb" "$SERVER_CACHE/root"
        cp "$deb" "$SERVER_CACHE/"
        rm -rf "$dl"
        log "unpacked $SERVER_PKG into $SERVER_CACHE/root"
    fi
    "$bin" --version >/dev/null 2>&1 || die "unpacked zabbix_server does not run: $("$bin" --version 2>&1 | head -3)"
    log "zabbix_server: $bin ($("$bin" --version | head -1))"
}

main() {
    local want_peers=1 want_server=0 arg
    for arg in "$@"; do
        case $arg in
            --server) want_server=1 ;;
            --server-only) want_server=1; want_peers=0 ;;
            -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
            *) die "unknown argument: $arg" ;;
        esac
    done
    [[ $want_peers -eq 0 ]] || install_peers
    [[ $want_server -eq 0 ]] || prepare_server
    check_no_zabbix_running
    log "done"
}

main "$@"
