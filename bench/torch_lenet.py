#!/usr/bin/env python3
"""PyTorch peer of nmhash_bench_train: the fmnist-dpsh lenet (batch 128,
K = 48), the DPSH loss as DeepHash-pytorch computes it against a 5,000-image
memory bank, Adam; one step is forward, loss, backward and the optimizer
step. Prints JSON: images/s per thread count, with the torch build's BLAS.

Usage: torch_lenet.py [--threads 1,2] [--seconds 3]
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def lenet(bits):
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 500), nn.ReLU(), nn.Linear(500, bits))


def measure(threads, seconds, batch=128, bits=48, bank_size=5000):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = lenet(bits)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-5)
    x = torch.randn(batch, 1, 28, 28)
    labels = torch.randint(0, 10, (bank_size,))
    bank = torch.zeros(bank_size, bits)
    step = 0

    def one_step():
        nonlocal step
        idx = (torch.arange(batch) + step * batch) % bank_size
        step += 1
        u = net(x)
        bank[idx] = u.detach()
        s = (labels[idx].unsqueeze(1) == labels.unsqueeze(0)).float()
        theta = u @ bank.t() / 2
        loss = (torch.log1p(torch.exp(-theta.abs())) + theta.clamp(min=0) - s * theta).mean()
        loss = loss + 0.1 * (u - u.sign()).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        one_step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        one_step()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    config = torch.__config__.show()
    blas = sorted({tok.strip(" ,") for tok in config.replace(",", " ").split()
                   if tok.startswith(("BLAS_INFO=", "LAPACK_INFO=", "USE_MKLDNN="))})
    out = {"torch": torch.__version__, "blas": blas, "images_per_second": {}}
    for t in (int(v) for v in a.threads.split(",")):
        out["images_per_second"][str(t)] = measure(t, a.seconds)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
