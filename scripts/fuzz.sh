#!/usr/bin/env bash
# Fuzzes the file parsers with libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer: builds the harnesses of test/fuzz and the seed
# generator, writes the seed corpora and runs each target for SECONDS
# (default 60), one after the other, over its corpus. The corpora persist in
# build-fuzz/corpus/<target>, so runs accumulate; crash artifacts go to
# build-fuzz/artifacts/, logs to build-fuzz/logs/ (runs.tsv: one line per
# target and run). Exits non-zero when a harness reports a crash.
#
# Usage: scripts/fuzz.sh [SECONDS-PER-TARGET]
# Environment: FUZZ_TARGETS (default "npy idx safetensors model index"),
#              CXX (default clang++-14).
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [seconds-per-target]" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
read -r -a targets <<< "${FUZZ_TARGETS:-npy idx safetensors model index image}"
cxx=${CXX:-clang++-14}
out=build-fuzz

# The project's packages (clang, zlib, Eigen, nlohmann-json among them) and
# clang's libFuzzer runtime, installed only when missing.
bash scripts/install-deps.sh libclang-rt-14-dev

mkdir -p "$out/bin" "$out/corpus" "$out/artifacts" "$out/logs"
common=(-std=c++17 -O1 -g -Iinclude -I/usr/include/eigen3 -Wall -Wextra -Wpedantic -Werror)
sanitize=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)

# Rebuilds $1 from $2 when the binary is missing or older than any source.
build() {
  local bin=$1 src=$2
  shift 2
  if [ -x "$bin" ] && [ -z "$(find include test/fuzz -newer "$bin" -type f -print -quit)" ]; then
    return
  fi
  echo "fuzz: building $bin"
  "$cxx" "${common[@]}" "$@" "$src" -o "$bin" -lz -lpng -lturbojpeg
}

build "$out/bin/nmhash_fuzz_seeds" test/fuzz/seeds.cpp
for t in "${targets[@]}"; do
  [ -f "test/fuzz/fuzz_$t.cpp" ] || { echo "fuzz: no harness test/fuzz/fuzz_$t.cpp" >&2; exit 2; }
  build "$out/bin/fuzz_$t" "test/fuzz/fuzz_$t.cpp" "${sanitize[@]}"
done
# Seeds of at most 16 KiB: the 100000-deep JSON regressions are replayed by
# the test suite (ctest -R fuzz/), not mutated here.
"$out/bin/nmhash_fuzz_seeds" "$out/corpus" 16384 > /dev/null

failed=0
summary=()
stamp=$(date -u +%Y%m%dT%H%M%SZ)
[ -f "$out/logs/runs.tsv" ] ||
  printf 'utc\ttarget\tseconds\texecutions\texec_per_s\tcov\tft\tcorpus_files\tpeak_rss_mb\texit\n' > "$out/logs/runs.tsv"
for t in "${targets[@]}"; do
  log="$out/logs/$t-$stamp.log"
  echo "fuzz: $t for ${seconds}s (log $log)"
  rc=0
  "$out/bin/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=25 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" "$out/corpus/$t" > "$log" 2>&1 || rc=$?
  execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log" | tail -n 1)
  rate=$(awk '/^stat::average_exec_per_sec:/ {print $2}' "$log" | tail -n 1)
  rss=$(awk '/^stat::peak_rss_mb:/ {print $2}' "$log" | tail -n 1)
  last=$(grep -E '(INITED|NEW|REDUCE|pulse|DONE|RELOAD).* cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
  files=$(find "$out/corpus/$t" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$stamp" "$t" "$seconds" "${execs:-0}" "${rate:-0}" \
    "${cov:-?}" "${ft:-?}" "$files" "${rss:-?}" "$rc" >> "$out/logs/runs.tsv"
  total=$(awk -F'\t' -v t="$t" 'NR > 1 && $2 == t {s += $4} END {print s + 0}' "$out/logs/runs.tsv")
  status=ok
  if [ "$rc" -ne 0 ]; then
    status="CRASH (exit $rc, see $log and $out/artifacts/$t-*)"
    failed=1
  fi
  summary+=("$(printf '%-12s %12s executions in %ss (%s/s), cov %s ft %s, corpus %s files, all runs %s executions: %s' \
    "$t" "${execs:-0}" "$seconds" "${rate:-0}" "${cov:-?}" "${ft:-?}" "$files" "$total" "$status")")
done

echo "fuzz summary:"
printf '  %s\n' "${summary[@]}"
exit "$failed"
