#!/usr/bin/env bash
# Builds and runs the CPU benchmarks (one run holds each target and its
# peer), saves Google Benchmark JSON under results/bench/ and prints the
# ratios docs/performance.md quotes. Usage: scripts/bench.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bash scripts/install-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNMHASH_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target nmhash_bench_topk nmhash_bench_metrics
mkdir -p results/bench
for b in topk metrics; do
  "$build/bench/nmhash_bench_$b" --benchmark_out="results/bench/$b.json" --benchmark_out_format=json
done
python3 scripts/bench_report.py results/bench/topk.json results/bench/metrics.json
