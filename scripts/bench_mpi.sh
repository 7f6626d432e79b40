#!/usr/bin/env bash
# Strong and weak scaling of nmhash::mpi's sharded search and distributed
# evaluation on P = 1, 2, 4 ranks of this machine (docs/scaling.md). With
# more ranks than cores the ranks share cores: the figures then measure the
# overhead of sharding, not a speed-up.
# Usage: scripts/bench_mpi.sh [build-dir] [codes for strong scaling] [codes per rank for weak scaling]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
strong=${2:-2000000}
weak=${3:-1000000}
bash scripts/install-deps.sh libopenmpi-dev openmpi-bin
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNMHASH_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" --target nmhash_bench_mpi -j "$(nproc)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
for np in 1 2 4; do
  mpirun --oversubscribe --bind-to none -np "$np" "$build/bench/nmhash_bench_mpi" --codes "$strong"
done
for np in 1 2 4; do
  mpirun --oversubscribe --bind-to none -np "$np" "$build/bench/nmhash_bench_mpi" --codes-per-rank "$weak"
done
