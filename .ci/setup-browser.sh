#!/usr/bin/env bash
# Install what the Pyodide (Node) and browser (Chromium) tests need, on a
# Debian machine, as root. Idempotent: installs only what is missing, and
# touches no network at all when everything is already there.
#   node + npm : Pyodide under Node, `npm pack pyodide@…` for the sites, and
#                the cell badge's labextension (js/, built by setup.py)
#   chromium   : Debian's build, driven by Playwright from PyPI
#                (never `playwright install`: it downloads its own browser)
# Python packages (jupyterlite-*, playwright) come from the project's
# extras and requirements/test.txt; Pyodide and wheels are fetched into the download cache by the
# tests themselves (ipy_lazycache.offline_pyodide).
set -euo pipefail

# Another machine: install Node >= 18 and a Chromium yourself and set IPY_LAZYCACHE_CHROMIUM.
CHROMIUM=${IPY_LAZYCACHE_CHROMIUM:-/usr/lib/chromium/chromium}
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x "$CHROMIUM" ] || missing+=(chromium)

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "setup-browser: missing ${missing[*]}; installing needs root and apt-get (Debian, Ubuntu)." \
             "Install Node >= 18 and a Chromium yourself (IPY_LAZYCACHE_CHROMIUM=its binary)," \
             "or run FAST=1 bash .ci/run (no browser tests)" >&2
        exit 1
    fi
    echo "setup-browser: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
    echo "setup-browser: Pyodide needs Node >= 18, found $(node --version)" >&2
    exit 1
fi
echo "setup-browser: node $(node --version), npm $(npm --version), $("$CHROMIUM" --version)"
