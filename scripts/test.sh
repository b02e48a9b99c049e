#!/usr/bin/env bash
# Installs what the tests need (skipping what is present) and runs them all:
# formatting, clippy with warnings denied, the wasm32 build of the pure core,
# and every unit, integration, property and golden test.
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

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings denied)"
cargo clippy --locked --all-targets -- -D warnings

step "pure core builds for wasm32-unknown-unknown without default features"
cargo build --locked --lib --target wasm32-unknown-unknown --no-default-features

step "cargo test (unit, storage conformance, CLI, property, golden)"
cargo test --locked --all-targets
