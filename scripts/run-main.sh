#!/usr/bin/env bash
# The main job: builds nmhash_reproduce and runs the NMLayer reproduction on
# fmnist-dpsh (progressive NMLayer, fixed-length baselines and the Fig. 5
# ablations; `quick` preset unless --preset paper is given), then plots.
# A killed run resumes where it stopped when started again.
# Usage: scripts/run-main.sh [arguments for nmhash_reproduce]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh python3-matplotlib
# Ninja for a new build directory; one configured before keeps its generator.
generator=()
[ -f build/CMakeCache.txt ] || generator=(-G Ninja)
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target nmhash_reproduce
out=results/reproduce
args=("$@")
for ((i = 0; i < ${#args[@]}; ++i)); do
  case "${args[i]}" in
    --out) out=${args[i + 1]} ;;
    --out=*) out=${args[i]#--out=} ;;
  esac
done
./build/examples/nmhash_reproduce "$@"
# Debian's matplotlib belongs to Debian's interpreter.
/usr/bin/python3 scripts/plot_reproduction.py "$out"
