#!/usr/bin/env bash
# nmhash.evaluate (the Python module) against a numpy MAP in the style of
# DeepHash-pytorch's CalcMap / CalcTopMap, on Debian's python3 and numpy.
# Usage: scripts/bench_python.sh [build-dir] [bench_python.py options, e.g. --threads 2]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
bash scripts/install-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNMHASH_BUILD_PYTHON=ON -DPython_EXECUTABLE=/usr/bin/python3 >/dev/null
cmake --build "$build" -j "$(nproc)" --target nmhash_python
PYTHONPATH="$build/python" /usr/bin/python3 scripts/bench_python.py "$@"
