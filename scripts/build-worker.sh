#!/usr/bin/env bash
# Builds the Cloudflare Worker (feature `worker`) into build/ with
# worker-build, offline: wasm-bindgen comes from ~/.cargo/bin (the version
# Cargo.lock pins) and wasm-opt is skipped. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_wasm_target
ensure_wasm_bindgen
ensure_worker_build
ensure_edge_npm
export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
# worker-build looks for esbuild in its cache or downloads it from the npm
# registry; point it at the pinned one wrangler brings.
export PATH="$PWD/tools/edge/node_modules/.bin:$PATH"
worker-build --release --no-opt -- --no-default-features --features worker
