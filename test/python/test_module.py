#!/usr/bin/env python3
"""Tests of the nmhash Python module against plain numpy references:
brute-force Hamming distances sorted by (distance, index), a sort-based MAP
in the style of DeepHash-pytorch's CalcMap/CalcTopMap, FAISS's own search
results on the files test/data/faiss holds, and the refusals.

Usage: test_module.py DATA_DIR   (PYTHONPATH holds the built module)
"""
import os
import sys
import tempfile

import numpy as np

import nmhash

DATA = sys.argv[1]
rng = np.random.default_rng(20261202)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAILED:", what)


def raises(fn, text):
    try:
        fn()
    except ValueError as e:
        check(text in str(e), f"error {str(e)!r} should contain {text!r}")
        return
    check(False, f"expected a ValueError containing {text!r}")


def bits_of(packed, k):
    return np.unpackbits(packed, axis=1, bitorder="little")[:, :k]


def reference_knn(q_bits, db_bits, k):
    d = (q_bits[:, None, :] != db_bits[None, :, :]).sum(axis=2)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]  # ties by index
    dist = np.take_along_axis(d, order, axis=1)
    nq, n = d.shape
    if k > n:  # FAISS's padding
        order = np.hstack([order, -np.ones((nq, k - n), dtype=np.int64)])
        dist = np.hstack([dist, np.full((nq, k - n), np.iinfo(np.int32).max)])
    return dist.astype(np.int32), order.astype(np.int64)


def reference_map(q_pm1, db_pm1, q_onehot, db_onehot, topk=None):
    # Sort-based MAP as DeepHash-pytorch computes it: distances from inner
    # products of +-1 codes, a stable sort (ties by database index), AP
    # over the relevant items in the first topk.
    k_bits = q_pm1.shape[1]
    aps = []
    for i in range(q_pm1.shape[0]):
        gnd = (q_onehot[i] @ db_onehot.T > 0).astype(np.float64)
        ham = 0.5 * (k_bits - db_pm1 @ q_pm1[i])
        ind = np.argsort(ham, kind="stable")
        g = gnd[ind][:topk] if topk else gnd[ind]
        rel = int(g.sum())
        if rel == 0:
            aps.append(0.0)
            continue
        count = np.linspace(1, rel, rel)
        pos = np.asarray(np.where(g == 1)) + 1.0
        aps.append(np.mean(count / pos))
    return float(np.mean(aps))


# pack: the sign rule, bool bits, byte order.
x = rng.standard_normal((5, 13))
packed = nmhash.pack(x)
check(packed.dtype == np.uint8 and packed.shape == (5, 2), "pack shape")
check(np.array_equal(bits_of(packed, 13), (x >= 0).astype(np.uint8)), "pack follows the sign rule")
check(np.array_equal(nmhash.pack(x >= 0), packed), "bool arrays are bits")
check(np.array_equal(nmhash.pack(np.where(x >= 0, 1, -1).astype(np.int8)), packed), "+-1 int8 values")

# hamming_knn against brute force, with ties (short codes) and padding.
for k_bits in (7, 32, 64, 100):
    q = rng.integers(0, 2, (9, k_bits)).astype(bool)
    db = rng.integers(0, 2, (300, k_bits)).astype(bool)
    for k in (1, 10, 300, 310):
        d, i = nmhash.hamming_knn(q, db, k, threads=2)
        want_d, want_i = reference_knn(q.astype(np.uint8), db.astype(np.uint8), k)
        check(np.array_equal(d, want_d) and np.array_equal(i, want_i), f"hamming_knn K={k_bits} k={k}")
    # Packed bytes give the same result.
    d2, i2 = nmhash.hamming_knn(nmhash.pack(q), nmhash.pack(db), 10, bits=k_bits)
    d1, i1 = nmhash.hamming_knn(q, db, 10)
    check(np.array_equal(d1, d2) and np.array_equal(i1, i2), f"packed input K={k_bits}")

# evaluate: MAP against the sort-based reference (index order), single-
# and multi-label; tie-aware MAP equals the mean over tie orders, which
# with distinct distances equals the index-order value.
for k_bits, classes, multi in ((12, 5, False), (48, 10, False), (32, 6, True)):
    nq, n = 40, 700
    centres = rng.choice([-1.0, 1.0], (classes, k_bits))
    ql = rng.integers(0, classes, nq)
    dl = rng.integers(0, classes, n)
    qc = centres[ql] * np.where(rng.random((nq, k_bits)) < 0.2, -1, 1)
    dc = centres[dl] * np.where(rng.random((n, k_bits)) < 0.2, -1, 1)
    if multi:
        q_lab = (rng.random((nq, classes)) < 0.3).astype(np.float32)
        d_lab = (rng.random((n, classes)) < 0.3).astype(np.float32)
    else:
        q_lab, d_lab = np.eye(classes)[ql], np.eye(classes)[dl]
    ev = nmhash.evaluate(qc, dc, q_lab if multi else ql, d_lab if multi else dl, map_at=[100])
    want = reference_map(qc, dc, q_lab, d_lab)
    want100 = reference_map(qc, dc, q_lab, d_lab, topk=100)
    check(abs(ev["map_index_order"] - want) < 1e-9, f"MAP index order K={k_bits}: {ev['map_index_order']} vs {want}")
    check(abs(ev["map_at_index_order"][100] - want100) < 1e-9, f"MAP@100 index order K={k_bits}")
    check(0 < ev["map"] <= 1 and abs(ev["map"] - want) < 0.05, f"tie-aware MAP near the index-order one K={k_bits}")
    check(ev["pr_curve"].shape == (k_bits + 1, 2), "pr_curve shape")
    if not multi:
        ev1 = nmhash.evaluate(qc, dc, np.eye(classes)[ql], np.eye(classes)[dl])
        check(abs(ev1["map"] - ev["map"]) < 1e-12, "one-hot labels equal class ids")

# Index: add, ids, search, range search, removal, save/load, FAISS files.
k_bits = 48
codes = rng.integers(0, 256, (500, 6), dtype=np.uint8)
queries = rng.integers(0, 256, (7, 6), dtype=np.uint8)
idx = nmhash.Index(k_bits)
ids = np.arange(500, dtype=np.int64) * 10 + 3
idx.add_with_ids(codes, ids)
check(len(idx) == 500 and idx.ntotal == 500 and idx.bits == 48 and idx.code_size == 6, "index size")
d, i = idx.search(queries, 20)
want_d, want_pos = reference_knn(bits_of(queries, 48), bits_of(codes, 48), 20)
check(np.array_equal(d, want_d) and np.array_equal(i, ids[want_pos]), "Index.search with ids")
lims, rd, ri = idx.range_search(queries, 20)
full = (bits_of(queries, 48)[:, None, :] != bits_of(codes, 48)[None, :, :]).sum(axis=2)
for qi in range(7):
    pos = np.nonzero(full[qi] < 20)[0]
    check(np.array_equal(ri[lims[qi]:lims[qi + 1]], ids[pos]) and
          np.array_equal(rd[lims[qi]:lims[qi + 1]], full[qi, pos]), f"range_search query {qi}")
check(idx.remove_ids(ids[:100]) == 100 and len(idx) == 400, "remove_ids")
check(np.array_equal(idx.codes(), codes[100:]) and np.array_equal(idx.ids(), ids[100:]), "codes and ids after removal")
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "a.nmhidx")
    idx.save(path)
    back = nmhash.read_index(path)
    check(np.array_equal(back.codes(), idx.codes()) and np.array_equal(back.ids(), idx.ids()), "save / read_index")
    fpath = os.path.join(tmp, "a.faissindex")
    idx.write_faiss(fpath)
    fb = nmhash.read_index(fpath)
    check(np.array_equal(fb.search(queries, 5)[1], idx.search(queries, 5)[1]), "write_faiss / read_index")
    raises(lambda: nmhash.read_index(os.path.join(tmp, "missing")), "missing")

# Files faiss-cpu wrote, and FAISS's own results on them.
for name, bits in (("flat48", 48), ("idmap64", 64), ("idmap2_128", 128)):
    f = nmhash.read_index(os.path.join(DATA, "faiss", name + ".faissindex"))
    q = np.load(os.path.join(DATA, "faiss", name + "_queries.npy"))
    want_d = np.load(os.path.join(DATA, "faiss", name + "_D.npy"))
    want_i = np.load(os.path.join(DATA, "faiss", name + "_I.npy"))
    d, i = f.search(q, want_d.shape[1])
    check(f.bits == bits and np.array_equal(d, want_d) and np.array_equal(i, want_i), f"FAISS fixture {name}")

# Refusals: one ValueError naming the problem.
raises(lambda: nmhash.pack(np.array([[0, 1, 1]])), "pass 0/1 bits as a bool array")
raises(lambda: nmhash.hamming_knn(codes, queries[:, :5], 3), "K = 48")
raises(lambda: nmhash.hamming_knn(codes, codes, 0), "k must be at least 1")
raises(lambda: nmhash.hamming_knn(codes[:, :6], codes, 3, bits=40), "5 bytes per row, the array has 6")
raises(lambda: nmhash.hamming_knn(np.full((1, 6), 255, np.uint8), codes, 3, bits=44), "bits set at positions >= K = 44")
raises(lambda: nmhash.hamming_knn(np.zeros(6), codes, 1), "2-D array")
raises(lambda: idx.add(codes), "holds ids of its own")
raises(lambda: idx.add_with_ids(codes, ids[:3]), "500 codes but 3 ids")
raises(lambda: nmhash.evaluate(codes, codes, np.zeros(500, int), np.zeros(499, int)), "499")
raises(lambda: nmhash.evaluate(codes, codes, np.zeros(500), np.zeros(500)), "class ids must be integers")
raises(lambda: nmhash.evaluate(codes, codes, np.full((500, 2), 2.0), np.zeros((500, 2))), "neither 0 nor 1")
raises(lambda: nmhash.Index(0), "K = 0")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
