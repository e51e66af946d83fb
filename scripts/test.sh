#!/usr/bin/env bash
# The one test command (README, CI): installs what is missing, then formatting, lints, all
# tests (unit, integration with real rmcp servers, doc tests, config checks, benches compile),
# and the Dockerfile's build steps run natively.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# Build outside the clone so repeated runs on one machine are incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-gateway/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/setup.sh
# The official Python MCP SDK, a last-wins JSON parser, as an upstream for tests/it/hostile.rs.
MCP_GATEWAY_PYTHON="$(scripts/python-sdk.sh)"
export MCP_GATEWAY_PYTHON
# Node 22 with the MCP conformance suite, Inspector CLI and server-everything (npm packages, in
# ~/.cache/mcp-gateway/node) for tests/it/conformance.rs, which runs this again (quietly) and
# skips, saying why, when they cannot be installed (fails under CI).
scripts/node-tools.sh >/dev/null || echo "test: Node tools not installed; tests/it/conformance.rs will say why" >&2

step() { printf '\n== %s\n' "$*"; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets -D warnings"
cargo clippy --locked --all-targets -- -D warnings
step "fuzz targets compile (cargo check; running them needs nightly: scripts/fuzz.sh)"
# A separate workspace, so nothing else builds it: unchecked, a target drifted out of date
# with the API once. Stable compiles it; only running it needs nightly's sanitizers.
cargo check --locked --manifest-path fuzz/Cargo.toml --bins
step "cargo test --all-targets"
# CI keeps the head and tail of a failing run's output: a backtrace (RUST_BACKTRACE=1 in the
# environment) pushes the panic message itself out of both. MCP_TEST_BACKTRACE=1 brings it back.
export RUST_BACKTRACE="${MCP_TEST_BACKTRACE:-0}"
cargo test --locked --all-targets
step "cargo test --doc"
cargo test --locked --doc
step "Dockerfile build steps, natively"
scripts/docker-steps.sh
