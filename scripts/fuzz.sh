#!/usr/bin/env bash
# Fuzzes every decoder (docs/FUZZING.md): installs cargo-fuzz at the pinned
# version (skipped when present), builds the targets in fuzz/ on the stable
# toolchain, replays the inputs of past findings (fuzz/findings/TARGET/),
# then runs each target for SECONDS_PER_TARGET seconds (default 20) from its
# committed seeds (fuzz/corpus/TARGET/). Exits non-zero on any crash, leak,
# timeout or memory limit, printing the input that caused it.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# FUZZ_JOBS (default: the number of cores, at most 2) targets run at once;
# FUZZ_TARGETS (space-separated) picks targets. What a run adds to a corpus
# goes to fuzz/work/TARGET/ (ignored by git), crash inputs to
# fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-20}
CARGO_FUZZ_VERSION=0.13.2

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  cargo install --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# No sanitizer: AddressSanitizer needs a nightly compiler, and the decoders
# are safe Rust, so coverage feedback plus panics (debug assertions and
# overflow checks on) and libFuzzer's memory limits are what find bugs.
cargo fuzz build --fuzz-dir fuzz -s none --debug-assertions

targets=${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir fuzz)}
bin=fuzz/target/x86_64-unknown-linux-gnu/release
jobs=${FUZZ_JOBS:-$(( $(nproc) < 2 ? $(nproc) : 2 ))}
# A reader must not allocate more than this for one object (the largest
# blob it accepts is 256 MiB), and no input may take 10 s.
limits=(-rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10)

mkdir -p fuzz/work
failed=0
for t in $targets; do
  if [ -d "fuzz/findings/$t" ]; then
    if ! "$bin/$t" "${limits[@]}" fuzz/findings/"$t"/* > "fuzz/work/$t.replay.log" 2>&1; then
      echo "FAIL $t: a past finding crashes again (log: fuzz/work/$t.replay.log)"
      failed=1
    fi
  fi
done

run_one() {
  local t=$1 secs=$2 bin=$3
  shift 3
  mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
  case $t in
    config|root|manifest|tree|edge_list_page) set -- "$@" -dict=fuzz/dicts/json.dict ;;
    *) if [ -f "fuzz/dicts/$t.dict" ]; then set -- "$@" -dict="fuzz/dicts/$t.dict"; fi ;;
  esac
  local log="fuzz/work/$t.log"
  if "$bin/$t" "fuzz/work/$t" "fuzz/corpus/$t" "$@" -max_total_time="$secs" \
       -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" > "$log" 2>&1; then
    local last
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -E 's/ +/ /g')
    echo "ok   $t: $last"
  else
    echo "FAIL $t: $(grep -m1 -E 'panicked at|ERROR: libFuzzer' "$log" || true)"
    grep -E 'Test unit written to|^Base64' "$log" | sed 's/^/     /' || true
    echo "     log: $log"
    return 1
  fi
}
export -f run_one

if ! printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} "$secs" "$bin" "${limits[@]}"; then
  failed=1
fi
if [ "$failed" -ne 0 ]; then
  echo "fuzzing found a crash: reproduce with $bin/TARGET INPUT"
  exit 1
fi
