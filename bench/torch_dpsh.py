#!/usr/bin/env python3
"""DPSH in PyTorch as DeepHash-pytorch trains it (DPSH.py: the memory bank U
of every training image's latest output starting at zero, s = shared label,
theta = u U^T / 2, the mean pairwise likelihood plus alpha = 0.1 times the
mean quantization error; RMSprop, lr 1e-5, weight decay 1e-5, batch 64,
shuffled, the last partial batch kept), on the small lists of
small_lists.py with nmhash's cifar network (bench/torch_presets.py), for
scripts/list_defaults.sh.

The pictures are normalised with the per-channel mean and standard
deviation of the training pictures (as nmhash_train measures them), not
flipped or cropped. Writes the sign codes and labels of the queries and the
database as .npy into --out for nmhash_eval, so both sides are scored by
the same metric.

Usage: torch_dpsh.py --list DIR --out DIR [--bits 32] [--epochs 100]
                     [--seed 1] [--optimizer rmsprop|adam] [--lr 1e-5]
                     [--batch 64] [--threads 1]
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_presets import cifar  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--optimizer", choices=["rmsprop", "adam"], default="rmsprop")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    d = np.load(f"{a.list}/arrays.npz")
    train_x = d["train_x"].astype(np.float32) / 255
    mean, std = train_x.mean(axis=(0, 1, 2)), train_x.std(axis=(0, 1, 2))

    def tensor(x):
        return torch.from_numpy(((x.astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2).copy())

    x, y = tensor(d["train_x"]), torch.from_numpy(d["train_y"].astype(np.float32))
    net = cifar()
    net[-1] = nn.Linear(net[-1].in_features, a.bits)
    opt_class = torch.optim.RMSprop if a.optimizer == "rmsprop" else torch.optim.Adam
    opt = opt_class(net.parameters(), lr=a.lr, weight_decay=1e-5)
    n = x.shape[0]
    U = torch.zeros(n, a.bits)
    for epoch in range(a.epochs):
        net.train()
        total = 0.0
        for ind in torch.randperm(n).split(a.batch):
            u = net(x[ind])
            U[ind] = u.detach()
            s = (y[ind] @ y.t() > 0).float()
            theta = u @ U.t() * 0.5
            likelihood = (1 + (-theta.abs()).exp()).log() + theta.clamp(min=0) - s * theta
            loss = likelihood.mean() + 0.1 * (u - u.sign()).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        if (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1}/{a.epochs} loss {total / len(range(0, n, a.batch)):.5f}", flush=True)
    net.eval()
    os.makedirs(a.out, exist_ok=True)
    with torch.inference_mode():
        for name in ("query", "db"):
            codes = torch.cat([net(b).sign() for b in tensor(d[f"{name}_x"]).split(256)])
            np.save(f"{a.out}/{name}_codes.npy", codes.numpy().astype(np.float32))
            np.save(f"{a.out}/{name}_labels.npy", d[f"{name}_y"].astype(np.uint8))


if __name__ == "__main__":
    main()
