#!/usr/bin/env python3
"""PyTorch and ONNX Runtime peers of nmhash_bench_presets.

Every preset built as nmhash builds it (torchvision's structure; the
hashing layer, K = 48, in place of the classifier's last layer), at each
thread count:
  train:  one step, as nmhash_bench_presets takes it: forward, the DPSH loss
          against a 512-image memory bank, backward, Adam;
  encode: forward under torch.inference_mode, batch 64;
  onnx:   the same forward in ONNX Runtime (sequential execution,
          intra-op threads = the thread count), the network exported with
          torch.onnx.export.
Prints JSON: images/s per (kind, preset, threads), with the versions and
PyTorch's build flags.

Usage: torch_presets.py [--threads 1,2] [--seconds 2] [--presets lenet,cifar]
"""
import argparse
import io
import json
import time

import torch
import torch.nn as nn

BITS, BANK, ENCODE_BATCH = 48, 512, 64
TRAIN_BATCH = {"lenet": 128, "cifar": 128, "cnnf": 16, "alexnet": 32, "vgg16": 16,
               "resnet18": 32, "resnet34": 32, "resnet50": 32}
INPUT = {"lenet": (1, 28, 28), "cifar": (3, 32, 32)}


def lenet():
    return nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1024, 500), nn.ReLU(), nn.Linear(500, BITS))


def cifar():
    def conv(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*conv(3, 32), *conv(32, 32), nn.MaxPool2d(2), *conv(32, 64), *conv(64, 64),
                         nn.MaxPool2d(2), *conv(64, 128), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2048, 512),
                         nn.ReLU(), nn.Linear(512, BITS))


def cnnf():
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4), nn.ReLU(), nn.LocalResponseNorm(5), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 256, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(5), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(256 * 5 * 5, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, BITS))


def alexnet():
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.AdaptiveAvgPool2d(6), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(256 * 36, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, BITS))


def vgg16():
    layers, c = [], 3
    for v in (64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0):
        if v == 0:
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(512 * 49, 4096), nn.ReLU(),
                         nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, BITS))


class Block(nn.Module):
    """torchvision's BasicBlock (bottleneck=False) or Bottleneck."""

    def __init__(self, cin, planes, stride, bottleneck):
        super().__init__()
        out = planes * (4 if bottleneck else 1)
        if bottleneck:
            self.body = nn.Sequential(
                nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
                nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
                nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out))
        else:
            self.body = nn.Sequential(
                nn.Conv2d(cin, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(),
                nn.Conv2d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes))
        self.down = (nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))
                     if stride != 1 or cin != out else nn.Identity())
        self.out = out

    def forward(self, x):
        return torch.relu(self.body(x) + self.down(x))


def resnet(blocks, bottleneck):
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin, planes = 64, 64
    for stage, n in enumerate(blocks):
        for b in range(n):
            block = Block(cin, planes, 2 if stage > 0 and b == 0 else 1, bottleneck)
            layers.append(block)
            cin = block.out
        planes *= 2
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, BITS))


PRESETS = {"lenet": lenet, "cifar": cifar, "cnnf": cnnf, "alexnet": alexnet, "vgg16": vgg16,
           "resnet18": lambda: resnet((2, 2, 2, 2), False), "resnet34": lambda: resnet((3, 4, 6, 3), False),
           "resnet50": lambda: resnet((3, 4, 6, 3), True)}


def timed(step, batch, seconds):
    """images/s over at least `seconds` and two steps, after one warm-up step."""
    step()
    n, t0 = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def train(preset, seconds):
    torch.manual_seed(1)
    net = PRESETS[preset]().train()
    batch = TRAIN_BATCH[preset]
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-5)
    x = torch.randn(batch, *INPUT.get(preset, (3, 224, 224)))
    labels = torch.arange(BANK) % 10
    bank = torch.zeros(BANK, BITS)
    idx = torch.arange(batch) % BANK

    def step():
        u = net(x)
        bank[idx] = u.detach()
        s = (labels[idx].unsqueeze(1) == labels.unsqueeze(0)).float()
        theta = u @ bank.t() / 2
        loss = (torch.log1p(torch.exp(-theta.abs())) + theta.clamp(min=0) - s * theta).mean()
        loss = loss + 0.1 * (u - u.sign()).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return timed(step, batch, seconds)


def encode(preset, seconds):
    torch.manual_seed(1)
    net = PRESETS[preset]().eval()
    x = torch.randn(ENCODE_BATCH, *INPUT.get(preset, (3, 224, 224)))

    def step():
        with torch.inference_mode():
            net(x)

    return timed(step, ENCODE_BATCH, seconds)


def onnx(preset, threads, seconds):
    import onnxruntime as ort
    torch.manual_seed(1)
    net = PRESETS[preset]().eval()
    x = torch.randn(ENCODE_BATCH, *INPUT.get(preset, (3, 224, 224)))
    buf = io.BytesIO()
    torch.onnx.export(net, (x,), buf, input_names=["x"], output_names=["u"], dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    return timed(lambda: sess.run(None, feed), ENCODE_BATCH, seconds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--kinds", default="train,encode,onnx")
    a = ap.parse_args()
    import onnxruntime
    config = torch.__config__.show()
    flags = sorted({tok.strip(" ,") for tok in config.replace(",", " ").split()
                    if tok.startswith(("BLAS_INFO=", "USE_MKLDNN=", "USE_OPENMP="))})
    out = {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "flags": flags,
           "mkldnn": torch.backends.mkldnn.is_available(), "images_per_second": {}}
    kinds = a.kinds.split(",")
    for preset in a.presets.split(","):
        for t in (int(v) for v in a.threads.split(",")):
            torch.set_num_threads(t)
            for kind in kinds:
                if kind == "train":
                    v = train(preset, a.seconds)
                elif kind == "encode":
                    v = encode(preset, a.seconds)
                else:
                    v = onnx(preset, t, a.seconds)
                out["images_per_second"][f"{kind}/{preset}/{t}"] = v
                print(f"{kind}/{preset}/{t}: {v:.1f} images/s", file=__import__("sys").stderr, flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
