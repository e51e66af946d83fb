#!/usr/bin/env bash
# Instruction profile of one gateway configuration under valgrind's callgrind, which counts
# instructions rather than time and so gives the same figure on a busy shared box.
#
#   load-tests/profile.sh plain|governed list|call|modern-list|modern-call|session [REQUESTS]
#                                                             (default 5000 requests)
#   modern-*: a stateless 2026-07-28 client (no session; `_meta` envelope and metadata
#   headers), as load-tests/run.sh's LT_MODERN target.
#   session: REQUESTS whole handshake-era sessions (examples/session_load: initialize,
#   notifications/initialized, one tools/call, which also opens the upstream session), the
#   figure "per request" being per session: what a legacy client pays once that a modern one
#   never does.
#
# Starts the fast upstream and the gateway (release build, under callgrind), warms it up,
# zeroes the counters, sends REQUESTS requests with oha, dumps, and prints instructions per
# request, the top functions by own cost, the gateway's own functions by inclusive cost, and
# who calls memcpy. The raw file stays in load-tests/profiles/ for kcachegrind.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-gateway/target}"
CONFIG=${1:?usage: profile.sh plain|governed list|call [REQUESTS]}; METHOD=${2:?list or call}
N=${3:-5000}
scripts/setup.sh valgrind:valgrind python3:python3
cargo build --release --locked -q --bin mcp-gateway --example fast_upstream --example session_load
BIN=$CARGO_TARGET_DIR/release
work=$(mktemp -d); pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
mkdir -p load-tests/profiles
# PROFILE_SED=<sed script> edits the configuration first (an A/B of one feature with the
# same binary, e.g. PROFILE_SED='/^audit:/,$d' for governed without its audit trail).
sed -e "s#@WORK@#$work#g" -e "${PROFILE_SED:-}" "load-tests/$CONFIG.yaml" >"$work/gw.yaml"
export LT_JWT_SECRET="profile-$RANDOM" LT_UPSTREAM_TOKEN="upstream-$RANDOM"
LT_SESSION_KEY=$(head -c 32 /dev/urandom | base64); export LT_SESSION_KEY
# Dual-era upstream (as run.sh); PROFILE_LEGACY_UPSTREAM=1: handshake-only, so a modern
# client's calls go through gateway-held sessions (the translated path).
"$BIN/examples/fast_upstream" 127.0.0.1:18100 20 --ports 20 --sessions \
  ${PROFILE_LEGACY_UPSTREAM:+--no-modern} >"$work/up.log" 2>&1 & pids+=($!)
out="load-tests/profiles/$CONFIG${PROFILE_SED:+-edited}-$METHOD-$(git rev-parse --short HEAD).cg"
RUST_LOG=error valgrind --tool=callgrind --callgrind-out-file="$work/cg" \
  "$BIN/mcp-gateway" -c "$work/gw.yaml" >"$work/gw.log" 2>&1 & pids+=($!)
case $CONFIG in
  plain) url=http://127.0.0.1:18002/mcp; admin=18090; tool=tool_000; auth=() ;;
  governed) url=http://127.0.0.1:18003/v/bench/mcp; admin=18091; tool=u00__tool_000
            auth=(-H "authorization: Bearer $(python3 load-tests/lib/mint-jwt.py "$LT_JWT_SECRET" profile-user bench)") ;;
  *) echo "unknown config $CONFIG" >&2; exit 2 ;;
esac
for _ in $(seq 300); do curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
H=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream' "${auth[@]}")
MODERN=2026-07-28
meta="\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"$MODERN\",\"io.modelcontextprotocol/clientCapabilities\":{},\"io.modelcontextprotocol/clientInfo\":{\"name\":\"profile\",\"version\":\"1\"}}"
case $METHOD in
  modern-*) H+=(-H "mcp-protocol-version: $MODERN" -H "mcp-method: tools/${METHOD#modern-}")
            [ "$METHOD" = modern-call ] && H+=(-H "mcp-name: $tool") ;;
  session) ;;
  *)
sid=$(curl -sS -D - -o /dev/null "${H[@]}" "$url" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"profile","version":"1"}}}' \
      | awk 'tolower($1)=="mcp-session-id:" {print $2}' | tr -d '\r')
[ -n "$sid" ] && H+=(-H "mcp-session-id: $sid" -H "mcp-protocol-version: 2025-06-18") ;;
esac
sleep 3   # let start-up work (discovery, upstream watchers) finish before counting
case $METHOD in
  list) body='{"jsonrpc":"2.0","id":3,"method":"tools/list"}' ;;
  call) body="{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"$tool\",\"arguments\":{\"id\":\"1\"}}}" ;;
  modern-list) body="{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\",\"params\":{$meta}}" ;;
  session) body="{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"$tool\",\"arguments\":{\"id\":\"1\"}}}" ;;
  modern-call) body="{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"$tool\",\"arguments\":{\"id\":\"1\"},$meta}}" ;;
  *) echo "unknown method $METHOD" >&2; exit 2 ;;
esac
bearer=${auth[1]:-}; bearer=${bearer#authorization: Bearer }
if [ "$METHOD" = session ]; then
  TOOL=$tool "$BIN/examples/session_load" "$url" 200 8 ${bearer:+"$bearer"} >/dev/null   # warm-up
  callgrind_control -z >/dev/null
  TOOL=$tool "$BIN/examples/session_load" "$url" "$N" 8 ${bearer:+"$bearer"} >&2
else
  oha -n 500 -c 8 --no-tui -m POST "${H[@]}" -d "$body" "$url" >/dev/null   # warm-up
  callgrind_control -z >/dev/null
  oha -n "$N" -c 8 --no-tui -m POST "${H[@]}" -d "$body" "$url" | grep -E "Success rate|Requests/sec" >&2
fi
callgrind_control -d >/dev/null
sleep 1
cp "$(ls "$work"/cg.* | tail -1)" "$out"
total=$(awk '/^summary:/ {print $2}' "$out")
echo "$CONFIG $METHOD: $total instructions for $N requests = $((total / N)) per request ($out)"
python3 load-tests/lib/cg-top.py "$out" 25 '' '^__memcpy' 'mcp_gateway::' | cut -c1-200
