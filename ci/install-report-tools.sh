#!/usr/bin/env bash
# Install what the report tests use to check the reports as their readers see them:
# xmllint (Debian libxml2-utils) for the JUnit schema, a Python virtual environment
# with junitparser (PyPI) as a real JUnit consumer, and Chromium (Debian chromium) to
# open the HTML report headless (tests/report_html.rs). Idempotent.
#
# Usage: ci/install-report-tools.sh
# Env:
#   ZBXC_PY_VENV   where the virtual environment goes (default: $HOME/.cache/zbx-conform/report-py)
# Prints the environment's Python as the last line, for ZBXC_PYTHON.
set -euo pipefail

VENV=${ZBXC_PY_VENV:-${HOME:-/root}/.cache/zbx-conform/report-py}
JUNITPARSER_VERSION=5.0.3

log() { printf 'install-report-tools: %s\n' "$*" >&2; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi

wanted=()
command -v xmllint >/dev/null || wanted+=(libxml2-utils)
command -v chromium >/dev/null || wanted+=(chromium)
python3 -m venv --help >/dev/null 2>&1 || wanted+=(python3-venv)
if ((${#wanted[@]})); then
    log "apt-get install ${wanted[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${wanted[@]}" >/dev/null
fi

if ! "$VENV/bin/python3" -c "import junitparser" 2>/dev/null; then
    log "junitparser $JUNITPARSER_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python3" -m pip install -q "junitparser==$JUNITPARSER_VERSION"
fi
echo "$VENV/bin/python3"
