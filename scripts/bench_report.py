#!/usr/bin/env python3
"""Prints the performance ratios of docs/performance.md from Google Benchmark
JSON files written by scripts/bench.sh (each ratio from one run)."""
import json
import sys


def main():
    times = {}
    ctx = None
    for p in sys.argv[1:]:
        with open(p) as f:
            doc = json.load(f)
        ctx = ctx or doc.get("context", {})
        for b in doc["benchmarks"]:
            if b.get("error_occurred"):
                sys.exit(f"{p}: benchmark {b['name']} failed: {b.get('error_message')}")
            base = "/".join(b["run_name"].split("/")[:3])
            times[(base, int(b["omp_threads"]))] = b["real_time"]
    thread_counts = sorted({t for (_, t) in times})
    print(f"host: {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs, "
          f"{ctx.get('mhz_per_cpu', '?')} MHz (as Google Benchmark reads it)")
    rows = [
        ("top-k K=64 k=100: FAISS IndexBinaryFlat time / nmhash time (target >= 3)",
         "topk/K64/faiss_IndexBinaryFlat", "topk/K64/nmhash_hamming_knn"),
        ("MAP K=48: sort-based time / nmhash both conventions time (target >= 20)",
         "map/K48/sort_based", "map/K48/nmhash_both_conventions"),
        ("MAP K=48: sort-based time / nmhash tie-aware time",
         "map/K48/sort_based", "map/K48/nmhash_tie_aware"),
        ("LOO K=60 tie-aware time / one tie-aware MAP time (target <= 4)",
         "loo/K60/nmhash_tie_aware", "map/K60/nmhash_tie_aware"),
        ("LOO K=60 index-order time / one index-order MAP time",
         "loo/K60/nmhash_index_order", "map/K60/nmhash_both_conventions"),
    ]
    for label, num, den in rows:
        cells = []
        for t in thread_counts:
            if (num, t) in times and (den, t) in times:
                cells.append(f"{t} thread{'s' if t > 1 else ''}: {times[(num, t)] / times[(den, t)]:.2f}")
        if cells:
            print(f"{label}\n    " + ", ".join(cells))


if __name__ == "__main__":
    main()
