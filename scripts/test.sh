#!/usr/bin/env bash
# Installs what the tests need (skipping what is present) and runs them all:
# formatting, clippy with warnings denied, the wasm32 build of the pure core
# and its unit tests in wasm, every unit, integration, property and golden
# test, and a short fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo is required (install Rust with rustup)"; exit 1; }
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
fi
command -v mkfifo >/dev/null || { echo "mkfifo (coreutils) is required by the tests"; exit 1; }
# setfacl/getfacl (Debian's acl) for the ACL round trip of tests/metadata.rs
# and for regenerating tests/data/golden-v2.
if ! command -v setfacl >/dev/null && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends acl >/dev/null
fi
# tests/mount.rs mounts snapshots through /dev/fuse (as root the mount
# needs no helper; fuse3 gives fusermount3 for users and for unmounting).
if ! command -v fusermount3 >/dev/null && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends fuse3 >/dev/null
fi
[ -e /dev/fuse ] || { echo "/dev/fuse is required by tests/mount.rs"; exit 1; }
# tests/writable_postgres.rs starts PostgreSQL (Debian's) on a writable mount.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  command -v apt-get >/dev/null || { echo "PostgreSQL is required: install Debian's postgresql"; exit 1; }
  apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
# A one-off run (CI on a fresh clone) gains nothing from incremental caches
# but their gigabytes on disk.
[ -n "${CI:-}" ] && export CARGO_INCREMENTAL=0
free_kib=$(df -Pk . | awk 'NR==2 {print $4}')
echo "free disk: $((free_kib / 1048576)) GiB (a fresh build and the tests use about 10)"

step "storage servers for the tests (moto for S3, Azurite for Azure)"
# Pinned versions; each is skipped when already installed at that version.
MOTO_VERSION=5.2.5
if ! python3 -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null \
   || ! python3 -c "import azure.storage.blob" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "azure-storage-blob==12.*"
fi
# A real Elasticsearch-API client for tests/node_clients.rs.
OPENSEARCH_PY_VERSION=2.8.0
if ! python3 -c "import opensearchpy, sys; sys.exit(opensearchpy.__versionstr__ != '$OPENSEARCH_PY_VERSION')" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check "opensearch-py==$OPENSEARCH_PY_VERSION"
fi
if [ ! -x tests/servers/node_modules/.bin/azurite-blob ]; then
  command -v npm >/dev/null || { echo "npm (Node.js) is required to install Azurite"; exit 1; }
  (cd tests/servers && npm ci --no-audit --no-fund --loglevel=error)
fi

step "headless browser for the inspector tests (Debian's Chromium, playwright-core)"
if [ ! -x /usr/bin/chromium ]; then
  command -v apt-get >/dev/null || { echo "Chromium is required: install Debian's chromium package"; exit 1; }
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

step "edge Worker tools (wasm-bindgen-cli, worker-build, wrangler)"
source scripts/tools.sh
ensure_wasm_bindgen
ensure_worker_build
ensure_edge_npm

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings denied; clippy.toml keeps clocks, files, threads and randomness out of src/core)"
cargo clippy --locked --all-targets -- -D warnings

step "pure core builds for wasm32-unknown-unknown without default features"
cargo build --locked --lib --target wasm32-unknown-unknown --no-default-features

step "edge Worker: clippy (warnings denied) and build"
cargo clippy --locked --lib --target wasm32-unknown-unknown --no-default-features --features worker -- -D warnings
bash scripts/build-worker.sh
printf 'Worker bundle: %s bytes of wasm, %s gzipped\n' \
  "$(wc -c < build/index_bg.wasm)" "$(gzip -c build/index_bg.wasm | wc -c)"

step "browser inspector: clippy (warnings denied), build, wasm-bindgen tests of its bindings"
cargo clippy --locked --target wasm32-unknown-unknown --no-default-features --features inspector \
  --lib --test inspector_wasm -- -D warnings
bash scripts/build-inspector.sh
cargo test --locked --target wasm32-unknown-unknown --no-default-features --features inspector --test inspector_wasm

step "pure core: its unit tests in wasm (wasm-bindgen-test-runner under Node)"
# A core test module runs in wasm when it imports wasm-bindgen-test's
# attribute as `test` on wasm32; one that does not would pass here unrun.
# The proptest-based chunker properties run natively only.
missing=$(grep -rl '#\[test\]' src/core | xargs grep -L 'use wasm_bindgen_test::wasm_bindgen_test as test;' || true)
if [ -n "$missing" ]; then
  echo "core test modules that would not run in wasm (import wasm_bindgen_test as test on wasm32):"
  echo "$missing"
  exit 1
fi
cargo clippy --locked --target wasm32-unknown-unknown --no-default-features --lib --profile test -- -D warnings
cargo test --locked --target wasm32-unknown-unknown --no-default-features --lib

step "cargo test (unit, storage conformance, CLI, S3, Azure, edge, stress, property, golden)"
cargo test --locked --all-targets --no-fail-fast

step "fuzzing: every decoder's target for 15 s (cargo-fuzz on stable; docs/FUZZING.md)"
bash scripts/fuzz.sh 15

step "benchmark harness smoke run (tiny data sets and a node section of 200 snapshots; figures are not checked)"
bench_work=$(mktemp -d)
SNAPKEEP_BIN=target/debug/snapkeep bash bench/run.sh --quick --work "$bench_work" --out "$bench_work/results"
rm -rf "$bench_work"
