#!/usr/bin/env bash
# Runs snapkeep's Worker locally: scripts/edge-dev.sh PORT
#
# Builds the Worker (wrangler.toml's build command) and serves it with
# `wrangler dev --local` on 127.0.0.1:PORT, with a local R2 bucket kept in
# $SNAPKEEP_EDGE_STATE (default .wrangler/state). Writes need the bearer
# token in $SNAPKEEP_EDGE_TOKEN (without it the deployment is read-only);
# reads need it or $SNAPKEEP_EDGE_READ_TOKEN, unless
# SNAPKEEP_EDGE_PUBLIC_READS=true makes them anonymous; the JSON views of
# an encrypted repository need its read key in $SNAPKEEP_EDGE_READ_KEY.
# `--test-scheduled` lets a request to /__scheduled?cron=... run the Cron
# Trigger (the watchdog) at once, as the tests do.
# Installs what it needs (wasm32 target, wasm-bindgen-cli, worker-build,
# wrangler) when missing, and skips what is present.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:?usage: scripts/edge-dev.sh PORT}
source scripts/tools.sh
ensure_wasm_target
ensure_wasm_bindgen
ensure_worker_build
ensure_edge_npm
vars=()
if [ -n "${SNAPKEEP_EDGE_TOKEN:-}" ]; then
  vars+=(--var "SNAPKEEP_WRITE_TOKEN:$SNAPKEEP_EDGE_TOKEN")
fi
if [ -n "${SNAPKEEP_EDGE_READ_TOKEN:-}" ]; then
  vars+=(--var "SNAPKEEP_READ_TOKEN:$SNAPKEEP_EDGE_READ_TOKEN")
fi
# SNAPKEEP_EDGE_READ_KEY: an encrypted repository's master key in hex
# (`snapkeep repo key export`), for the JSON views of encrypted repositories.
if [ -n "${SNAPKEEP_EDGE_READ_KEY:-}" ]; then
  vars+=(--var "SNAPKEEP_READ_KEY:$SNAPKEEP_EDGE_READ_KEY")
fi
if [ "${SNAPKEEP_EDGE_PUBLIC_READS:-}" = true ]; then
  vars+=(--var "SNAPKEEP_PUBLIC_READS:true")
fi
# SNAPKEEP_EDGE_INSPECTOR_PORT: the devtools port (wrangler's default, 9229,
# is shared by every instance; the tests give each its own).
if [ -n "${SNAPKEEP_EDGE_INSPECTOR_PORT:-}" ]; then
  vars+=(--inspector-port "$SNAPKEEP_EDGE_INSPECTOR_PORT")
fi
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
exec tools/edge/node_modules/.bin/wrangler dev --local --ip 127.0.0.1 --port "$port" \
  --persist-to "${SNAPKEEP_EDGE_STATE:-.wrangler/state}" --show-interactive-dev-session=false --test-scheduled \
  ${vars[@]+"${vars[@]}"}
