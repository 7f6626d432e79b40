#!/usr/bin/env bash
# Training and encoding throughput of every architecture preset, nmhash
# against PyTorch 2.x from PyPI (MKL + oneDNN; torch.inference_mode for
# encoding) and ONNX Runtime (PyPI onnxruntime, the network exported with
# torch.onnx.export), side by side in one run, at 1 thread and all
# threads. The peers live in their own venv, results/bench/torch-venv.
#
# Usage: scripts/bench_train.sh [build-dir] [preset,preset,...]
# Writes results/bench/presets.json (nmhash), results/bench/presets_peers.json
# (the peers) and prints the table docs/performance.md carries.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
presets=${2:-lenet,cifar,cnnf,alexnet,vgg16,resnet18,resnet34,resnet50}
source scripts/torch_venv.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNMHASH_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target nmhash_bench_presets
mkdir -p results/bench
filter="($(echo "$presets" | tr ',' '|'))"
"$build/bench/nmhash_bench_presets" --benchmark_filter="/$filter/" \
  --benchmark_out=results/bench/presets.json --benchmark_out_format=json
"$venv/bin/python" -W ignore bench/torch_presets.py --threads "1,$(nproc)" --presets "$presets" \
  > results/bench/presets_peers.json
"$venv/bin/python" - <<'PY'
import json
ours = {}
for b in json.load(open("results/bench/presets.json"))["benchmarks"]:
    kind, preset, batch = b["name"].split("/")[:3]
    ours[(kind, preset, int(b["threads"]))] = (int(batch), b["images/s"])
peers = json.load(open("results/bench/presets_peers.json"))
ips = peers["images_per_second"]
print(f"\nPyTorch {peers['torch']} ({', '.join(peers['flags'])}), ONNX Runtime {peers['onnxruntime']}; images/s")
print(f"{'step':<8}{'preset':<10}{'batch':>6}{'thr':>4}{'nmhash':>10}{'PyTorch':>10}{'ratio':>7}"
      f"{'ORT':>10}{'ratio':>7}{'scaling':>9}")
for (kind, preset, t), (batch, v) in sorted(ours.items(), key=lambda kv: (kv[0][0] != "train",) + kv[0]):
    torch_v = ips.get(f"{kind}/{preset}/{t}")
    ort = ips.get(f"onnx/{preset}/{t}") if kind == "encode" else None
    one = ours.get((kind, preset, 1))
    line = f"{kind:<8}{preset:<10}{batch:>6}{t:>4}{v:>10.1f}"
    line += f"{torch_v:>10.1f}{v / torch_v:>7.2f}" if torch_v else f"{'':>17}"
    line += f"{ort:>10.1f}{v / ort:>7.2f}" if ort else f"{'':>17}"
    line += f"{v / one[1]:>8.2f}x" if one and t > 1 else ""
    print(line)
PY
