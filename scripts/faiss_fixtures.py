#!/usr/bin/env python3
"""Writes the FAISS index files test/test_index.cpp reads, with the PyPI
faiss-cpu package: IndexBinaryFlat, IndexBinaryIDMap and IndexBinaryIDMap2
files, the codes and ids they hold, and FAISS's own search results on them.

Usage: scripts/faiss_fixtures.py [out-dir]   (default test/data/faiss)
Needs faiss-cpu and numpy (python3 -m venv v && v/bin/pip install faiss-cpu).
"""
import os
import sys

import faiss
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "data", "faiss")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261201)


def save(name, index, codes, queries, k, ids=None):
    faiss.write_index_binary(index, os.path.join(out, name + ".faissindex"))
    np.save(os.path.join(out, name + "_codes.npy"), codes)
    np.save(os.path.join(out, name + "_queries.npy"), queries)
    if ids is not None:
        np.save(os.path.join(out, name + "_ids.npy"), ids)
    d, i = index.search(queries, k)
    np.save(os.path.join(out, name + "_D.npy"), d.astype(np.int32))
    np.save(os.path.join(out, name + "_I.npy"), i.astype(np.int64))


# 48 bits: codes of 6 bytes; few distinct values so distances tie.
codes = rng.integers(0, 4, size=(40, 6), dtype=np.uint8)
queries = rng.integers(0, 4, size=(5, 6), dtype=np.uint8)
flat = faiss.IndexBinaryFlat(48)
flat.add(codes)
save("flat48", flat, codes, queries, 50)  # k beyond the 40 codes: padding

codes = rng.integers(0, 256, size=(60, 8), dtype=np.uint8)
queries = rng.integers(0, 256, size=(4, 8), dtype=np.uint8)
ids = rng.permutation(np.arange(60, dtype=np.int64) * 1000003 + (1 << 40))
idmap = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(64))
idmap.add_with_ids(codes, ids)
save("idmap64", idmap, codes, queries, 7, ids)

codes = rng.integers(0, 256, size=(25, 16), dtype=np.uint8)
queries = rng.integers(0, 256, size=(3, 16), dtype=np.uint8)
ids = np.arange(25, dtype=np.int64)[::-1] * 3 - 20
idmap2 = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(128))
idmap2.add_with_ids(codes, ids)
save("idmap2_128", idmap2, codes, queries, 5, ids)

# A type nmhash does not read, to check the error names it.
hnsw = faiss.IndexBinaryHNSW(32, 4)
hnsw.add(rng.integers(0, 256, size=(10, 4), dtype=np.uint8))
faiss.write_index_binary(hnsw, os.path.join(out, "hnsw32.faissindex"))
print("faiss", faiss.__version__, "->", out)
