#!/usr/bin/env bash
# Filtered top-k against the unfiltered scan of the same index
# (bench/bench_filter.cpp), 1 and 2 threads; saves Google Benchmark JSON in
# results/bench/filter.json and prints each filter's time relative to the
# unfiltered scan. Usage: scripts/bench_filter.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
bash scripts/install-deps.sh
generator() { [ -f "$1/CMakeCache.txt" ] || echo -G Ninja; }
cmake -S . -B "$build" $(generator "$build") -DCMAKE_BUILD_TYPE=Release -DNMHASH_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target nmhash_bench_filter
mkdir -p results/bench
"$build/bench/nmhash_bench_filter" --benchmark_out=results/bench/filter.json --benchmark_out_format=json
python3 - results/bench/filter.json <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
ms = {r["name"]: r["real_time"] for r in runs if r.get("run_type", "iteration") == "iteration" and "error_occurred" not in r}
errors = [r["name"] + ": " + r["error_message"] for r in runs if r.get("error_occurred")]
for e in errors:
    print("ERROR", e)
print(f"{'benchmark':42s} {'ms':>9s} {'vs unfiltered':>14s}")
for name, t in ms.items():
    base, rest = name.split("/", 1)
    ref = "BM_mih_clustered" if "clustered" in base else "BM_unfiltered"
    r = ms.get(ref + "/" + rest) if base != ref else None
    print(f"{name:42s} {t:9.2f} {f'{t / r:.3f}x' if r else '':>14s}")
sys.exit(1 if errors else 0)
PY
