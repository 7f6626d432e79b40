#!/usr/bin/env python3
"""nmhash_train's defaults on a user's small image list against PyTorch's
DeepHash-pytorch-style DPSH (torch_dpsh.py) on the same list, over seeds
(scripts/list_defaults.sh runs it).

For each list of --lists (made by small_lists.py) and each seed, trains
every configuration below, two runs at a time on one thread each, and
scores every run's codes with nmhash_eval (tie-aware MAP over the whole
database). A run whose result exists is not run again. Prints mean +- the
sample standard deviation over the seeds, and writes them to
--out/table.json.

Usage: list_defaults.py --build DIR --lists single,multi [--seeds 1,2,3]
                        [--bits 32] [--epochs 100] [--jobs 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
# name: (nmhash_train arguments or None for the PyTorch peer, epochs or None for --epochs)
CONFIGS = {
    "list defaults, --no-flip": (["--no-flip"], None),
    "list defaults (flips)": ([], None),
    "list defaults, --no-flip, 20 epochs": (["--no-flip"], 20),
    "fmnist-dpsh defaults, --no-flip": (["--no-flip", "--optimizer", "adam", "--lr", "1e-4", "--batch", "128",
                                         "--init", "kaiming"], None),
    "PyTorch DPSH (RMSprop 1e-5, batch 64)": (None, None),
}


def slug(name):
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def run_one(a, lst, config, seed):
    args, epochs = CONFIGS[config]
    epochs = epochs or a.epochs
    out = f"{a.out}/{lst}/{slug(config)}/seed{seed}"
    result = f"{out}/eval.json"
    if os.path.exists(result):
        return json.load(open(result))["map"]["tie_aware"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    data = f"{a.lists_dir}/{lst}"
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if args is None:
        cmd = [sys.executable, f"{HERE}/torch_dpsh.py", "--list", data, "--out", out, "--bits", str(a.bits),
               "--epochs", str(epochs), "--seed", str(seed), "--threads", "1"]
    else:
        cmd = [f"{a.build}/examples/nmhash_train", "--dataset", f"list:{data}", "--bits", str(a.bits), "--epochs",
               str(epochs), "--seed", str(seed), "--out", out, "--no-resume"] + args
    with open(f"{out}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    ev = subprocess.run([f"{a.build}/examples/nmhash_eval", "--query-codes", f"{out}/query_codes.npy", "--db-codes",
                         f"{out}/db_codes.npy", "--query-labels", f"{out}/query_labels.npy", "--db-labels",
                         f"{out}/db_labels.npy", "--threads", "1", "--json"], check=True, capture_output=True,
                        text=True, env=env).stdout
    with open(result + ".tmp", "w") as f:
        f.write(ev)
    os.replace(result + ".tmp", result)
    return json.loads(ev)["map"]["tie_aware"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--lists", default="single,multi")
    ap.add_argument("--lists-dir", default="results/lists")
    ap.add_argument("--out", default="results/list-defaults")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    lists, seeds = a.lists.split(","), [int(s) for s in a.seeds.split(",")]
    jobs = [(lst, config, seed) for seed in seeds for lst in lists for config in CONFIGS]
    with ThreadPoolExecutor(a.jobs) as pool:
        maps = dict(zip(jobs, pool.map(lambda j: run_one(a, *j), jobs)))
    table = {}
    print(f"\ntie-aware MAP, K = {a.bits}, {a.epochs} epochs unless stated, seeds {a.seeds}: mean +- std")
    print(f"{'configuration':<40}" + "".join(f"{lst:>20}" for lst in lists))
    for config in CONFIGS:
        line = f"{config:<40}"
        for lst in lists:
            v = [maps[(lst, config, s)] for s in seeds]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            table.setdefault(config, {})[lst] = {"maps": v, "mean": statistics.mean(v), "std": sd}
            line += f"{statistics.mean(v):>12.4f} +- {sd:.4f}"
        print(line)
    with open(f"{a.out}/table.json", "w") as f:
        json.dump({"bits": a.bits, "epochs": a.epochs, "seeds": seeds, "table": table}, f, indent=1)


if __name__ == "__main__":
    main()
