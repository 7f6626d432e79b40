#!/usr/bin/env python3
"""nmhash.evaluate against the numpy MAP that PyTorch hashing code uses
(DeepHash-pytorch's CalcMap / CalcTopMap style: distances from inner
products of +-1 codes, an argsort per query, AP over the relevant items),
side by side on the same codes: 1,000 queries x 69,000 database codes (the
fmnist-dpsh sizes), K = 48, 10 classes, codes drawn around class
prototypes with 20 % bit noise. Both compute the index-order MAP (ties by
database index, numpy's stable argsort), which must agree.

Usage: bench_python.py [--threads T] [--queries Q] [--database N] [--bits K]
(PYTHONPATH holds the built module; scripts/bench_python.sh sets it up.)
"""
import argparse
import os
import platform
import time

import numpy as np

import nmhash


def calc_map(qB, rB, q_onehot, r_onehot, topk=None):
    num_query = qB.shape[0]
    k_bits = qB.shape[1]
    total = 0.0
    for i in range(num_query):
        gnd = (q_onehot[i] @ r_onehot.T > 0).astype(np.float32)
        hamm = 0.5 * (k_bits - qB[i] @ rB.T)
        ind = np.argsort(hamm, kind="stable")
        gnd = gnd[ind][:topk] if topk else gnd[ind]
        tsum = int(gnd.sum())
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        pos = np.asarray(np.where(gnd == 1)).ravel() + 1.0
        total += float(np.mean(count / pos))
    return total / num_query


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--database", type=int, default=69000)
    ap.add_argument("--bits", type=int, default=48)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--topk", type=int, default=1000, help="the MAP@k row (CalcTopMap)")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    protos = rng.choice([-1.0, 1.0], (args.classes, args.bits)).astype(np.float32)
    ql = rng.integers(0, args.classes, args.queries)
    dl = rng.integers(0, args.classes, args.database)
    noise = lambda n: np.where(rng.random((n, args.bits)) < 0.2, -1.0, 1.0).astype(np.float32)
    qB, rB = protos[ql] * noise(args.queries), protos[dl] * noise(args.database)
    q1h = np.eye(args.classes, dtype=np.float32)[ql]
    r1h = np.eye(args.classes, dtype=np.float32)[dl]
    print(f"{args.queries} x {args.database} codes, K = {args.bits}, {args.classes} classes, "
          f"nmhash with {args.threads} thread(s); numpy {np.__version__}, {platform.processor() or platform.machine()}")
    for label, topk in (("MAP", None), (f"MAP@{args.topk}", args.topk)):
        t = time.perf_counter()
        ref = calc_map(qB, rB, q1h, r1h, topk)
        numpy_s = time.perf_counter() - t
        # nmhash's times include packing the +-1 float arrays. First both
        # conventions (the index-order value is numpy's, checked), then the
        # tie-aware MAP alone (the protocol's MAP, what a training loop needs).
        t = time.perf_counter()
        ev = nmhash.evaluate(qB, rB, ql, dl, map_at=[topk] if topk else [], precision_at=[], threads=args.threads)
        both_s = time.perf_counter() - t
        t = time.perf_counter()
        aware = nmhash.evaluate(qB, rB, ql, dl, map_at=[topk] if topk else [], precision_at=[], index_order=False,
                                threads=args.threads)
        aware_s = time.perf_counter() - t
        got = ev["map_at_index_order"][topk] if topk else ev["map_index_order"]
        tie_aware = aware["map_at"][topk] if topk else aware["map"]
        same = abs(got - ref) < 1e-6
        print(f"{label:9s} numpy {numpy_s:7.3f} s | nmhash both conventions {both_s:7.4f} s x{numpy_s / both_s:6.1f} "
              f"| tie-aware only {aware_s:7.4f} s x{numpy_s / aware_s:6.1f} | index-order {got:.6f} vs numpy "
              f"{ref:.6f} ({'equal' if same else 'DIFFERENT'}), tie-aware {tie_aware:.6f}", flush=True)
        if not same:
            raise SystemExit("the two MAPs differ")


if __name__ == "__main__":
    main()
