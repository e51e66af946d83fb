#!/usr/bin/env bash
# Run every fuzz target for a bounded time: scripts/fuzz.sh [SECONDS_PER_TARGET] (default 60).
# Needs the nightly toolchain (rustup) and cargo-fuzz (installed here if missing). Prints, per
# target, the executions and whether a crash was found; exits non-zero on a crash.
# Not part of scripts/test.sh: a fuzz run is a search, not a check with a fixed answer.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-gateway/target}-fuzz"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
status=0
for target in $(cargo +nightly fuzz list --fuzz-dir fuzz); do
  log=$(mktemp)
  mkdir -p "fuzz/corpus/$target"
  # The working corpus (not committed) first, then the committed seeds it starts from.
  if cargo +nightly fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
      -- -max_total_time="$secs" \
      -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    result="no crash"
  else
    result="CRASH (see fuzz/artifacts/$target/)"; status=1
  fi
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || true)
  echo "fuzz $target: ${execs:-?} executions in ${secs}s, $result"
  [ "$status" -eq 0 ] || tail -30 "$log"
  rm -f "$log"
done
exit "$status"
