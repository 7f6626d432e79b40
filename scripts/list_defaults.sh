#!/usr/bin/env bash
# nmhash_train's defaults on small image lists of 32x32 pictures that are
# not mirror-invariant (bench/small_lists.py: single- and multi-label, made
# from Fashion-MNIST) against PyTorch 2.15's DPSH as DeepHash-pytorch trains
# it (bench/torch_dpsh.py), over 3 seeds; the measurement behind the list
# defaults (docs/datasets.md). About an hour on 2 cores; runs that finished
# are kept in results/list-defaults and not run again.
#
# Usage: scripts/list_defaults.sh [build-dir] [seeds]
# Prints the table (tie-aware MAP, mean +- standard deviation over the
# seeds) and writes results/list-defaults/table.json.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
seeds=${2:-1,2,3}
source scripts/torch_venv.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target nmhash_train nmhash_eval
for kind in single multi; do
  [ -f "results/lists/$kind/arrays.npz" ] || "$venv/bin/python" bench/small_lists.py --kind "$kind" --out "results/lists/$kind"
done
"$venv/bin/python" bench/list_defaults.py --build "$build" --seeds "$seeds" --jobs "$(nproc)"
