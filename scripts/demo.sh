#!/usr/bin/env bash
# The README demo: build, start the demo MCP server (:8000) and the gateway in front of it
# (:8080, admin :9090, conf/demo.yaml), then show initialize / tools/list / tools/call going
# through with curl. Keeps both running until Ctrl-C when run in a terminal; `--once` (or no
# terminal) stops them after the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-gateway/target}"
once=0
[ "${1:-}" = "--once" ] && once=1
[ -t 0 ] && [ -t 1 ] || once=1

scripts/setup.sh
echo "== building (first run on a fresh machine takes a few minutes)"
cargo build --locked -q --bin mcp-gateway --example demo_server

GW=http://127.0.0.1:8080/mcp
for port in 8000 8080 9090; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use; stop what runs there (an earlier demo?) and retry" >&2
    exit 1
  fi
done

logdir=$(mktemp -d)
"$CARGO_TARGET_DIR/debug/examples/demo_server" --listen 127.0.0.1:8000 >"$logdir/demo.log" 2>&1 &
demo_pid=$!
RUST_LOG=warn "$CARGO_TARGET_DIR/debug/mcp-gateway" -c conf/demo.yaml >"$logdir/gateway.log" 2>&1 &
gw_pid=$!
cleanup() { kill "$gw_pid" "$demo_pid" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:9090/readyz >/dev/null 2>&1 && grep -q listening "$logdir/demo.log" && break
  sleep 0.1
done
curl -fsS http://127.0.0.1:9090/readyz >/dev/null || { echo "gateway did not start:"; cat "$logdir"/*.log; exit 1; }

H=(-sS -H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
show() { printf '\n\033[1m$ %s\033[0m\n' "$1"; }

show "initialize (through the gateway on :8080 to the demo server on :8000)"
curl "${H[@]}" -D "$logdir/h" "$GW" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
SID=$(awk 'tolower($1)=="mcp-session-id:" {print $2}' "$logdir/h" | tr -d '\r')
echo "Mcp-Session-Id: $SID"
curl "${H[@]}" -H "mcp-session-id: $SID" "$GW" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' -o /dev/null -w 'notifications/initialized -> HTTP %{http_code}\n'

show "tools/list"
curl "${H[@]}" -H "mcp-session-id: $SID" "$GW" -d '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' | sed -n 's/^data: //p' | jq -c '.result.tools[] | {name, description}'

show "tools/call add {a: 2, b: 3}"
curl "${H[@]}" -H "mcp-session-id: $SID" "$GW" -d '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}'

show "tools/call long_running: progress events stream through as they happen"
curl -N "${H[@]}" -H "mcp-session-id: $SID" "$GW" -d '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"long_running","arguments":{"steps":3,"interval_ms":400},"_meta":{"progressToken":"p1"}}}' \
  | while IFS= read -r line; do case "$line" in data:*) printf '%s  %s\n' "$(date +%T.%3N)" "$line";; esac; done

show "a malformed request gets a JSON-RPC error from the gateway itself"
curl "${H[@]}" "$GW" -d '{"jsonrpc":"2.0","id":5,' -w '  (HTTP %{http_code})\n'

show "metrics (admin :9090/metrics)"
curl -sS http://127.0.0.1:9090/metrics | grep '^mcp_gateway_requests_total'

if [ "$once" = 1 ]; then
  echo; echo "demo done; stopping."
else
  echo; echo "Gateway: $GW   Admin: http://127.0.0.1:9090/metrics   Logs: $logdir   (Ctrl-C to stop)"
  wait "$gw_pid"
fi
