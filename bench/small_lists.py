#!/usr/bin/env python3
"""Small image-list data sets of 32x32 RGB pictures that are not
mirror-invariant, made from Fashion-MNIST, for choosing nmhash_train's
defaults on a user's small list (scripts/list_defaults.sh).

Ten classes: T-shirt, trouser, dress and bag as they are, and sandal,
sneaker and ankle boot each facing left and facing right (the mirror
image), so a horizontal flip turns six of the ten classes into others.
Every picture puts its item on a random dark background with a random
foreground colour and pixel noise.

  single: one 28x28 item at a random offset in the 32x32 picture;
          one-hot labels.
  multi:  one to three items shrunk to 16x16 in random cells of a 2x2
          grid; the labels are the classes present (multi-hot), and two
          pictures are similar when they share one.

Training and database pictures come from Fashion-MNIST's training images,
queries from its test images; the database holds the training pictures and
more. Writes DIR/images/*.png, DIR/train.txt, DIR/database.txt and
DIR/test.txt (DeepHash-pytorch's list format, as nmhash_train's list:DIR
reads it) and DIR/arrays.npz (the same pixels and labels, for the PyTorch
peer). Pure numpy; the PNG files are written with zlib.

Usage: small_lists.py --kind single|multi --out DIR [--train 500]
                      [--queries 200] [--database 2000] [--seed 0]
                      [--fmnist /usr/share/datasets/fashion-mnist]
"""
import argparse
import gzip
import os
import struct
import zlib

import numpy as np

CLASSES = ["tshirt", "trouser", "dress", "bag", "sandal-left", "sandal-right", "sneaker-left", "sneaker-right",
           "boot-left", "boot-right"]
# (Fashion-MNIST class, mirrored) of each class above. Fashion-MNIST's
# footwear faces left.
SOURCE = [(0, False), (1, False), (3, False), (8, False), (5, False), (5, True), (7, False), (7, True), (9, False),
          (9, True)]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
    if magic == 2049:
        return np.frombuffer(data, np.uint8, offset=8)
    raise SystemExit(f"{path}: magic {magic} is not an IDX image or label file")


def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Items:
    """Fashion-MNIST items of each of the ten classes, drawn without
    replacement from one image set."""

    def __init__(self, images, labels, rng):
        self.images = images
        self.pools = []
        for fm, _ in SOURCE:
            ids = np.flatnonzero(labels == fm)
            rng.shuffle(ids)
            self.pools.append(list(ids))

    def take(self, cls):
        fm, mirrored = SOURCE[cls]
        item = self.images[self.pools[cls].pop()].astype(np.float32) / 255
        return item[:, ::-1] if mirrored else item


def colour(rng, item, size):
    """The picture: a dark noisy background and the item in a random colour."""
    bg = rng.uniform(0.0, 0.35, 3)
    fg = rng.uniform(0.45, 1.0, 3)
    pic = np.empty((size, size, 3), np.float32)
    pic[:] = bg
    a = item[..., None]
    pic = pic * (1 - a) + fg * a
    pic += rng.normal(0, 0.04, pic.shape)
    return np.clip(np.rint(pic * 255), 0, 255).astype(np.uint8)


def shrink(item):
    """28x28 to 16x16: pad to 32, average 2x2 blocks."""
    padded = np.zeros((32, 32), np.float32)
    padded[2:30, 2:30] = item
    return padded.reshape(16, 2, 16, 2).mean(axis=(1, 3))


def single_picture(items, rng):
    cls = int(rng.integers(10))
    canvas = np.zeros((32, 32), np.float32)
    r, c = rng.integers(0, 5, 2)
    canvas[r:r + 28, c:c + 28] = items.take(cls)
    labels = np.zeros(10, np.uint8)
    labels[cls] = 1
    return colour(rng, canvas, 32), labels


def multi_picture(items, rng):
    n = int(rng.integers(1, 4))
    cells = rng.permutation(4)[:n]
    canvas = np.zeros((32, 32), np.float32)
    labels = np.zeros(10, np.uint8)
    for cell in cells:
        cls = int(rng.integers(10))
        r, c = 16 * (cell // 2), 16 * (cell % 2)
        canvas[r:r + 16, c:c + 16] = shrink(items.take(cls))
        labels[cls] = 1
    return colour(rng, canvas, 32), labels


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["single", "multi"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=500)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--database", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fmnist", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    if not 0 < a.train <= a.database:
        raise SystemExit(f"--train {a.train} must be positive and at most --database {a.database}")
    rng = np.random.default_rng(a.seed)
    train_items = Items(read_idx(f"{a.fmnist}/train-images-idx3-ubyte.gz"),
                        read_idx(f"{a.fmnist}/train-labels-idx1-ubyte.gz"), rng)
    test_items = Items(read_idx(f"{a.fmnist}/t10k-images-idx3-ubyte.gz"),
                       read_idx(f"{a.fmnist}/t10k-labels-idx1-ubyte.gz"), rng)
    picture = single_picture if a.kind == "single" else multi_picture
    db = [picture(train_items, rng) for _ in range(a.database)]
    queries = [picture(test_items, rng) for _ in range(a.queries)]
    os.makedirs(f"{a.out}/images", exist_ok=True)
    lists = {"database.txt": [], "test.txt": []}
    for name, pics, prefix in (("database.txt", db, "d"), ("test.txt", queries, "q")):
        for i, (pixels, labels) in enumerate(pics):
            rel = f"images/{prefix}{i:05d}.png"
            write_png(f"{a.out}/{rel}", pixels)
            lists[name].append(rel + "".join(f" {v}" for v in labels))
    lists["train.txt"] = lists["database.txt"][:a.train]
    for name, lines in lists.items():
        with open(f"{a.out}/{name}.tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(f"{a.out}/{name}.tmp", f"{a.out}/{name}")
    np.savez(f"{a.out}/arrays.npz", train_x=np.stack([p for p, _ in db[:a.train]]),
             train_y=np.stack([y for _, y in db[:a.train]]), db_x=np.stack([p for p, _ in db]),
             db_y=np.stack([y for _, y in db]), query_x=np.stack([p for p, _ in queries]),
             query_y=np.stack([y for _, y in queries]))
    print(f"{a.out}: {a.kind}-label, {a.train} training, {a.database} database, {a.queries} query pictures")


if __name__ == "__main__":
    main()
