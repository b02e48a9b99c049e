# Shared by the scripts: install a tool only when it is missing or at the
# wrong version, so reruns are fast. Source it; every function is idempotent.

# The wasm-bindgen version Cargo.lock pins (the CLI must match it exactly).
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_target() {
  if command -v rustup >/dev/null; then
    rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  fi
}

ensure_wasm_bindgen() {
  local want; want=$(wasm_bindgen_version)
  [ -n "$want" ] || { echo "Cargo.lock pins no wasm-bindgen"; return 1; }
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    echo "installing wasm-bindgen-cli $want (a few minutes)"
    # --locked first; fall back to fresh resolution if a locked dependency
    # was yanked from the registry since.
    cargo install wasm-bindgen-cli --version "=$want" --locked \
      || cargo install wasm-bindgen-cli --version "=$want"
  fi
}

WORKER_BUILD_VERSION=0.8.7
ensure_worker_build() {
  if [ "$(worker-build --version 2>/dev/null)" != "$WORKER_BUILD_VERSION" ]; then
    echo "installing worker-build $WORKER_BUILD_VERSION (a few minutes)"
    cargo install worker-build --version "=$WORKER_BUILD_VERSION" --locked \
      || cargo install worker-build --version "=$WORKER_BUILD_VERSION"
  fi
}

ensure_edge_npm() {
  if [ ! -x tools/edge/node_modules/.bin/wrangler ]; then
    command -v npm >/dev/null || { echo "npm (Node.js 20) is required for wrangler"; return 1; }
    (cd tools/edge && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
