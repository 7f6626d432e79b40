#!/usr/bin/env python3
"""Exact and approximate binary search, side by side on identical data:
nmhash_search --method flat and --method mih against FAISS (faiss-cpu from
PyPI) IndexBinaryFlat, IndexBinaryMultiHash, IndexBinaryHNSW and
IndexBinaryIVF. Reports queries/s and recall@k against the exact top-k.

Data: uniform random 64-bit codes (multi-index hashing's worst case) and
learned-like codes: the 64-bit fmnist-dpsh database codes of an
nmhash_train model, replicated with bit noise (each bit flipped with
probability --noise) to the database size; queries are the fmnist-dpsh
query codes.

Usage: scripts/bench_index.py --build BUILD_DIR [--sizes 1000000,10000000]
       [--queries 1000] [--k 100] [--threads 1] [--out results/bench/index.json]
Run through scripts/bench_index.sh, which builds the tools and the venv.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import faiss
import numpy as np


def run_search(build, q_path, db_path, k, threads, method, out_prefix):
    cmd = [os.path.join(build, "examples", "nmhash_search"), "--query", q_path, "--bit-order", "lsb", "--db", db_path,
           "--k", str(k), "--threads", str(threads), "--method", method, "--out", out_prefix]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    secs = float(re.search(r": ([0-9.]+) s \(", p.stdout).group(1))
    build_s = re.search(r"tables built in ([0-9.]+) s, ([0-9.]+) MiB", p.stdout)
    if build_s:
        print(f"  nmhash {method}: tables {build_s.group(2)} MiB", flush=True)
    return secs, (float(build_s.group(1)) if build_s else 0.0), np.load(out_prefix + "_I.npy"), np.load(out_prefix + "_D.npy")


def recall(found, exact_d, found_d):
    # Recall@k by distance: a result is right when its distance is within
    # the exact k-th distance (ties at the boundary are interchangeable).
    kth = exact_d[:, -1:]
    return float(np.mean(found_d <= kth))


def learned_codes(build, workdir, n, noise, rng):
    model_dir = os.path.join(workdir, "model64")
    if not os.path.exists(os.path.join(model_dir, "db_codes.npy")):
        subprocess.run([os.path.join(build, "examples", "nmhash_train"), "--bits", "64", "--epochs", "10",
                        "--method", "hashnet", "--out", model_dir], check=True, capture_output=True)
    db = np.load(os.path.join(model_dir, "db_codes.npy"))
    q = np.load(os.path.join(model_dir, "query_codes.npy"))
    def pack(c):
        # nmhash_train writes packed bytes (FAISS's order) or +-1 values.
        bits = np.unpackbits(c, axis=1, bitorder="little")[:, :64] if c.dtype == np.uint8 else (c > 0).astype(np.uint8)
        return np.packbits(bits, axis=1, bitorder="little")
    base, qb = pack(db), pack(q)
    reps = (n + len(base) - 1) // len(base)
    out = np.tile(base, (reps, 1))[:n]
    flips = np.packbits((rng.random((n, 64)) < noise).astype(np.uint8), axis=1, bitorder="little")
    return out ^ flips, qb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--data", default="uniform,learned")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--out", default="results/bench/index.json")
    ap.add_argument("--workdir", default="results/bench/index-data")
    ap.add_argument("--exact-only", action="store_true",
                    help="only the exact methods (nmhash flat and mih, FAISS IndexBinaryFlat)")
    ap.add_argument("--approximate", default="multihash,hnsw,ivf",
                    help="FAISS approximate indexes to run beside the exact ones (HNSW builds take minutes per 1M)")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(1)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        learned_db, learned_q = learned_codes(args.build, args.workdir, n, args.noise, rng)
        datasets = {
            "uniform": (rng.integers(0, 256, (n, 8), dtype=np.uint8), rng.integers(0, 256, (args.queries, 8), dtype=np.uint8)),
            "learned": (learned_db, learned_q[: args.queries]),
        }
        for name, (db, q) in datasets.items():
            if name not in args.data.split(","):
                continue
            with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
                idx = faiss.IndexBinaryFlat(64)
                idx.add(db)
                db_path = os.path.join(tmp, "db.faissindex")
                faiss.write_index_binary(idx, db_path)
                q_path = os.path.join(tmp, "q.npy")
                np.save(q_path, q)
                t = time.perf_counter()
                exact_d, exact_i = idx.search(q, args.k)
                flat_s = time.perf_counter() - t
                results = {"faiss IndexBinaryFlat": (flat_s, 0.0, 1.0)}
                for method in ("flat", "mih"):
                    secs, build_s, I, D = run_search(args.build, q_path, db_path, args.k, args.threads, method,
                                                     os.path.join(tmp, method))
                    same = bool(np.array_equal(D, exact_d) and np.array_equal(I, exact_i))
                    results["nmhash " + method] = (secs, build_s, recall(I, exact_d, D))
                    if not same:
                        print(f"warning: nmhash {method} differs from FAISS IndexBinaryFlat on {name} n={n}",
                              file=sys.stderr)
                    results["nmhash " + method] += (same,)
                known = {
                    "multihash": ("faiss IndexBinaryMultiHash", lambda: faiss.IndexBinaryMultiHash(64, 3, 21)),
                    "hnsw": ("faiss IndexBinaryHNSW", lambda: faiss.IndexBinaryHNSW(64, 16)),
                    "ivf": ("faiss IndexBinaryIVF", lambda: faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(64), 64,
                                                                               max(1, int(np.sqrt(n))))),
                }
                chosen = [] if args.exact_only else [m for m in args.approximate.split(",") if m]
                for m in chosen:
                    if m not in known:
                        sys.exit(f"--approximate: unknown method {m!r}, expected some of {','.join(known)}")
                approximate = [known[m] for m in chosen]
                for label, make in approximate:
                    index = make()
                    t = time.perf_counter()
                    if not index.is_trained:
                        index.train(db[: min(n, 256 * int(np.sqrt(n)))])
                    index.add(db)
                    build_s = time.perf_counter() - t
                    if isinstance(index, faiss.IndexBinaryIVF):
                        index.nprobe = 16
                    if isinstance(index, faiss.IndexBinaryMultiHash):
                        index.nflip = 2
                    t = time.perf_counter()
                    D, I = index.search(q, args.k)
                    secs = time.perf_counter() - t
                    results[label] = (secs, build_s, recall(I, exact_d, D))
                for label, r in results.items():
                    row = {"data": name, "n": n, "method": label, "seconds": r[0], "queries_per_s": args.queries / r[0],
                           "build_seconds": r[1], "recall_at_k": r[2], "vs_nmhash_flat": None}
                    if len(r) > 3:
                        row["identical_to_faiss_flat"] = r[3]
                    rows.append(row)
                base = next(r for r in rows if r["data"] == name and r["n"] == n and r["method"] == "nmhash flat")
                for r in rows:
                    if r["data"] == name and r["n"] == n:
                        r["vs_nmhash_flat"] = r["queries_per_s"] / base["queries_per_s"]
                for r in rows:
                    if r["data"] == name and r["n"] == n:
                        print(f"{name:8s} n={n:>9,d} {r['method']:28s} {r['queries_per_s']:>10.1f} q/s  "
                              f"x{r['vs_nmhash_flat']:.2f} vs nmhash flat  recall@{args.k} {r['recall_at_k']:.4f}  "
                              f"build {r['build_seconds']:.2f} s", flush=True)
    machine = {"cpu": platform.processor() or platform.machine(), "faiss": faiss.__version__,
               "threads": args.threads, "k": args.k, "queries": args.queries, "noise": args.noise}
    with open(args.out, "w") as f:
        json.dump({"machine": machine, "rows": rows}, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
