#!/usr/bin/env bash
# The benchmark: builds the operator in release mode, starts the local rig, and measures
# time to Ready, AWS calls per object (creation and resync) against the minimum, and the
# operator's memory and CPU for N = 1, 100, 1000 AuthedApis, then the same under API
# Gateway's 10 requests/s quota. Writes BENCHMARKS.md. Takes about an hour on 2 cores.
#
#   hack/bench.sh                       # the full run
#   hack/bench.sh --n 1,100 --capped-n 1  # a shorter one (arguments go to authedapi-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
hack/tools.sh
cargo build --release --workspace --bins
target="${CARGO_TARGET_DIR:-target}"
started=$(date -u +%Y-%m-%dT%H:%MZ)
"$target/release/authedapi-bench" --operator "$target/release/authedapi" --out "$target/bench-results.md" "$@"

{
  echo "# Benchmarks"
  echo
  echo "Produced by \`hack/bench.sh $*\` on $started. Not a test: numbers, no assertions."
  echo
  echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
  echo "- Versions: authedapi $(git rev-parse --short HEAD), $(rustc --version), kube-apiserver $(.tools/bin/kube-apiserver --version | cut -d' ' -f2), etcd 3.6.16, moto 5.2.5"
  echo "- Rig: real etcd + kube-apiserver and the moto AWS emulator on loopback, the operator (release build) reaching moto through the fault proxy, which counts every request. Objects are applied one after another with server-side apply; readiness is polled every 200 ms."
  echo
  cat "$target/bench-results.md"
  echo
  cat hack/bench-notes.md
} > BENCHMARKS.md
echo "wrote BENCHMARKS.md"
