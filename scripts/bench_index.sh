#!/usr/bin/env bash
# Exact search (nmhash flat scan and multi-index hashing) against FAISS's
# binary indexes (faiss-cpu from PyPI, in its own venv under
# results/bench/venv), side by side on identical data: uniform random and
# learned-like 64-bit codes, queries/s and recall@k. Prints one line per
# method and data set; JSON in results/bench/index.json.
# Usage: scripts/bench_index.sh [build-dir] [extra bench_index.py options, e.g. --sizes 1000000 --threads 2]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
bash scripts/install-deps.sh python3-venv
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target nmhash_search nmhash_train
venv=results/bench/venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q faiss-cpu==1.15.1 numpy
fi
"$venv/bin/python" scripts/bench_index.py --build "$build" "$@"
