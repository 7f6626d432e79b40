#!/usr/bin/env python3
"""nmhash's layers against PyTorch's own modules, with random weights and
batch-norm statistics away from their defaults: the same nn.Sequential is
built in PyTorch from an architecture spec, its state_dict written as
safetensors, and test/torch/parity_net.cpp (nmhash) run on the same input.
Checked: evaluation-mode outputs to 1e-4 of their scale, training-mode
outputs to 1e-4, the parameter gradients of one training-mode backward pass
to 1e-3 of each tensor's scale, and the running statistics after it; in
float, and for resnet50 in double (both sides).

Usage: parity.py PARITY_BIN WORK_DIR
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("nmhash-test-skipped: PyTorch is not installed for this interpreter (Debian: python3-torch)")
    sys.exit(0)


def build(spec, channels, height, width, bits):
    """The nn.Sequential of an unnamed architecture spec, or a torchvision
    ResNet for a preset name (its classifier renamed "hash")."""
    if spec in ("alexnet/nodropout", "vgg16/nodropout"):
        import torchvision
        net = getattr(torchvision.models, spec.split("/")[0])(num_classes=bits)
        net.hash = net.classifier[6]
        net.classifier[6] = nn.Identity()
        for m in net.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0

        def forward_classifier(x):  # torchvision's forward, with "hash" for classifier.6
            return net.hash(net.classifier(torch.flatten(net.avgpool(net.features(x)), 1)))

        net.forward = forward_classifier
        return net
    if spec in ("resnet18", "resnet34", "resnet50"):
        import torchvision
        net = getattr(torchvision.models, spec)(num_classes=bits)
        net.hash = net.fc
        del net.fc

        def forward(x):  # torchvision's ResNet.forward, with "hash" for "fc"
            x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
            x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
            return net.hash(torch.flatten(net.avgpool(x), 1))

        net.forward = forward
        return net
    layers, c, flat = [], channels, None
    h, w = height, width
    for t in spec.split(","):
        if t.startswith("conv"):
            bias = not t.endswith("nb")
            t = t[:-2] if not bias else t
            k, rest = t[4:].split("-")[0], int(t.split("-")[1])
            stride, pad = 1, 0
            ks = k
            if "p" in ks:
                ks, pad = ks.split("p")
                pad = int(pad)
            if "s" in ks:
                ks, stride = ks.split("s")
                stride = int(stride)
            ks = int(ks)
            layers.append(nn.Conv2d(c, rest, ks, stride=stride, padding=pad, bias=bias))
            c = rest
            h, w = (h + 2 * pad - ks) // stride + 1, (w + 2 * pad - ks) // stride + 1
        elif t == "bn":
            layers.append(nn.BatchNorm1d(flat) if flat is not None else nn.BatchNorm2d(c))
        elif t == "relu":
            layers.append(nn.ReLU())
        elif t.startswith("maxpool"):
            k, stride, pad = t[7:], None, 0
            if "p" in k:
                k, pad = k.split("p")
                pad = int(pad)
            if "s" in k:
                k, stride = k.split("s")
                stride = int(stride)
            k = int(k)
            stride = stride or k
            layers.append(nn.MaxPool2d(k, stride=stride, padding=pad))
            h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        elif t == "avgpool":
            layers.append(nn.AdaptiveAvgPool2d((1, 1)))
            h = w = 1
        elif t.startswith("bottle"):
            from torchvision.models.resnet import Bottleneck
            planes, stride = (t[6:].split("s") + ["1"])[:2]
            planes, stride = int(planes), int(stride)
            down = None
            if stride != 1 or c != 4 * planes:
                down = nn.Sequential(nn.Conv2d(c, 4 * planes, 1, stride=stride, bias=False), nn.BatchNorm2d(4 * planes))
            layers.append(Bottleneck(c, planes, stride, down))
            c = 4 * planes
            h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
        elif t.startswith("res"):
            from torchvision.models.resnet import BasicBlock
            planes, stride = (t[3:].split("s") + ["1"])[:2]
            planes, stride = int(planes), int(stride)
            down = None
            if stride != 1 or c != planes:
                down = nn.Sequential(nn.Conv2d(c, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
            layers.append(BasicBlock(c, planes, stride, down))
            c = planes
            h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
        elif t == "flatten":
            layers.append(nn.Flatten())
            flat = c * h * w
        elif t.startswith("fc"):
            out = int(t[2:])
            layers.append(nn.Linear(flat, out))
            flat = out
        else:
            raise SystemExit(f"parity.py: layer {t!r} is not supported here")
    layers.append(nn.Linear(flat, bits))
    return nn.Sequential(*layers)


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        kind = tensors[name].dtype
        dtype, code = ("<i8", "I64") if np.issubdtype(kind, np.integer) else ("<f8", "F64") if kind == np.float64 \
            else ("<f4", "F32")
        a = np.ascontiguousarray(tensors[name], dtype=dtype)
        header[name] = {"dtype": code, "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path, keep_ints=False):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__" or (e["dtype"] == "I64" and not keep_ints):
            continue
        b, end = e["data_offsets"]
        dtype = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}[e["dtype"]]  # noqa
        out[name] = np.frombuffer(data[8 + n + b:8 + n + end], dtype=dtype).reshape(e["shape"])
    return out


def close(name, ours, theirs, rel, floor=1e-12):
    """max |ours - theirs| within rel of theirs' scale (at least floor: a
    gradient that is zero in exact arithmetic, as a bias before batch norm,
    is compared at the scale of the network's other gradients)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} here, {theirs.shape} in PyTorch"
    scale = max(np.abs(theirs).max(), floor)
    err = np.abs(ours - theirs).max() / scale
    print(f"{name}: max |difference| / scale = {err:.2e} (limit {rel:g})")
    return err <= rel


def check(binary, work, spec, input_shape, bits, batch, seed, double=False):
    torch.manual_seed(seed)
    c, h, w = (int(v) for v in input_shape.split("x"))
    net = build(spec, c, h, w, bits)
    if double:
        net = net.double()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    # The whole state_dict, as safetensors.torch.save_file writes it (the
    # int64 num_batches_tracked counters included).
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    os.makedirs(work, exist_ok=True)
    write_safetensors(os.path.join(work, "weights.safetensors"), state)
    x = torch.randn(batch, c, h, w, dtype=torch.float64 if double else torch.float32)
    dy = torch.randn(batch, bits, dtype=x.dtype)
    np.save(os.path.join(work, "x.npy"), x.numpy())
    np.save(os.path.join(work, "dy.npy"), dy.numpy())
    r = subprocess.run([binary, spec, input_shape, str(bits), os.path.join(work, "weights.safetensors"),
                        os.path.join(work, "x.npy"), os.path.join(work, "dy.npy"), work] + (["double"] if double else []),
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"parity_net failed: {r.stderr}")
    net.eval()
    with torch.no_grad():
        y_eval = net(x).numpy()
    net.train()
    y_train = net(x)
    y_train.backward(dy)
    after = read_safetensors(os.path.join(work, "after.safetensors"))
    ok = close(f"{spec}: evaluation outputs", np.load(os.path.join(work, "eval.npy")), y_eval, 1e-4)
    ok &= close(f"{spec}: training outputs", np.load(os.path.join(work, "train.npy")), y_train.detach().numpy(), 1e-4)
    floor = 1e-3 * max(p.grad.abs().max().item() for p in net.parameters())
    for name, p in net.named_parameters():
        ok &= close(f"{spec}: gradient of {name}", after["grad." + name], p.grad.numpy(), 1e-3, floor)
    for name, b in net.named_buffers():
        if name.endswith("num_batches_tracked"):
            continue
        ok &= close(f"{spec}: {name} after the step", after[name], b.numpy(), 1e-4)
    # The statistics must have moved away from the values loaded.
    for name, b in net.named_buffers():
        if name.endswith("running_mean"):
            assert not np.allclose(after[name], state[name]), f"{name}: not updated by the training step"
    return ok


def round_trip(model_bin, work):
    """nmhash_model import of a torchvision resnet18 hashing network's
    state_dict, export back, and PyTorch's strict load of the result: every
    tensor comes back unchanged. A state_dict with a missing, an unexpected
    and a mis-shaped tensor is refused naming each, and nothing is written."""
    import torchvision
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(7)
    net = build("resnet18", 3, 64, 64, 16)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    weights, model, back = (os.path.join(work, f) for f in ("w.safetensors", "m.safetensors", "back.safetensors"))
    write_safetensors(weights, state)
    common = ["--arch", "resnet18", "--input", "3x64x64", "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]
    r = subprocess.run([model_bin, "import", *common, "--weights", weights, "--out", model], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([model_bin, "export", "--model", model, "--out", back], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    info = subprocess.run([model_bin, "info", model], capture_output=True, text=True)
    assert info.returncode == 0 and "B_in 16, 16 bits (no merges)" in info.stdout, info.stdout + info.stderr
    fresh = torchvision.models.resnet18(num_classes=16)
    fresh.hash = fresh.fc
    del fresh.fc
    data = read_safetensors(back, keep_ints=True)
    fresh.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in data.items()}, strict=True)
    ok = True
    for k, v in fresh.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        same = np.array_equal(v.numpy(), state[k])
        ok &= same
        if not same:
            print(f"round trip: {k} changed")
    print("round trip: import, export and load_state_dict(strict=True) " + ("give every tensor back" if ok else "FAILED"))
    # Bad state_dicts: every fault named, nothing written.
    bad = dict(state)
    del bad["layer2.0.conv1.weight"]
    bad["layer9.extra"] = np.zeros(3, dtype=np.float32)
    bad["bn1.weight"] = np.zeros(65, dtype=np.float32)
    write_safetensors(weights, bad)
    refused = os.path.join(work, "refused.safetensors")
    r = subprocess.run([model_bin, "import", *common, "--weights", weights, "--out", refused], capture_output=True,
                       text=True)
    for want in ("missing: layer2.0.conv1.weight", "unexpected: layer9.extra",
                 "wrong shape: bn1.weight [65], expected [64]", "nothing written"):
        if want not in r.stderr:
            print(f"import of a bad state_dict: {want!r} not in: {r.stderr}")
            ok = False
    ok &= r.returncode == 1 and not os.path.exists(refused)
    return ok


def main():
    binary, work = sys.argv[1], sys.argv[2]
    model_bin = sys.argv[3] if len(sys.argv) > 3 else None
    ok = check(binary, os.path.join(work, "a"), "conv3p1-8,bn,relu,maxpool2,conv3s2p1-16,bn,relu,flatten,fc32,bn,relu",
               "3x16x16", 12, 6, 1)
    ok &= check(binary, os.path.join(work, "b"), "conv5-6,relu,maxpool2,flatten,fc20,relu", "1x12x12", 8, 4, 2)
    try:
        import torchvision  # noqa: F401
    except ImportError:
        print("nmhash-test-skipped: torchvision is not installed for this interpreter (Debian: python3-torchvision)")
        sys.exit(0 if ok else 1)
    # Residual blocks (torchvision's BasicBlock, with and without the
    # downsample path), padded max-pooling, convolutions without bias and
    # global average pooling.
    ok &= check(binary, os.path.join(work, "c"),
                "conv3p1-8nb,bn,relu,maxpool3s2p1,res8,res16s2,res16,avgpool,flatten", "3x17x17", 10, 5, 3)
    # torchvision's ResNets under their own names, at 3x64x64.
    ok &= check(binary, os.path.join(work, "resnet18"), "resnet18", "3x64x64", 16, 3, 4)
    ok &= check(binary, os.path.join(work, "resnet34"), "resnet34", "3x64x64", 16, 4, 5)
    ok &= check(binary, os.path.join(work, "d"), "conv3p1-16nb,bn,relu,bottle4,bottle8s2,avgpool,flatten", "3x9x9", 6, 4, 6)
    # ResNet-50's float gradients are ill-conditioned at this size (batch
    # norm over 16 values per channel in its last stage): PyTorch's own
    # float gradients differ from its double ones by 3e-2 of their scale.
    # So it is compared in double precision, where every value must agree.
    ok &= check(binary, os.path.join(work, "resnet50"), "resnet50", "3x64x64", 16, 4, 7, double=True)
    # AlexNet and VGG-16 (dropout at p = 0 on both sides), at sizes where
    # the adaptive average pooling spreads 2 x 2 and 1 x 1 maps over 6 x 6
    # and 7 x 7 cells.
    ok &= check(binary, os.path.join(work, "alexnet"), "alexnet/nodropout", "3x96x96", 16, 2, 8)
    ok &= check(binary, os.path.join(work, "vgg16"), "vgg16/nodropout", "3x32x32", 16, 2, 9)
    if model_bin:
        ok &= round_trip(model_bin, os.path.join(work, "round-trip"))
    print("parity: " + ("every value within its limit" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
