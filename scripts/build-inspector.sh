#!/usr/bin/env bash
# Builds the browser inspector's wasm module (feature `inspector`) into
# www/pkg with wasm-bindgen --target web. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_wasm_target
ensure_wasm_bindgen
# Its own target folder: the Worker build uses other features of the same
# crate and would otherwise rebuild it every time the two alternate.
target=target/inspector
cargo build --locked --release --lib --target wasm32-unknown-unknown \
  --no-default-features --features inspector --target-dir "$target"
wasm-bindgen --target web --no-typescript --out-dir www/pkg --out-name snapkeep \
  "$target/wasm32-unknown-unknown/release/snapkeep.wasm"
