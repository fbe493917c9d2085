#!/usr/bin/env bash
# zbx-conform: run one command inside the trixie root (ci/trixie/build-root.sh), in the
# foreground, as a peer-profile `program`:
#
#   ci/trixie/peer.sh ROOT RUNDIR [--bind DIR | --ro-bind DIR]... -- COMMAND [ARG...]
#
# An empty ROOT means $HOME/.cache/zbx-conform/trixie-root (build-root.sh's default), so a
# profile can say "${ZBX_TRIXIE_ROOT:-}". RUNDIR (absolute) is bind-mounted into the root at the same path, so config, log, DB,
# pid and socket paths are identical inside and outside; /proc is mounted inside the
# root. Both mounts live in a private mount namespace (`unshare -m --propagation
# private`) that only this command and its children see: they vanish with the last of
# those processes and never appear in the host's mount table.
#
# Nothing forks in between: this script execs unshare, which execs /bin/sh, which
# mounts and execs chroot, which execs COMMAND. So COMMAND runs with the PID the runner
# started, in its process group; a SIGTERM/SIGKILL to the group reaches it and every
# worker it forks (as long as COMMAND stays in the foreground: use -f for Zabbix
# daemons). COMMAND is looked up inside the root; the environment passes through.
#
# The root's /tmp is always a fresh, private tmpfs in the namespace: peers put their Unix
# sockets there (short paths, whatever the length of RUNDIR, and never shared between
# two peers). When RUNDIR is below /tmp its mount point is created in that tmpfs,
# leaving nothing behind in the root; otherwise the mount point directory is created in
# the root and left there (empty).
#
# --bind DIR / --ro-bind DIR (absolute, existing, outside the root; repeatable) mount
# more host directories at the same path inside the root, read-write or read-only, in
# the same private namespace. Uses: the runner's `${socket_dir}` (a short dir under the
# host's /tmp, which the private tmpfs would otherwise hide: zabbix_agent2 refuses to
# start when its ControlSocket directory is missing), and a read-only checkout holding
# the zbx-conform binary and its schemas for a mock plugin that agent2 in the root
# launches.
set -euo pipefail

die() { printf 'trixie-peer: ERROR: %s\n' "$*" >&2; exit 2; }

usage="usage: $0 ROOT RUNDIR [--bind DIR | --ro-bind DIR]... -- COMMAND [ARG...]"
(($# >= 4)) || die "$usage"
ROOT=${1:-$HOME/.cache/zbx-conform/trixie-root}
RUNDIR=$2
shift 2
# Extra mounts as "rw:DIR" / "ro:DIR" words (paths with spaces or colons are refused).
BINDS=()
while (($# > 0)) && [[ $1 != -- ]]; do
    case $1 in
        --bind|--ro-bind)
            (($# >= 2)) || die "$1 needs a directory"
            [[ $2 == /* && -d $2 ]] || die "$1: not an existing absolute directory: $2"
            dir=$(realpath "$2")
            [[ $dir != *[[:space:]:]* ]] || die "$1: spaces and colons are not supported: $dir"
            if [[ $1 == --bind ]]; then BINDS+=("rw:$dir"); else BINDS+=("ro:$dir"); fi
            shift 2 ;;
        *) die "$usage" ;;
    esac
done
(($# >= 2)) && [[ $1 == -- ]] || die "$usage"
shift

[[ $(id -u) -eq 0 ]] || die "needs root (unshare -m, mount, chroot)"
[[ -f $ROOT/.zbx-conform-stamp ]] || die "$ROOT is not a built trixie root (run ci/trixie/build-root.sh $ROOT)"
[[ $RUNDIR == /* && -d $RUNDIR ]] || die "RUNDIR must be an existing absolute directory: $RUNDIR"
ROOT=$(realpath "$ROOT")
RUNDIR=$(realpath "$RUNDIR")
[[ $RUNDIR != / && $RUNDIR != "$ROOT" && $RUNDIR != "$ROOT"/* ]] || die "RUNDIR must lie outside the root: $RUNDIR"
for b in "${BINDS[@]}"; do
    d=${b#*:}
    [[ $d != / && $d != "$ROOT" && $d != "$ROOT"/* && $ROOT != "$d"/* ]] || die "bind dir must lie outside the root: $d"
done

# shellcheck disable=SC2016 # expanded by the inner sh, from its positional parameters
exec unshare -m --propagation private -- /bin/sh -ec '
    root=$1 rundir=$2 binds=$3; shift 3
    mount -t tmpfs -o mode=1777,size=64m zbx-tmp "$root/tmp"
    for b in $binds; do
        dir=${b#*:}
        mkdir -p "$root$dir"
        mount --bind "$dir" "$root$dir"
        # A read-only bind needs a remount (mount --bind ignores -o ro on older util-linux).
        if [ "${b%%:*}" = ro ]; then mount -o remount,bind,ro "$root$dir"; fi
    done
    # RUNDIR last, so a read-only bind of a folder holding it (a checkout with the
    # run dir below target/) does not hide it.
    mkdir -p "$root$rundir"
    mount --bind "$rundir" "$root$rundir"
    mount -t proc proc "$root/proc"
    exec chroot "$root" "$@"' trixie-peer "$ROOT" "$RUNDIR" "${BINDS[*]}" "$@"
