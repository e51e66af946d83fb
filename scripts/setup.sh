#!/usr/bin/env bash
# Install what building and testing mcp-gateway needs on a fresh Debian machine, if missing:
# cmake, a C compiler and pkg-config (Pingora builds zlib-ng with cmake), curl and jq (demo),
# redis-server (tests start their own on 127.0.0.1: the shared quota and approval store),
# chromium (headless: the admin status page test and scripts/status-screenshot.sh).
# Idempotent and quiet when everything is there. Needs root (or sudo) only to install.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
# c++ too: the fuzz targets' libFuzzer is C++, compiled when test.sh type-checks them.
{ command -v cc && command -v c++; } >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
for pkg in "$@"; do   # extra packages requested by the caller, e.g. nginx for load tests
  bin=${pkg%%:*}; name=${pkg#*:}
  command -v "$bin" >/dev/null 2>&1 || need+=("$name")
done

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "setup: cargo is in \$HOME/.cargo/bin; add it to PATH" >&2
  else
    echo "setup: cargo not found; install a Rust toolchain (rustup, stable >= 1.89)" >&2
  fi
  exit 1
fi
