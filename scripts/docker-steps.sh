#!/usr/bin/env bash
# Run the Dockerfile's build and smoke steps natively (no Docker daemon on these machines),
# so the Dockerfile stays true: locked release build, `--version` smoke test, and `-t` on the
# config the image ships.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-gateway/target}"
cargo build --release --locked --bin mcp-gateway
bin="$CARGO_TARGET_DIR/release/mcp-gateway"
"$bin" --version
"$bin" -t -c conf/container.yaml
echo "docker steps: ok"
