#!/usr/bin/env bash
# Build the Go test plugins of ci/plugins/ OFFLINE against the Agent 2 plugin SDK that
# Debian 12 ships inside the zabbix source package's vendor tarball.
#
#   ci/plugins/build.sh [OUT_DIR]       (default: <repo>/target/ci-plugins)
#
# Produces OUT_DIR/bin/good-plugin. Idempotent: rebuilds only when a source changed.
# Needs: go (Debian golang-go) and the SDK, found in this order:
#   $ZBX_PLUGIN_SDK_DIR (a plugin-support source tree),
#   OUT_DIR/sdk (extracted by an earlier run),
#   a zabbix_*orig-vendor.tar.xz in $ZBX_SOURCE_DIR, OUT_DIR/src, or fetched there with
#   `apt-get source --download-only zabbix` (needs a deb-src entry: ci/plugins/install.sh).
# Nothing is downloaded from any Go module proxy: GOPROXY=off, GOFLAGS=-mod=vendor.
# Exit status: 0 built (or up to date), 1 build failed, 3 go or the SDK is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/target/ci-plugins}"
mkdir -p "$out/bin" "$out/src"
out="$(cd "$out" && pwd)"

# One build at a time per output folder (test binaries may call this concurrently).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$out/.build.lock"
    flock 9
fi

SDK_MODULE="git.zabbix.com/ap/plugin-support"
SDK_VERSION="v1.2.2-0.20230123112943-76ee71718c5e"
SDK_PACKAGES="log plugin plugin/comms plugin/container zbxerr"

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: go is not installed (apt-get install golang-go)" >&2
    exit 3
fi

find_sdk() {
    if [ -n "${ZBX_PLUGIN_SDK_DIR:-}" ] && [ -f "$ZBX_PLUGIN_SDK_DIR/plugin/comms/protocol.go" ]; then
        echo "$ZBX_PLUGIN_SDK_DIR"; return 0
    fi
    if [ -f "$out/sdk/plugin/comms/protocol.go" ]; then
        echo "$out/sdk"; return 0
    fi
    local tarball=""
    for dir in "${ZBX_SOURCE_DIR:-}" "$out/src"; do
        [ -n "$dir" ] || continue
        tarball="$(ls "$dir"/zabbix_*orig-vendor.tar.xz 2>/dev/null | head -n1 || true)"
        [ -n "$tarball" ] && break
    done
    if [ -z "$tarball" ] && command -v apt-get >/dev/null 2>&1; then
        (cd "$out/src" && apt-get source --download-only zabbix >"$out/src/apt-source.log" 2>&1) || true
        tarball="$(ls "$out/src"/zabbix_*orig-vendor.tar.xz 2>/dev/null | head -n1 || true)"
    fi
    [ -n "$tarball" ] || return 1
    local tmp="$out/sdk.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    tar -xJf "$tarball" -C "$tmp" --wildcards "*/$SDK_MODULE/*"
    local found
    found="$(find "$tmp" -type d -path "*/$SDK_MODULE" | head -n1)"
    [ -n "$found" ] || return 1
    rm -rf "$out/sdk" && mv "$found" "$out/sdk" && rm -rf "$tmp"
    echo "$out/sdk"
}

if ! sdk="$(find_sdk)"; then
    echo "build.sh: the plugin SDK ($SDK_MODULE) was not found; run ci/plugins/install.sh or set ZBX_PLUGIN_SDK_DIR" >&2
    exit 3
fi

export GOPROXY=off GOFLAGS=-mod=vendor GOTOOLCHAIN=local
export GOCACHE="$out/gocache" GOPATH="$out/gopath"

build_plugin() {
    local name="$1" target="$out/bin/$1-plugin"
    local src="$here/$name"
    local stamp
    stamp="$(cat "$src"/*.go "$src/go.mod" | sha256sum | cut -d' ' -f1)-$(go version | tr ' ' _)"
    if [ -x "$target" ] && [ "$(cat "$target.stamp" 2>/dev/null || true)" = "$stamp" ]; then
        echo "build.sh: $target is up to date"
        return 0
    fi
    local work="$out/build/$name"
    rm -rf "$work" && mkdir -p "$work/vendor/$SDK_MODULE"
    cp "$src"/*.go "$src/go.mod" "$work/"
    {
        echo "# $SDK_MODULE $SDK_VERSION"
        echo "## explicit; go 1.17"
        for p in $SDK_PACKAGES; do
            echo "$SDK_MODULE/$p"
            mkdir -p "$work/vendor/$SDK_MODULE/$p"
            cp "$sdk/$p"/*.go "$work/vendor/$SDK_MODULE/$p/"
        done
    } >"$work/vendor/modules.txt"
    local t0=$SECONDS
    (cd "$work" && go build -trimpath -o "$target.tmp" .)
    mv "$target.tmp" "$target"
    echo "$stamp" >"$target.stamp"
    echo "build.sh: built $target in $((SECONDS - t0))s"
}

build_plugin good
