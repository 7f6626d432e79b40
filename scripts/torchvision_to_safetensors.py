#!/usr/bin/env python3
"""Writes a torchvision backbone's state_dict as safetensors, the file
nmhash_train --init-from (and nmhash_reproduce --init-from) reads as it is:
torchvision's names, the batch-norm statistics, and the classifier, which
nmhash lists as skipped (its hashing layer replaces it).

  scripts/torchvision_to_safetensors.py --arch resnet18 --weights resnet18-f37072fd.pth --out resnet18.safetensors
  nmhash_train --dataset list:DIR --arch resnet18 --init-from resnet18.safetensors ...

--weights is a state_dict saved by PyTorch (torchvision's ImageNet files,
or a model of your own); without it the weights are torchvision's random
initialisation under --seed (for tests). Runs with Debian's python3-torch
and python3-torchvision, or PyTorch from PyPI; safetensors from PyPI is
used where installed, else an equivalent writer below.
"""
import argparse
import json
import struct

import numpy as np
import torch
import torchvision


def save(tensors, path):
    try:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in tensors.items()}, path)
        return
    except ImportError:
        pass
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().cpu().numpy()
        integer = np.issubdtype(a.dtype, np.integer)
        a = np.ascontiguousarray(a, dtype="<i8" if integer else "<f4")
        header[name] = {"dtype": "I64" if integer else "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    import os
    os.replace(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", required=True, help="a torchvision model: alexnet, vgg16, resnet18, resnet34, resnet50")
    p.add_argument("--weights", help="a PyTorch state_dict file (.pth) for that model")
    p.add_argument("--seed", type=int, default=0, help="seed of the random initialisation (without --weights)")
    p.add_argument("--out", required=True, help="the safetensors file to write")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    model = getattr(torchvision.models, a.arch)()
    if a.weights:
        model.load_state_dict(torch.load(a.weights, map_location="cpu"), strict=True)
    save(model.state_dict(), a.out)
    print(f"wrote {a.out}: {len(model.state_dict())} tensors of torchvision's {a.arch}")


if __name__ == "__main__":
    main()
