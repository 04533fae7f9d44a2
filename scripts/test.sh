#!/usr/bin/env bash
# Runs every test: guest logic natively, the built component through wasmtime, the node's
# modules, and the black-box tests (real servers, real WebRTC peers, headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
cargo test --workspace --locked --no-fail-fast "$@"
