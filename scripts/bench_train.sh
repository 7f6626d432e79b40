#!/usr/bin/env bash
# Training throughput, nmhash against PyTorch's CPU build, side by side in
# one run: lenet, batch 128, K = 48, DPSH loss, Adam, 1 and 2 threads.
# PyTorch is Debian's python3-torch with OpenBLAS (libopenblas0-pthread;
# Debian's default reference BLAS would make PyTorch's fully connected
# layers 3-4x slower and is not a fair peer).
# Usage: scripts/bench_train.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bash scripts/install-deps.sh python3-torch libopenblas0-pthread
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNMHASH_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target nmhash_bench_train
mkdir -p results/bench
threads=1,$(nproc)
"$build/bench/nmhash_bench_train" --benchmark_out=results/bench/train.json --benchmark_out_format=json
echo "PyTorch's BLAS (Debian alternatives): $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
/usr/bin/python3 bench/torch_lenet.py --threads "$threads" > results/bench/train_torch.json
/usr/bin/python3 - <<'PY'
import json
ours = json.load(open("results/bench/train.json"))
torch = json.load(open("results/bench/train_torch.json"))
print(f"\nPyTorch {torch['torch']}; {'; '.join(torch['blas']) or 'BLAS not reported'}")
print(f"{'threads':>8} {'nmhash img/s':>14} {'PyTorch img/s':>14} {'ratio':>7}")
for b in ours["benchmarks"]:
    t = int(b["omp_threads"])
    peer = torch["images_per_second"].get(str(t))
    if peer:
        print(f"{t:>8} {b['images/s']:>14.0f} {peer:>14.0f} {b['images/s'] / peer:>7.2f}")
PY
