#!/usr/bin/env bash
# Builds nmhash (library checks, examples, benchmarks, tests) with warnings
# as errors and runs the whole test suite (qemu-user runs the emulated-CPU
# dispatch tests, Open MPI the nmhash::mpi tests on 1, 2 and 4 ranks); then
# builds the parser, codes,
# ranking and metrics tests under AddressSanitizer and
# UndefinedBehaviorSanitizer for the baseline x86-64 target and runs them
# twice: as they dispatch, and with NMHASH_ISA=generic (the portable suite,
# which the first build then leaves out). Usage: scripts/test.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bash scripts/install-deps.sh qemu-user libopenmpi-dev openmpi-bin python3-torch python3-torchvision
jobs=$(nproc)
# Ninja for a new build directory (it builds the tree faster than make); one
# configured before keeps its generator.
generator() { [ -f "$1/CMakeCache.txt" ] || echo -G Ninja; }
# The Python module is built for Debian's interpreter (numpy from python3-numpy);
# the test python/pip_install_numpy2 also pip-installs it into a venv with
# numpy 2 from PyPI.
# The benchmark programs are not built here (scripts/bench*.sh build and run
# them); the clang check compiles their sources (compilers/clang_build).
# The test programs are compiled at -O2 (NMHASH_TEST_OPTIMIZATION), the
# examples at the Release build's -O3.
cmake -S . -B "$build" $(generator "$build") -DCMAKE_BUILD_TYPE=Release -DNMHASH_PORTABLE_TESTS=OFF -DNMHASH_BUILD_BENCHMARKS=OFF \
  -DNMHASH_TEST_OPTIMIZATION=-O2 \
  -DNMHASH_BUILD_PYTHON=ON -DPython_EXECUTABLE=/usr/bin/python3
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"

sanitized="$build-sanitized"
# -O1 (what the sanitizers' documentation recommends) compiles faster than
# -O2; -g1 gives the reports their file and line.
cmake -S . -B "$sanitized" $(generator "$sanitized") -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DNMHASH_SANITIZE=address,undefined -DNMHASH_NATIVE_ARCH=OFF \
  -DNMHASH_ENABLE_CUDA=OFF -DNMHASH_BUILD_EXAMPLES=OFF -DNMHASH_BUILD_BENCHMARKS=OFF
cmake --build "$sanitized" -j "$jobs" --target nmhash_tests_sanitized
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$sanitized" --output-on-failure -j "$jobs" -R '^sanitized(-portable)?/'
