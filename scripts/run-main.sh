#!/usr/bin/env bash
# The main job: builds the examples and runs the fmnist-dpsh reproduction.
# Usage: scripts/run-main.sh [extra arguments for the example]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target nmhash_lsh_fmnist
./build/examples/nmhash_lsh_fmnist --out results/lsh "$@"
