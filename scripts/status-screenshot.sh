#!/usr/bin/env bash
# Screenshot of the admin status page with traffic on it (docs/status-page.png): builds,
# starts the demo MCP server (:8100) and the gateway with conf/status.yaml (:8180, admin
# :9190), sends traffic with curl (allowed calls, a policy denial, a quota 429, a hidden
# tool, a pending approval, a bad API key), then loads the page in headless Chromium with
# Basic credentials (any user name, the admin token as the password).
# Usage: scripts/status-screenshot.sh [OUT.png]   (default docs/status-page.png)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-gateway/target}"
out=$(realpath -m "${1:-docs/status-page.png}")

scripts/setup.sh
cargo build --locked -q --bin mcp-gateway --example demo_server
for port in 8100 8180 9190; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use; stop what runs there and retry" >&2
    exit 1
  fi
done

work=$(mktemp -d)
# The same configuration, with the audit trail in this run's own directory.
sed "s|/tmp/mcp-gateway-status-audit.jsonl|$work/audit.jsonl|" conf/status.yaml >"$work/status.yaml"
"$CARGO_TARGET_DIR/debug/examples/demo_server" --listen 127.0.0.1:8100 >"$work/demo.log" 2>&1 &
demo_pid=$!
RUST_LOG=warn "$CARGO_TARGET_DIR/debug/mcp-gateway" -c "$work/status.yaml" >"$work/gateway.log" 2>&1 &
gw_pid=$!
cleanup() { kill "$gw_pid" "$demo_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:9190/healthz >/dev/null 2>&1 && grep -q listening "$work/demo.log" && break
  sleep 0.1
done
curl -fsS http://127.0.0.1:9190/healthz >/dev/null || { echo "gateway did not start:"; cat "$work"/*.log; exit 1; }

H=(-sS -o /dev/null -H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
# open KEY ROUTE: initialize, print the session id.
open() {
  curl "${H[@]}" -D "$work/h" -H "authorization: Bearer $1" "http://127.0.0.1:8180$2" \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"status-screenshot","version":"1"}}}'
  local sid; sid=$(awk 'tolower($1)=="mcp-session-id:" {print $2}' "$work/h" | tr -d '\r')
  curl "${H[@]}" -H "authorization: Bearer $1" -H "mcp-session-id: $sid" "http://127.0.0.1:8180$2" \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  echo "$sid"
}
# call KEY ROUTE SID TOOL ARGS
call() {
  curl "${H[@]}" -H "authorization: Bearer $1" -H "mcp-session-id: $3" "http://127.0.0.1:8180$2" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"$4\",\"arguments\":$5}}"
}
A=alice-status-key B=bob-status-key
asid=$(open $A /v/all/mcp)
bsid=$(open $B /v/narrow/mcp)
for i in 1 2 3 4 5 6; do call $A /v/all/mcp "$asid" demo__add "{\"a\":$i,\"b\":2}"; done   # the 6th: 429
for t in hello status page; do
  call $A /v/all/mcp "$asid" demo__echo "{\"text\":\"$t\",\"token\":\"ghp_not-on-the-page\"}"
done
call $A /v/all/mcp "$asid" demo__echo '{"text":"DROP TABLE users"}'             # policy
for t in one two three; do call $B /v/narrow/mcp "$bsid" demo__echo "{\"text\":\"$t\"}"; done
call $B /v/narrow/mcp "$bsid" demo__add '{"a":1,"b":1}'                         # hidden
call $A /v/all/mcp "$asid" demo__long_running '{"steps":2}'                     # approval
curl "${H[@]}" -H 'authorization: Bearer wrong-key' http://127.0.0.1:8180/v/all/mcp \
  -d '{"jsonrpc":"2.0","id":9,"method":"ping"}'                                  # auth failure
sleep 0.5   # the audit writer gathers for 2 ms and writes; the page shows written records

profile="$work/chromium"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$profile" \
  --window-size=1280,1400 --screenshot="$out" \
  "http://viewer:status-admin-token@127.0.0.1:9190/admin/status" 2>"$work/chromium.log" \
  || { cat "$work/chromium.log"; exit 1; }
echo "wrote $out ($(stat -c %s "$out") bytes)"
