#!/usr/bin/env bash
# The README demo: build, start the demo MCP server (:8000, logging every tools/call it
# receives) and the gateway in front of it (conf/demo.yaml: plain route :8080/mcp, virtual
# server :8081/v/demo/mcp for two agents with API keys, admin :9090), then show with curl what
# the gateway is for: two agents see different tools through one virtual server, a hidden tool
# is refused before the upstream sees it, an argument rule blocks a call, a quota answers 429,
# the audit trail of those calls, the metrics, and the status page.
#
# Keeps both running until Ctrl-C when run in a terminal; `--once` (or no terminal) stops them
# after the demo. Exits non-zero when a step does not behave as it says (tests/it/demo.rs runs
# it). Ports: DEMO_UPSTREAM_PORT (8000), DEMO_PORT (8080), DEMO_AGENT_PORT (8081),
# DEMO_ADMIN_PORT (9090).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-gateway/target}"
once=0
[ "${1:-}" = "--once" ] && once=1
[ -t 0 ] && [ -t 1 ] || once=1
UP_PORT=${DEMO_UPSTREAM_PORT:-8000}
PORT=${DEMO_PORT:-8080}
AGENT_PORT=${DEMO_AGENT_PORT:-8081}
ADMIN_PORT=${DEMO_ADMIN_PORT:-9090}

scripts/setup.sh
echo "== building (first run on a fresh machine takes a few minutes)"
cargo build --locked -q --bin mcp-gateway --example demo_server
GATEWAY="$CARGO_TARGET_DIR/debug/mcp-gateway"

for port in "$UP_PORT" "$PORT" "$AGENT_PORT" "$ADMIN_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use; stop what runs there (an earlier demo?) and retry" >&2
    exit 1
  fi
done

# conf/demo.yaml as it is, with the audit trail in a fresh temporary directory (and other ports
# when asked for).
tmp=$(mktemp -d)
AUDIT="$tmp/audit.jsonl"
sed -e "s|127.0.0.1:8000|127.0.0.1:$UP_PORT|; s|127.0.0.1:8080|127.0.0.1:$PORT|" \
    -e "s|127.0.0.1:8081|127.0.0.1:$AGENT_PORT|; s|127.0.0.1:9090|127.0.0.1:$ADMIN_PORT|" \
    -e "s|/tmp/mcp-gateway-demo/audit.jsonl|$AUDIT|" conf/demo.yaml >"$tmp/demo.yaml"

"$CARGO_TARGET_DIR/debug/examples/demo_server" --listen "127.0.0.1:$UP_PORT" --log-calls \
  >"$tmp/demo-server.log" 2>&1 &
demo_pid=$!
RUST_LOG=warn "$GATEWAY" -c "$tmp/demo.yaml" >"$tmp/gateway.log" 2>&1 &
gw_pid=$!
cleanup() { kill "$gw_pid" "$demo_pid" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

ADMIN=http://127.0.0.1:$ADMIN_PORT
for _ in $(seq 100); do
  curl -fsS "$ADMIN/readyz" >/dev/null 2>&1 && grep -q listening "$tmp/demo-server.log" && break
  sleep 0.1
done
curl -fsS "$ADMIN/readyz" >/dev/null || { echo "gateway did not start:"; cat "$tmp"/*.log; exit 1; }

# --- helpers ------------------------------------------------------------------------------
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
fail() { printf '\n\033[31mdemo step failed: %s\033[0m\n' "$*" >&2; exit 1; }
requests=0   # requests sent through the gateway: each leaves one audit record

# rpc PORT PATH KEY SESSION BODY: POST a JSON-RPC message; prints the command as a reader would
# type it (every call also sends content-type and accept headers). Leaves the HTTP status in
# $code, the headers in $tmp/h, and the JSON answer (the last SSE data event, or the JSON body)
# in $tmp/answer.
rpc() {
  local port=$1 path=$2 key=$3 sid=$4 body=$5 shown="curl :$1$2"
  local args=(-sS -D "$tmp/h" -o "$tmp/raw" -w '%{http_code}'
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
  [ -n "$key" ] && { args+=(-H "x-api-key: $key"); shown+=" -H 'x-api-key: $key'"; }
  [ -n "$sid" ] && { args+=(-H "mcp-session-id: $sid"); shown+=' -H "mcp-session-id: $SID"'; }
  printf '$ %s -d %s\n' "$shown" "'$body'"
  code=$(curl "${args[@]}" "http://127.0.0.1:$port$path" -d "$body")
  requests=$((requests + 1))
  if grep -q '^data: ' "$tmp/raw"; then sed -n 's/^data: //p' "$tmp/raw" | tail -n 1; else cat "$tmp/raw"; fi >"$tmp/answer"
}
answer() { jq "$@" "$tmp/answer"; }
expect() { jq -e "$1" "$tmp/answer" >/dev/null || fail "$2 (HTTP $code: $(cat "$tmp/answer"))"; }
header() { awk -v h="$1:" 'tolower($1)==h {sub(/\r$/, ""); $1=""; sub(/^ /, ""); print}' "$tmp/h"; }
# The demo server's log lines since mark_upstream_log: what actually reached the upstream.
mark_upstream_log() { seen=$(wc -l <"$tmp/demo-server.log"); }
upstream_log_since_mark() { tail -n "+$((seen + 1))" "$tmp/demo-server.log"; }

# initialize KEY: open a virtual-server session as the agent with that key; sets $SID.
VS=/v/demo/mcp
initialize() {
  rpc "$AGENT_PORT" "$VS" "$1" "" '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
  [ "$code" = 200 ] || fail "initialize as $1 answered HTTP $code"
  SID=$(header mcp-session-id)
  [ -n "$SID" ] || fail "initialize as $1 gave no Mcp-Session-Id"
  answer -c '{serverInfo: .result.serverInfo, capabilities: .result.capabilities}'
  rpc "$AGENT_PORT" "$VS" "$1" "$SID" '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
}
OPS_KEY=demo-key-ops-agent
SUPPORT_KEY=demo-key-support-agent

# --- the demo -----------------------------------------------------------------------------
bold "0. A plain route (:$PORT/mcp, no credentials) passes everything through, progress events as they happen"
rpc "$PORT" /mcp "" "" '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
PLAIN_SID=$(header mcp-session-id)
answer -c '.result.serverInfo'
[ -n "$PLAIN_SID" ] || fail "the plain route's initialize gave no Mcp-Session-Id"
curl -sS -o /dev/null -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
  -H "mcp-session-id: $PLAIN_SID" "http://127.0.0.1:$PORT/mcp" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
requests=$((requests + 1))
body='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"long_running","arguments":{"steps":3,"interval_ms":400},"_meta":{"progressToken":"p1"}}}'
printf '$ curl -N :%s/mcp -H "mcp-session-id: $SID" -d %s\n' "$PORT" "'$body'"
curl -sSN -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
  -H "mcp-session-id: $PLAIN_SID" "http://127.0.0.1:$PORT/mcp" -d "$body" \
  | while IFS= read -r line; do case "$line" in "data: "?*) printf '%s  %s\n' "$(date +%T.%3N)" "$line";; esac; done \
  | tee "$tmp/stream"
requests=$((requests + 1))
[ "$(grep -c '"notifications/progress"' "$tmp/stream")" = 3 ] || fail "expected 3 progress events"

bold "1. Two agents, two API keys, ONE virtual server (:$AGENT_PORT$VS): different tool lists"
echo "# ops-agent"
initialize "$OPS_KEY"; OPS_SID=$SID
rpc "$AGENT_PORT" "$VS" "$OPS_KEY" "$OPS_SID" '{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
answer -c '[.result.tools[].name]'
expect '[.result.tools[].name] == ["demo__add","demo__echo","demo__long_running"]' "ops-agent should see add, echo and long_running"
echo "# support-agent"
initialize "$SUPPORT_KEY"; SUPPORT_SID=$SID
rpc "$AGENT_PORT" "$VS" "$SUPPORT_KEY" "$SUPPORT_SID" '{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
answer -c '[.result.tools[].name]'
expect '[.result.tools[].name] == ["demo__echo"]' "support-agent should see echo only"

bold "2. A hidden tool is refused, and the demo server never sees the call"
echo "# ops-agent may call add: the demo server logs the call"
mark_upstream_log
rpc "$AGENT_PORT" "$VS" "$OPS_KEY" "$OPS_SID" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"demo__add","arguments":{"a":2,"b":3}}}'
answer -c '.result.content'
expect '.result.content[0].text == "5"' "add 2 + 3 should be 5"
echo "demo server log: $(upstream_log_since_mark)"
upstream_log_since_mark | grep -q '^tools/call add' || fail "the demo server did not log the allowed call"
echo "# support-agent may not: the gateway answers, the demo server logs nothing"
mark_upstream_log
rpc "$AGENT_PORT" "$VS" "$SUPPORT_KEY" "$SUPPORT_SID" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"demo__add","arguments":{"a":2,"b":3}}}'
answer -c .error
expect '.error.code == -32602' "support-agent's call of add should be refused with -32602"
echo "demo server log: $(upstream_log_since_mark)(nothing: the call never left the gateway)"
[ -z "$(upstream_log_since_mark)" ] || fail "the refused call reached the demo server"

bold "3. An argument rule (policy add-small-numbers: a and b from -1000 to 1000) blocks a call"
mark_upstream_log
rpc "$AGENT_PORT" "$VS" "$OPS_KEY" "$OPS_SID" '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"demo__add","arguments":{"a":5000000,"b":1}}}'
answer -c .error
expect '.error.data.rule == "add-small-numbers" and (.error.message | contains("add-small-numbers"))' "the policy should refuse naming its rule"
[ -z "$(upstream_log_since_mark)" ] || fail "the call the policy refused reached the demo server"
echo "demo server log: (nothing)"

bold "4. A quota (echo-per-minute: 3 echo calls a minute per caller) answers the 4th call with 429"
for i in 1 2 3 4; do
  rpc "$AGENT_PORT" "$VS" "$SUPPORT_KEY" "$SUPPORT_SID" "{\"jsonrpc\":\"2.0\",\"id\":$((4 + i)),\"method\":\"tools/call\",\"params\":{\"name\":\"demo__echo\",\"arguments\":{\"text\":\"hello $i\"}}}"
  echo "  -> HTTP $code $(answer -c '.result.content // .error')"
  if [ "$i" -lt 4 ]; then [ "$code" = 200 ] || fail "echo call $i should pass (HTTP $code)"; fi
done
[ "$code" = 429 ] || fail "the 4th echo call should get 429, got HTTP $code"
retry_after=$(header retry-after)
[ -n "$retry_after" ] || fail "the 429 has no Retry-After header"
echo "  -> Retry-After: $retry_after"
expect '.error.data.limit == "echo-per-minute"' "the 429 should name the limit"

bold "5. The audit trail: one hash-chained record per request ($AUDIT)"
# Records are written by a background writer a few milliseconds after each response.
for _ in $(seq 50); do
  [ "$(wc -l <"$AUDIT" 2>/dev/null || echo 0)" -ge "$requests" ] && break
  sleep 0.1
done
records=$(wc -l <"$AUDIT")
[ "$records" = "$requests" ] || fail "expected $requests audit records (one per request), found $records"
echo "$records records for $requests requests. The tools/call ones:"
echo "\$ mcp-gateway audit query $AUDIT --json | jq -c 'select(.method == \"tools/call\") | {...}'"
"$GATEWAY" audit query "$AUDIT" --json | jq -c 'select(.method == "tools/call") | {
    subject: (.principal.subject // "anonymous"), tool: .tool.exposed,
    arguments: (.arguments // {} | with_entries(.value |= if type == "string" and startswith("sha256:") then .[0:19] + "..." else . end)),
    decision, refused_by, rule, status} | with_entries(select(.value != null))' | tee "$tmp/calls"
[ "$(grep -c '"refused_by":"visibility"' "$tmp/calls")" = 1 ] || fail "the audit should show the hidden tool's refusal"
[ "$(grep -c '"rule":"add-small-numbers"' "$tmp/calls")" = 1 ] || fail "the audit should show the policy refusal"
[ "$(grep -c '"rule":"echo-per-minute"' "$tmp/calls")" = 1 ] || fail "the audit should show the quota refusal"
grep -q '"hello' "$AUDIT" && fail "the audit should hold echo's text only as a hash (audit.redact)"
echo "\$ mcp-gateway audit verify $AUDIT"
"$GATEWAY" audit verify "$AUDIT" || fail "audit verify failed"

bold "6. The metrics (admin :$ADMIN_PORT/metrics)"
curl -sS "$ADMIN/metrics" >"$tmp/metrics"
echo "\$ curl -s :$ADMIN_PORT/metrics | grep -E 'requests_total.*tools/call|refusals|policy_denials|quota_decisions'"
grep -E '^mcp_gateway_(requests_total\{.*tools/call|refusals_total|policy_denials_total|quota_decisions_total)' "$tmp/metrics" \
  || fail "no governance metrics"
# metric LINE-PATTERN...: the value of the one series whose line matches every pattern.
metric() {
  local lines; lines=$(cat "$tmp/metrics")
  for p in "$@"; do lines=$(grep -F -- "$p" <<<"$lines" || true); done
  [ "$(grep -c . <<<"$lines")" = 1 ] && awk '{print $NF}' <<<"$lines"
}
[ "$(metric mcp_gateway_refusals_total 'step="visibility"' 'virtual_server="demo"')" = 1 ] \
  || fail "the hidden tool's refusal was not counted"
[ "$(metric mcp_gateway_policy_denials_total 'rule="add-small-numbers"')" = 1 ] || fail "the policy denial was not counted"
[ "$(metric mcp_gateway_quota_decisions_total 'limit="echo-per-minute"' 'result="limited"')" = 1 ] \
  || fail "the quota hit was not counted"

bold "7. The status page"
printf '$ curl -u admin:demo-admin-token %s/admin/status.json | jq -c "{requests, tool_calls}"\n' "$ADMIN"
status_json=$(curl -sS -u admin:demo-admin-token "$ADMIN/admin/status.json") \
  || fail "the status page did not answer"
jq -c '{requests: .requests, tool_calls: .tool_calls}' <<<"$status_json" \
  || fail "the status page's JSON did not parse: $status_json"
[ "$(jq '.tool_calls.refused' <<<"$status_json")" -ge 3 ] \
  || fail "the status page does not count the refused calls"
echo "Open $ADMIN/admin/status in a browser: user admin, password demo-admin-token"
echo "(the admin token of conf/demo.yaml; the same figures as HTML, refreshed every 5 s)"

if [ "$once" = 1 ]; then
  echo; echo "demo done; stopping."
else
  echo; echo "Plain route: http://127.0.0.1:$PORT/mcp   Virtual server: http://127.0.0.1:$AGENT_PORT$VS"
  echo "Admin: $ADMIN   Logs and audit trail: $tmp   (Ctrl-C to stop)"
  wait "$gw_pid"
fi
