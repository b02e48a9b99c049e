#!/usr/bin/env bash
# The benchmark: bash bench/run.sh [--with-rustic] [run.py options]
#   --quick          tiny data sets, one run (a smoke test of the harness)
#   --runs N         runs per measurement (median; default 3)
#   --scale F        data set size factor (default 1: ~1 GiB mixed, 512 MiB db)
#   --work DIR       scratch folder (default /tmp/snapkeep-bench; on an ext4 without a
#                    journal, as root, a journaled ext4 image DIR.ext4 is mounted there:
#                    see bench/scratch.py)
#   --baseline BIN   also measure an earlier snapkeep build, interleaved with
#                    this one, and print this build against it
#   --datasets LIST  mixed,versions,db,pg,sqlite,node,mount,ccr (default all; pg and
#                    sqlite: bench/engines.py, pg as root with Debian's postgresql; node: bench/node.py,
#                    mount: bench/mount.py, as root with /dev/fuse; ccr: bench/ccr.py, against rsync)
# Installs restic, borgbackup and rsync from Debian when missing; rustic (a long
# build) only with --with-rustic. Builds snapkeep in release mode (or uses
# $SNAPKEEP_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
with_rustic=0
for a in "$@"; do
  case "$a" in
    --with-rustic) with_rustic=1 ;;
    *) args+=("$a") ;;
  esac
done
missing=()
command -v restic >/dev/null || missing+=(restic)
command -v borg >/dev/null || missing+=(borgbackup)
command -v rsync >/dev/null || missing+=(rsync)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# rustic's mount (bench/mount.py) needs its `mount` feature, built against
# libfuse3.
if [ "$with_rustic" = 1 ] && ! { command -v rustic >/dev/null && rustic mount --help >/dev/null 2>&1; }; then
  if ! pkg-config --exists fuse3 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends libfuse3-dev pkg-config >/dev/null
  fi
  echo "building rustic (tens of minutes on 2 cores)"
  cargo install rustic-rs --locked --features mount
fi
# SNAPKEEP_BIN picks another build (CI's smoke run uses the debug one).
# The kernel_bound example times the kernels over each data set, for the
# pipeline's bound; many_snapshots grows the node section's listing
# repository to 10,000 snapshots. Both are built in the same profile.
bin=${SNAPKEEP_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked --quiet --bin snapkeep --example kernel_bound --example many_snapshots
  bin="$PWD/target/release/snapkeep"
  examples="$PWD/target/release/examples"
else
  cargo build --locked --quiet --example kernel_bound --example many_snapshots
  examples="$PWD/target/debug/examples"
fi
exec python3 bench/run.py --snapkeep "$(realpath "$bin")" \
  --kernel-bound "$examples/kernel_bound" --many-snapshots "$examples/many_snapshots" \
  ${args[@]+"${args[@]}"}
