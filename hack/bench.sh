#!/usr/bin/env bash
# The benchmark: builds the operator in release mode, starts the local rig, and measures
# time to Ready, AWS calls per object (creation and resync) against the minimum, and the
# operator's memory and CPU for N = 1, 100, 1000 AuthedApis, then the same under API
# Gateway's 10 requests/s quota; 10 accounts x 100 seeds, each account capped at 10
# requests/s; a create arriving while 500 objects' drift checks are due; 1000 seeds with
# the operator as a Pod on the rig's node under the chart's memory limit. Writes
# BENCHMARKS.md. Takes about an hour and a half on 2 cores.
#
#   hack/bench.sh                           # the full run: writes BENCHMARKS.md
#   hack/bench.sh --n 1,100 --capped-n 1    # some scenarios (arguments go to authedapi-bench):
#   hack/bench.sh --accounts 2x5 --resync-create 20   # writes target/BENCHMARKS.partial.md,
#                                           # whose rows are merged into BENCHMARKS.md by hand
#   hack/bench.sh --n 1000 --routes 2 --operator-env MALLOC_ARENA_MAX=2
set -euo pipefail
cd "$(dirname "$0")/.."
hack/tools.sh
# The operator as the image ships it (release: size-optimized, LTO; the image itself for
# the node scenario: hack/image.sh builds both), the bench's tools optimized for speed
# (profile rig).
hack/image.sh
cargo build --profile rig -p authedapi-rig --bin authedapi-bench
target="${CARGO_TARGET_DIR:-target}"
started=$(date -u +%Y-%m-%dT%H:%MZ)
"$target/rig/authedapi-bench" --operator "$target/release/authedapi" --out "$target/bench-results.md" "$@"

report=BENCHMARKS.md
if [ "$#" -gt 0 ]; then report="$target/BENCHMARKS.partial.md"; fi
{
  echo "# Benchmarks"
  echo
  echo "Produced by \`hack/bench.sh $*\` on $started. Not a test: numbers, no assertions."
  echo
  echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
  echo "- Versions: authedapi $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo " (+ uncommitted src/ changes)"), $(rustc --version), kube-apiserver $(.tools/bin/kube-apiserver --version | cut -d' ' -f2), etcd 3.6.16, moto 5.2.5"
  echo "- Rig: real etcd + kube-apiserver and the moto AWS emulator on loopback, the operator (release build) reaching moto through the fault proxy, which counts every request. Objects are applied one after another with server-side apply; readiness is watched."
  echo
  cat "$target/bench-results.md"
  echo
  cat hack/bench-notes.md
} > "$report"
echo "wrote $report"
