#!/usr/bin/env bash
# Create (once) the Python venv with the official MCP SDK that tests/it/hostile.rs runs as a
# last-wins upstream (and FastMCP), and print its interpreter's path. Idempotent; quiet when it exists.
# The venv lives outside the clone, next to the build cache.
set -euo pipefail
venv="${MCP_GATEWAY_VENV:-$HOME/.cache/mcp-gateway/venv}"
py="$venv/bin/python"
if ! "$py" -c 'import mcp.server' >/dev/null 2>&1; then
  echo "python-sdk: creating $venv with mcp==2.3.0" >&2
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check mcp==2.3.0 >&2
fi
# FastMCP (a second dual-era upstream implementation, tests/it/modern_vserver.rs); added to an
# existing venv too. Pinned: 4.1.2 is the version the protocol notes measured, and it keeps
# mcp at 2.3.0.
if ! "$py" -c 'import fastmcp' >/dev/null 2>&1; then
  echo "python-sdk: installing fastmcp==4.1.2 into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check fastmcp==4.1.2 >&2
fi
echo "$py"
