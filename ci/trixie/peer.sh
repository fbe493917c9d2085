#!/usr/bin/env bash
# zbx-conform: run one command inside the trixie root (ci/trixie/build-root.sh), in the
# foreground, as a peer-profile `program`:
#
#   ci/trixie/peer.sh ROOT RUNDIR -- COMMAND [ARG...]
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
set -euo pipefail

die() { printf 'trixie-peer: ERROR: %s\n' "$*" >&2; exit 2; }

if (($# < 4)) || [[ $3 != -- ]]; then
    die "usage: $0 ROOT RUNDIR -- COMMAND [ARG...]"
fi
ROOT=${1:-$HOME/.cache/zbx-conform/trixie-root}
RUNDIR=$2
shift 3

[[ $(id -u) -eq 0 ]] || die "needs root (unshare -m, mount, chroot)"
[[ -f $ROOT/.zbx-conform-stamp ]] || die "$ROOT is not a built trixie root (run ci/trixie/build-root.sh $ROOT)"
[[ $RUNDIR == /* && -d $RUNDIR ]] || die "RUNDIR must be an existing absolute directory: $RUNDIR"
ROOT=$(realpath "$ROOT")
RUNDIR=$(realpath "$RUNDIR")
[[ $RUNDIR != / && $RUNDIR != "$ROOT" && $RUNDIR != "$ROOT"/* ]] || die "RUNDIR must lie outside the root: $RUNDIR"

# shellcheck disable=SC2016 # expanded by the inner sh, from its positional parameters
exec unshare -m --propagation private -- /bin/sh -ec '
    root=$1 rundir=$2; shift 2
    mount -t tmpfs -o mode=1777,size=64m zbx-tmp "$root/tmp"
    mkdir -p "$root$rundir"
    mount --bind "$rundir" "$root$rundir"
    mount -t proc proc "$root/proc"
    exec chroot "$root" "$@"' trixie-peer "$ROOT" "$RUNDIR" "$@"
