#!/usr/bin/env python3
"""Tests of the nmhash Python module against plain numpy references:
brute-force Hamming distances sorted by (distance, index), a sort-based MAP
in the style of DeepHash-pytorch's CalcMap/CalcTopMap, FAISS's own search
results on the files test/data/faiss holds, and the refusals.

Usage: test_module.py DATA_DIR   (PYTHONPATH holds the built module)
"""
import itertools
import os
import pickle
import re
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


def tie_aware_map(q_bits, db_bits, q_lab, db_lab):
    # The tie-aware MAP by its definition: each query's AP averaged over
    # every database order consistent with the distances (all orders of
    # equal distances), enumerated.
    n = db_bits.shape[0]
    aps = []
    for i in range(q_bits.shape[0]):
        d = (q_bits[i][None, :] != db_bits).sum(axis=1)
        rel = (q_lab[i] == db_lab).astype(np.float64)
        total, count = 0.0, 0
        for perm in itertools.permutations(range(n)):
            if any(d[perm[j]] > d[perm[j + 1]] for j in range(n - 1)):
                continue
            g = rel[list(perm)]
            r = int(g.sum())
            if r:
                pos = np.nonzero(g)[0] + 1.0
                total += np.mean(np.arange(1, r + 1) / pos)
            count += 1
        aps.append(total / count)
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
raises(lambda: nmhash.hamming_knn(codes, codes, 0), "k: 0 is outside [1, 4294967295]")
raises(lambda: nmhash.hamming_knn(codes[:, :6], codes, 3, bits=40), "5 bytes per row, the array has 6")
raises(lambda: nmhash.hamming_knn(np.full((1, 6), 255, np.uint8), codes, 3, bits=44), "bits set at positions >= K = 44")
raises(lambda: nmhash.hamming_knn(np.zeros(6), codes, 1), "2-D array")
raises(lambda: idx.add(codes), "holds ids of its own")
raises(lambda: idx.add_with_ids(codes, ids[:3]), "500 codes but 3 ids")
raises(lambda: nmhash.evaluate(codes, codes, np.zeros(500, int), np.zeros(499, int)), "499")
raises(lambda: nmhash.evaluate(codes, codes, np.zeros(500), np.zeros(500)), "class ids must be integers")
raises(lambda: nmhash.evaluate(codes, codes, np.full((500, 2), 2.0), np.zeros((500, 2))), "neither 0 nor 1")
raises(lambda: nmhash.Index(0), "Index bits: 0 is outside [1, 4096]")

# MAP in both conventions against numpy references, on float codes and on
# the same codes packed: short codes (many ties) and a small database whose
# tie orders can all be enumerated.
for trial in range(3):
    nq, n, kb = 4, 7, 4
    qf = rng.standard_normal((nq, kb))
    dbf = rng.standard_normal((n, kb))
    ql = rng.integers(0, 3, nq)
    dl = rng.integers(0, 3, n)
    q_bits, db_bits = (qf >= 0).astype(np.uint8), (dbf >= 0).astype(np.uint8)
    want_aware = tie_aware_map(q_bits, db_bits, ql, dl)
    want_index = reference_map(np.where(qf >= 0, 1.0, -1.0), np.where(dbf >= 0, 1.0, -1.0), np.eye(3)[ql], np.eye(3)[dl])
    for form, qa, da in (("float", qf, dbf),
                         ("packed", np.packbits(q_bits, axis=1, bitorder="little"),
                          np.packbits(db_bits, axis=1, bitorder="little"))):
        ev = nmhash.evaluate(qa, da, ql, dl, bits=kb if form == "packed" else 0)
        check(abs(ev["map"] - want_aware) < 1e-12, f"tie-aware MAP, {form} codes, trial {trial}: {ev['map']} vs {want_aware}")
        check(abs(ev["map_index_order"] - want_index) < 1e-12,
              f"index-order MAP, {form} codes, trial {trial}: {ev['map_index_order']} vs {want_index}")

# Every key evaluate returns is listed in its docstring.
ev = nmhash.evaluate(qf, dbf, ql, dl, map_at=[5], per_query=True)
for key in ev:
    check(re.search(r"\b" + key + r"\b", nmhash.evaluate.__doc__) is not None, f"evaluate's docstring lists {key!r}")
check(len(ev["ap"]) == len(ql) and len(ev["ap_index_order"]) == len(ql), "per-query AP")

# The version is the project's.
root = os.path.dirname(os.path.dirname(os.path.abspath(DATA)))
with open(os.path.join(root, "CMakeLists.txt")) as f:
    want_version = re.search(r"project\(nmhash VERSION ([0-9.]+)", f.read()).group(1)
check(nmhash.__version__ == want_version, f"__version__ {nmhash.__version__} vs CMakeLists.txt {want_version}")

# Sequences are taken as numpy converts them; what it cannot convert is a
# short ValueError naming the argument.
ql_list = [[1.0, -1.0, 0.5], [-2.0, 1.0, 1.0]]
dl_list = [[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [0.0, -1.0, 2.0]]
d1, i1 = nmhash.hamming_knn(ql_list, dl_list, 2)
d2, i2 = nmhash.hamming_knn(np.array(ql_list), np.array(dl_list), 2)
check(np.array_equal(d1, d2) and np.array_equal(i1, i2), "lists equal arrays")
ev_l = nmhash.evaluate(ql_list, dl_list, [0, 1], [0, 1, 1])
check(abs(ev_l["map"] - nmhash.evaluate(np.array(ql_list), np.array(dl_list), np.array([0, 1]),
                                        np.array([0, 1, 1]))["map"]) < 1e-15, "list labels")
raises(lambda: nmhash.hamming_knn([[1.0, 2.0], [1.0]], dl_list, 1), "hamming_knn queries: cannot be read as a numpy array")
raises(lambda: nmhash.hamming_knn([["a", "b"]], dl_list, 1), "hamming_knn queries: expected numbers")
raises(lambda: nmhash.evaluate(ql_list, dl_list, [0, 1], [None, 1, 1]), "evaluate database_labels")
try:
    nmhash.hamming_knn(object(), dl_list, 1)
    check(False, "an object as codes is refused")
except ValueError as e:
    check("hamming_knn queries" in str(e) and len(str(e)) < 300, f"short message naming the argument: {str(e)!r}")

# Layout: a uint8 array of only 0 and 1 needs bits= (packed) or bool.
unpacked = np.unpackbits(codes[:5], axis=1, bitorder="little")  # (5, 48) of 0 and 1
raises(lambda: nmhash.hamming_knn(unpacked, unpacked, 1), "ambiguous")
check(np.array_equal(nmhash.pack(unpacked.astype(bool)), codes[:5]), "unpacked bits as bool")
zeros = np.zeros((2, 6), np.uint8)
check(np.array_equal(nmhash.hamming_knn(zeros, codes[:3], 1, bits=48)[0][:, 0],
                     np.full(2, bits_of(codes[:3], 48).sum(axis=1).min())), "0/1 bytes with bits= are packed")
flat0 = nmhash.Index(48)
flat0.add(zeros)  # an index knows K: its packed width decides
check(len(flat0) == 2, "Index.add of all-zero packed codes")
raises(lambda: flat0.add(unpacked), "for one bit per column pass x.astype(bool)")

# Nothing wraps: unsigned ids beyond int64, unsigned values under the sign rule.
u = nmhash.Index(48)
u.add_with_ids(codes[:2], np.array([7, 2**63 - 1], np.uint64))
check(np.array_equal(u.ids(), np.array([7, 2**63 - 1])), "uint64 ids below 2^63")
raises(lambda: u.add_with_ids(codes[:1], np.array([2**64 - 1], np.uint64)), "does not fit int64")
raises(lambda: u.add_with_ids(codes[:1], np.array([2**63], np.uint64)), "does not fit int64")
raises(lambda: nmhash.pack(np.array([[2**63, 5]], np.uint64)), "unsigned values")
raises(lambda: nmhash.evaluate(codes, codes, np.full(500, 2**40, np.uint64), np.zeros(500, int)), "does not fit 32 bits")

# Paths with a NUL are refused, never truncated.
with tempfile.TemporaryDirectory() as tmp:
    bad = os.path.join(tmp, "a\0b")
    raises(lambda: u.save(bad), "NUL")
    raises(lambda: u.write_faiss(bad), "NUL")
    raises(lambda: nmhash.read_index(bad), "NUL")
    check(os.listdir(tmp) == [], "nothing written for a NUL path")

# Bounds as in the command-line tools.
raises(lambda: nmhash.evaluate(codes, codes, np.zeros(500, int), np.zeros(500, int), map_at=[2**62]), "map_at")
raises(lambda: nmhash.evaluate(codes, codes, np.zeros(500, int), np.zeros(500, int), precision_at=[0]), "precision_at")
raises(lambda: nmhash.evaluate(codes, codes, np.zeros(500, int), np.zeros(500, int), radius=-1), "radius")
raises(lambda: nmhash.hamming_knn(codes, codes, 3, threads=-5), "threads: -5 is outside [0, 1024]")
raises(lambda: idx.search(queries, 2**40), "k: ")
raises(lambda: idx.range_search(queries, 2, threads=5000), "threads")
raises(lambda: nmhash.evaluate(codes, codes, np.zeros((500, 1), int), np.zeros(500, int)),
       "evaluate query_labels: a (n, 1) column is ambiguous")

# Index pickles: codes, ids and code length; empty, positional and with ids.
for name, ix in (("empty", nmhash.Index(20)), ("positional", flat0), ("ids", idx)):
    back = pickle.loads(pickle.dumps(ix))
    check(back.bits == ix.bits and back.has_ids == ix.has_ids and np.array_equal(back.codes(), ix.codes()) and
          np.array_equal(back.ids(), ix.ids()), f"pickle round trip ({name})")
    if len(ix):
        qq = ix.codes()[:3]
        check(all(np.array_equal(a, b) for a, b in zip(back.search(qq, 4), ix.search(qq, 4))), f"pickled search ({name})")

# Filtered search: exactly brute force over the admitted codes, with ties
# (short codes), k beyond the admitted count and everything denied.
fk = 10
fcodes = rng.integers(0, 2, (400, fk)).astype(bool)
fq = rng.integers(0, 2, (5, fk)).astype(bool)
fids = (np.arange(400, dtype=np.int64) * 5) % 997 + 3
fidx = nmhash.Index(fk)
fidx.add_with_ids(fcodes, fids)
allow = fids[rng.random(400) < 0.05].tolist() + [-1, 10**12]
deny = fids[::7]
for name, a, d in (("allow", allow, None), ("deny", None, deny), ("both", allow, deny), ("deny all", None, fids)):
    admitted = np.ones(400, bool)
    if a is not None:
        admitted &= np.isin(fids, a)
    if d is not None:
        admitted &= ~np.isin(fids, d)
    pos = np.nonzero(admitted)[0]
    for k in (1, 8, 500):
        want_d, want_pos = reference_knn(fq.astype(np.uint8), fcodes[pos].astype(np.uint8), k)
        want_i = np.array([[fids[pos][p] if p >= 0 else -1 for p in row] for row in want_pos], dtype=np.int64)
        got_d, got_i = fidx.search(fq, k, allow_ids=a, deny_ids=d)
        check(np.array_equal(got_d, want_d) and np.array_equal(got_i, want_i), f"filtered search {name} k={k}")
    lims, rd, ri = fidx.range_search(fq, 4, allow_ids=a, deny_ids=d)
    fullf = (fq[:, None, :] != fcodes[None, :, :]).sum(axis=2)
    for qi in range(5):
        sel = np.nonzero((fullf[qi] < 4) & admitted)[0]
        check(np.array_equal(ri[lims[qi]:lims[qi + 1]], fids[sel]) and
              np.array_equal(rd[lims[qi]:lims[qi + 1]], fullf[qi, sel]), f"filtered range_search {name} query {qi}")
raises(lambda: fidx.search(fq, 3, allow_ids=np.array([1.5])), "Index.search allow_ids: ids must be integers")
raises(lambda: fidx.search(fq, 3, deny_ids=np.array([2**64 - 1], np.uint64)), "does not fit int64")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
