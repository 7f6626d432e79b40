#!/usr/bin/env bash
# Trains every hashing method of nmhash_train at 12, 24, 32 and 48 bits on
# fmnist-dpsh (lenet, same epochs, batch, optimizer and seed for all), adds
# ITQ on pixels, and writes OUT/methods.csv. Finished runs are skipped.
# Usage: scripts/methods_table.sh [OUT (default results/methods)] [EPOCHS (default 12)]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/methods}
epochs=${2:-12}
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j "$(nproc)" --target nmhash_train nmhash_lsh_fmnist > /dev/null
mkdir -p "$out"
for method in dpsh eq7 dhn hashnet dsh; do
  for bits in 12 24 32 48; do
    dir=$out/$method-$bits
    if [ -f "$dir/summary.json" ]; then continue; fi
    ./build/examples/nmhash_train --method "$method" --bits "$bits" --epochs "$epochs" --out "$dir"
  done
done
[ -f "$out/itq/results.json" ] || ./build/examples/nmhash_lsh_fmnist --method itq --bits 12,24,32,48 --out "$out/itq"
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = ["method,bits,map_tie_aware,map_index_order,precision_r2,epochs,train_seconds,distinct_db_codes"]
for name in sorted(os.listdir(out)):
    p = os.path.join(out, name, "summary.json")
    if os.path.exists(p):
        s = json.load(open(p))
        rows.append(f"{s['loss']},{s['bits']},{s['map_tie_aware']:.4f},{s['map_index_order']:.4f},"
                    f"{s['precision_within_radius_2']:.4f},{s['epochs']},"
                    f"{sum(h['seconds'] for h in s['history']):.1f},{s['distinct_database_codes']}")
itq = os.path.join(out, "itq", "results.json")
if os.path.exists(itq):
    for r in json.load(open(itq))["results"]:
        rows.append(f"itq,{r['bits']},{r['map_tie_aware']:.4f},{r['map_index_order']:.4f},"
                    f"{r['precision_within_radius_2']:.4f},0,0,")
tmp = os.path.join(out, "methods.csv.tmp")
open(tmp, "w").write("\n".join(rows) + "\n")
os.replace(tmp, os.path.join(out, "methods.csv"))
print("\n".join(rows))
PY
