#!/usr/bin/env bash
# Install what ci/plugins/build.sh needs on Debian 12 (run as root; idempotent):
# Go from Debian, and the zabbix source package (its vendor tarball holds the Agent 2
# plugin SDK). apt-get source needs a deb-src entry; one is added for the same mirror and
# suites as the existing deb822 sources when none exists.
#   ci/plugins/install.sh [OUT_DIR]     (default: <repo>/target/ci-plugins)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/target/ci-plugins}"
mkdir -p "$out/src"

if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat >/etc/apt/sources.list.d/zbx-conform-deb-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q
elif ! apt-cache showsrc zabbix >/dev/null 2>&1; then
    apt-get update -q
fi
if ! command -v go >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-go
fi
if ! command -v python3 >/dev/null 2>&1; then
    # The fake plugin of the tests is a Python script.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3
fi
if ! ls "$out/src"/zabbix_*orig-vendor.tar.xz >/dev/null 2>&1; then
    (cd "$out/src" && apt-get source --download-only zabbix)
fi
echo "install.sh: go $(go version | cut -d' ' -f3), zabbix source in $out/src"
