#!/usr/bin/env bash
# Load test (first version): the demo MCP server behind nginx and behind the gateway's plain
# route, in the same run, interleaved over rounds; prints medians and ratios and writes them to
# load-tests/results/. All traffic on 127.0.0.1; every run is bounded by -z DURATION.
#
#   load-tests/run.sh [DURATION] [CONNECTIONS] [ROUNDS]     (defaults: 5s 16 3)
#
# Needs nginx (installed with apt if missing) and oha (`cargo install oha --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-gateway/target}"
DURATION=${1:-5s}; CONNS=${2:-16}; ROUNDS=${3:-3}

scripts/setup.sh nginx:nginx
command -v oha >/dev/null || { echo "oha not found: cargo install oha --locked" >&2; exit 1; }
cargo build --release --locked -q --bin mcp-gateway --example fast_upstream
BIN=$CARGO_TARGET_DIR/release

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# Upstream and load generator on core 1, proxies on core 0.
# A minimal stateless JSON upstream (20 tools, ~8 KB tools/list): the demo server's
# sessionful SSE mode serializes a session's requests (~30 rps) and would be measured instead.
taskset -c 1 "$BIN/examples/fast_upstream" 127.0.0.1:18000 20 >"$work/upstream.log" 2>&1 & pids+=($!)
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  upstream demo { server 127.0.0.1:18000; keepalive 64; }
  server {
    listen 127.0.0.1:18001;
    location /mcp {
      proxy_pass http://demo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
taskset -c 0 nginx -c "$work/nginx.conf" -g 'daemon off;' & pids+=($!)
nginx_master=$!
cat >"$work/gw.yaml" <<YAML
server: { threads: 1, grace_period_seconds: 0, graceful_shutdown_timeout_seconds: 1,
          pid_file: $work/gw.pid, upgrade_sock: $work/gw.sock }
listeners:
  - address: 127.0.0.1:18002
    auth: none
    routes: [{ path: /mcp, upstream: demo }]
upstreams:
  - { name: demo, url: "http://127.0.0.1:18000/mcp" }
admin: { address: 127.0.0.1:18090 }
YAML
RUST_LOG=error taskset -c 0 "$BIN/mcp-gateway" -c "$work/gw.yaml" >"$work/gw.log" 2>&1 & pids+=($!)
gw_pid=$!
for _ in $(seq 100); do curl -fsS http://127.0.0.1:18090/readyz >/dev/null 2>&1 && break; sleep 0.1; done

H=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
session() { # URL -> session id (empty for a stateless server), checking tools/list works
  local url=$1 sid
  sid=$(curl -sS -D - -o /dev/null "${H[@]}" "$url" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"load","version":"1"}}}' \
        | awk 'tolower($1)=="mcp-session-id:" {print $2}' | tr -d '\r')
  local S=(); [ -n "$sid" ] && S=(-H "mcp-session-id: $sid")
  curl -sS -o /dev/null "${H[@]}" "${S[@]}" "$url" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  curl -sS "${H[@]}" "${S[@]}" "$url" -d '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' | grep -q '"tools"' \
    || { echo "tools/list failed through $url" >&2; exit 1; }
  echo "$sid"
}
declare -A URL=( [direct]=http://127.0.0.1:18000/mcp [nginx]=http://127.0.0.1:18001/mcp [gateway]=http://127.0.0.1:18002/mcp )
declare -A SID
for t in direct nginx gateway; do SID[$t]=$(session "${URL[$t]}"); done

BODY_LIST='{"jsonrpc":"2.0","id":3,"method":"tools/list"}'
BODY_CALL='{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'
# CPU seconds (user + system) a process has used, from /proc.
TCK=$(getconf CLK_TCK)
cpu() { awk -v t="$TCK" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
nginx_worker=$(pgrep -P "$nginx_master" | head -1)
declare -A PID=( [direct]="" [nginx]=$nginx_worker [gateway]=$gw_pid )
secs=${DURATION%s}
declare -A RPS CPU
for round in $(seq "$ROUNDS"); do
  for kind in list call; do
    body=BODY_${kind^^}
    for t in direct nginx gateway; do
      S=(); [ -n "${SID[$t]}" ] && S=(-H "mcp-session-id: ${SID[$t]}")
      before=0; [ -n "${PID[$t]}" ] && before=$(cpu "${PID[$t]}")
      json=$(taskset -c 1 oha -z "$DURATION" -c "$CONNS" --no-tui --output-format json -m POST "${H[@]}" \
              "${S[@]}" -d "${!body}" "${URL[$t]}")
      ok=$(echo "$json" | jq '.statusCodeDistribution["200"] // 0')
      all=$(echo "$json" | jq '[.statusCodeDistribution[]] | add // 0')
      [ "$ok" = "$all" ] || { echo "non-200 answers through $t: $(echo "$json" | jq -c .statusCodeDistribution)" >&2; exit 1; }
      rps=$(echo "$json" | jq '.summary.requestsPerSec')
      pct=0; [ -n "${PID[$t]}" ] && pct=$(awk -v a="$before" -v b="$(cpu "${PID[$t]}")" -v s="$secs" 'BEGIN {print 100 * (b - a) / s}')
      RPS[$kind.$t]+="$rps "; CPU[$kind.$t]+="$pct "
      echo "round $round $kind $t: $rps rps, proxy CPU $pct%" >&2
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
commit=$(git rev-parse --short HEAD)
out="load-tests/results/$(date -u +%Y-%m-%dT%H%M)-$commit.md"
{
  echo "# Load test $(date -u +%FT%TZ), commit $commit"
  echo
  echo "oha -z $DURATION -c $CONNS, $ROUNDS interleaved rounds, medians. Proxies on core 0 (nginx 1 worker, gateway threads: 1), upstream and oha on core 1; all on this 2-core box."
  echo
  echo "| method | direct rps | nginx rps (CPU%) | gateway rps (CPU%) | gateway / nginx | nginx µs CPU/req | gateway µs CPU/req |"
  echo "|---|---|---|---|---|---|---|"
  for kind in list call; do
    d=$(echo "${RPS[$kind.direct]}" | median); n=$(echo "${RPS[$kind.nginx]}" | median); g=$(echo "${RPS[$kind.gateway]}" | median)
    nc=$(echo "${CPU[$kind.nginx]}" | median); gc=$(echo "${CPU[$kind.gateway]}" | median)
    printf '| tools/%s | %.0f | %.0f (%.0f%%) | %.0f (%.0f%%) | %.2f | %.1f | %.1f |\n' "$kind" "$d" "$n" "$nc" "$g" "$gc" \
      "$(awk -v g="$g" -v n="$n" 'BEGIN {print g / n}')" \
      "$(awk -v c="$nc" -v r="$n" 'BEGIN {print 10000 * c / r}')" "$(awk -v c="$gc" -v r="$g" 'BEGIN {print 10000 * c / r}')"
  done
  echo
  echo "CPU% is the proxy process's user+system time over the run (100% = one core); µs CPU/req = CPU time per request, the figure least disturbed by a shared box. A proxy below ~100% CPU was not the bottleneck, and its rps ratio is then not its capacity."
  echo
  echo "Upstream: examples/fast_upstream (20 tools) on core 1, shared with oha."
} | tee "$out"
