#!/usr/bin/env bash
# Single-quoted $ strings below are for an inner shell or dpkg-query, on purpose.
# shellcheck disable=SC2016
# zbx-conform: build (once) a Debian 13 "trixie" root holding the Zabbix 7.0 packages, so
# 7.0 peers can run on a Debian 12 host (their binaries need trixie's libraries).
#
#   ci/trixie/build-root.sh [--server] [ROOT]
#
# ROOT defaults to $HOME/.cache/zbx-conform/trixie-root. Installs zabbix-proxy-sqlite3,
# zabbix-agent, zabbix-agent2, zabbix-sender and sqlite3 inside; with --server also
# zabbix-server-pgsql, unpacked into ROOT/opt/zabbix-server-pgsql (it conflicts with the
# sqlite proxy package, as in Debian 12) plus postgresql. Idempotent: a stamp file ROOT/.zbx-conform-stamp
# records the package set and versions; when it matches, the script only prints the
# version and exits (well under a second). Prints `zabbix 7.0.x` on stdout at the end.
#
# Needs root (debootstrap, chroot, unshare). The mirror is the one of the host's apt
# sources (deb822 or one-line format), override with ZBX_TRIXIE_MIRROR. Package scripts
# run with a policy-rc.d that exits 101, so no service starts; everything that needs
# /proc inside the root runs in a private mount namespace, so no mount outlives the script.
set -euo pipefail

log() { printf 'build-root: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SERVER=0
ROOT=""
while (($#)); do
    case $1 in
    --server) SERVER=1 ;;
    -h | --help)
        sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*) die "unknown option $1" ;;
    *)
        [[ -z $ROOT ]] || die "one ROOT only"
        ROOT=$1
        ;;
    esac
    shift
done
ROOT=${ROOT:-$HOME/.cache/zbx-conform/trixie-root}
PKGS=(zabbix-proxy-sqlite3 zabbix-agent zabbix-agent2 zabbix-sender sqlite3)
STAMP=$ROOT/.zbx-conform-stamp
WANT="packages=${PKGS[*]} server=$SERVER"

# Fast path: the stamp says this exact set is installed.
# A root built with --server also satisfies a request without it.
if [[ -f $STAMP ]] && { grep -qxF "$WANT" "$STAMP" ||
    { ((!SERVER)) && grep -qxF "packages=${PKGS[*]} server=1" "$STAMP"; }; }; then
    sed -n 's/^version=/zabbix /p' "$STAMP"
    exit 0
fi

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot, unshare)"

# The host's Debian mirror: the first deb URI for the "debian" archive (not -security).
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
    done | head -n 1
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { if ($i !~ /security/) print $i; break } }' "$f"
    done | head -n 1
}
MIRROR=${ZBX_TRIXIE_MIRROR:-$(host_mirror | head -n 1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
fi

# in_root CMD...: run CMD inside ROOT with /proc mounted in a private mount namespace.
in_root() {
    unshare -m --propagation private -- /bin/sh -c '
        root=$1; shift
        mount -t proc proc "$root/proc" && exec chroot "$root" "$@"' sh "$ROOT" \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

start=$(date +%s)
if [[ ! -f $ROOT/.zbx-conform-debootstrap ]]; then
    if [[ -e $ROOT ]]; then
        # A half-made root (interrupted run): start over. Refuse anything with mounts.
        if findmnt -rn -o TARGET | grep -qF "$(realpath "$ROOT")/"; then
            die "$ROOT has mounts below it; unmount them first"
        fi
        log "removing incomplete $ROOT"
        rm -rf --one-file-system "$ROOT"
    fi
    mkdir -p "$(dirname "$ROOT")"
    log "debootstrap --variant=minbase trixie $ROOT $MIRROR"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >&2
    touch "$ROOT/.zbx-conform-debootstrap"
fi

# Services never start: the peers are started by the harness, with their own configs.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
trap 'rm -f "$ROOT/usr/sbin/policy-rc.d"' EXIT

log "installing ${PKGS[*]} inside the root"
in_root apt-get update -q >&2
in_root apt-get install -y -q --no-install-recommends "${PKGS[@]}" >&2

if ((SERVER)); then
    # zabbix-server-pgsql conflicts with zabbix-proxy-sqlite3: unpack it beside, and
    # install only its library dependencies (and the PostgreSQL it talks to).
    log "unpacking zabbix-server-pgsql into /opt/zabbix-server-pgsql inside the root"
    in_root /bin/sh -ec '
        d=$(mktemp -d); cd "$d"; chown _apt "$d" 2>/dev/null || true
        apt-get download -q zabbix-server-pgsql
        rm -rf /opt/zabbix-server-pgsql; mkdir -p /opt/zabbix-server-pgsql
        dpkg-deb -x zabbix-server-pgsql_*.deb /opt/zabbix-server-pgsql
        deps=$(dpkg-deb -f zabbix-server-pgsql_*.deb Depends | tr "," "\n" |
            sed -e "s/|.*//" -e "s/(.*)//" -e "s/ //g" | grep -v -e "^$" -e "^debconf" -e "^ucf" -e "^adduser" -e "^init-system" -e "^lsb-base" || true)
        cd /; rm -rf "$d"
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $deps postgresql'
fi

in_root apt-get clean >&2
rm -f "$ROOT/usr/sbin/policy-rc.d"
trap - EXIT

version=$(in_root dpkg-query -W -f '${Version}' zabbix-proxy-sqlite3)
upstream=$(in_root /usr/sbin/zabbix_proxy --version | sed -n '1s/.* \([0-9][0-9.]*[0-9]\).*/\1/p')
{
    echo "$WANT"
    echo "mirror=$MIRROR"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$(($(date +%s) - start))"
    in_root dpkg-query -W -f 'pkg=${Package} ${Version}\n' "${PKGS[@]}"
    if ((SERVER)); then
        echo "pkg=zabbix-server-pgsql (unpacked in /opt/zabbix-server-pgsql)"
    fi
    echo "package_version=$version"
    echo "version=$upstream"
} >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
log "done in $(($(date +%s) - start)) s; $(du -sh --one-file-system "$ROOT" | cut -f1) in $ROOT"
echo "zabbix $upstream"
