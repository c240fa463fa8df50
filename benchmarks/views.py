"""Batched on-device views vs torchvision's per-sample RandomResizedCrop, in the same run.

    .venv/bin/python benchmarks/views.py [--device cuda] [--batch 512] [--repeats 20]

Prints the time to make one view of a batch both ways and the speed-up (baseline / ours).
The baseline is the usual data-loader pipeline minus the loader: torchvision.transforms.v2
applied to one image tensor at a time.
"""

from __future__ import annotations

import argparse

import torch
from timing import timed
from torchvision.transforms import v2

from workers.views import CropConfig, ViewsConfig, make_view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    scale, ratio = (0.5, 1.0), (3 / 4, 4 / 3)
    views = ViewsConfig(crop=CropConfig(scale=scale, ratio=ratio))
    generator = torch.Generator(device=device).manual_seed(0)
    print(f"device {device}, batch {args.batch}, mean of {args.repeats} repeats")
    for size in (56, 112):
        images = torch.rand(args.batch, 1, size, size, device=device)
        per_sample = v2.RandomResizedCrop(size, scale=scale, ratio=ratio, antialias=True)
        baseline = timed(lambda x=images, crop=per_sample: torch.stack([crop(i) for i in x]), args.repeats, device)
        ours = timed(lambda x=images: make_view(x, views, generator), args.repeats, device)
        print(f"{size}×{size}: per-sample {baseline * 1e3:8.1f} ms   batched {ours * 1e3:6.1f} ms   "
              f"speed-up ×{baseline / ours:.1f}")


if __name__ == "__main__":
    main()
