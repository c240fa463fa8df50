"""Pretraining throughput: SimCLR views per second of the full step against the model alone and a PIL pipeline.

    .venv/bin/python benchmarks/trainer_throughput.py [--device cuda] [--backbone resnet18] [--batch 512]
        [--steps 20] [--sizes 32 96] [--workers N] [--threads N] [--precision float32|bfloat16] [--channels-last]
        [--compile]

Three ways of running one SimCLR training step on the same model and batch, in one run, each
timed as the mean of ``--steps`` steps after a warm-up (``benchmarks/timing.py``):

* **full**: what ``workers.trainer.train`` does: a random batch of uint8 images on the device,
  both views made there (crop, flip, colour distortion, blur: ``workers.views``), forward,
  NT-Xent, backward, LARS update;
* **model only**: the same step on two views made once beforehand, the most this model can
  do on this device (the views cost nothing);
* **PIL pipeline**: the usual way, ``torchvision.transforms`` on PIL images, one sample at a
  time, in a ``DataLoader`` with ``--workers`` worker processes, the batch then moved to the
  device for the same forward, backward and update.

Printed: views per second (2 × batch / step time) of each, and the ratios full / model only
(target ≥ 0.9) and full / PIL (target ≥ 2 on the 2-core CPU). Images: CIFAR-10's first
training batch from ``--cifar`` when it is there (upsampled once to 96×96 for the 96 runs),
else random uint8 images; the output says which. The views: SimCLR's ImageNet augmentations,
colour distortion of ``--colour-strength`` (1) and blur on, in both pipelines.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from timing import timed
from torch.utils.data import DataLoader
from torchvision import transforms as T

from workers import TrialConfig
from workers.data.base import Dataset
from workers.data.classification import ImageSplit
from workers.methods import Method
from workers.views import BlurConfig

BACKBONES = {
    "resnet18": {"name": "resnet18", "small_stem": True},
    "resnet50": {"name": "resnet50", "small_stem": True},
    "small_cnn": {"name": "small_cnn", "width": 32, "stages": 3},
}


def load_pixels(folder: Path, size: int, count: int) -> tuple[torch.Tensor, str]:
    """uint8 [N, 3, size, size] and where they come from: CIFAR-10's data_batch_1, else random."""
    batch = folder / "data_batch_1"
    if batch.exists():
        with batch.open("rb") as file:
            data = pickle.load(file, encoding="bytes")[b"data"]
        pixels = torch.from_numpy(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32))[:count]
        source = f"CIFAR-10 ({batch}, {len(pixels)} images)"
        if size != 32:
            resized = F.interpolate(pixels.float(), size=(size, size), mode="bilinear", antialias=True)
            pixels = resized.round().clamp(0, 255).to(torch.uint8)
            source += f", upsampled once to {size}×{size}"
        return pixels, source
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator)
    return pixels, f"random uint8 images ({folder} has no CIFAR-10)"


def trial_config(args: argparse.Namespace, size: int) -> TrialConfig:
    return TrialConfig.model_validate({
        "data": {"name": "classification", "source": "cifar10", "size": size},  # validated only; never loaded
        "model": {"backbone": BACKBONES[args.backbone]},
        "method": "simclr",
        "loss": {"name": "nt_xent", "temperature": 0.5},
        "views": {"flip": True, "colour": {"strength": args.colour_strength}, "blur": True},
        "optim": {"name": "lars", "lr": 0.3, "lr_scaling": "linear", "weight_decay": 1e-6},
        "train": {"batch_size": args.batch, "precision": args.precision, "compile": args.compile},
    })


class PilPairs(torch.utils.data.Dataset):
    """Two independently transformed views of one PIL image per item, as PyTorch SimCLR code does."""

    def __init__(self, pixels: torch.Tensor, transform: T.Compose) -> None:
        self.images = [Image.fromarray(image) for image in pixels.permute(0, 2, 3, 1).numpy()]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        return self.transform(image), self.transform(image)


def pil_transform(size: int, strength: float) -> T.Compose:
    """SimCLR's augmentations as ``torchvision.transforms`` on PIL images (blur kernel as ours: 10% of the side)."""
    s = strength
    return T.Compose([
        T.RandomResizedCrop(size),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(BlurConfig().kernel_size(size), sigma=(0.1, 2.0))], p=0.5),
        T.ToTensor(),
    ])


def endless(loader: DataLoader):
    while True:
        yield from loader


def measure(args: argparse.Namespace, size: int, device: torch.device) -> None:
    pixels, source = load_pixels(Path(args.cifar), size, args.images)
    trial = trial_config(args, size)
    split = ImageSplit(pixels.to(device), torch.zeros(len(pixels), dtype=torch.long, device=device))
    dataset = Dataset(train=split, test=split, num_classes={"class": 10}, channels=3, image_size=size)
    torch.manual_seed(0)
    method: Method = trial.method.build(trial, dataset).to(device)
    if args.channels_last:
        method = method.to(memory_format=torch.channels_last)
    if args.compile:  # as workers.trainer.run_trial does; the warm-up steps pay the compilation
        method.encoder.compile()
    optimizer, _ = trial.optim.build(method, steps_per_epoch=1, epochs=1, batch_size=args.batch)
    generator = torch.Generator(device=device).manual_seed(0)
    mixed = trial.train.precision == "bfloat16"
    batch = args.batch

    def update(loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def full_step() -> None:  # workers.trainer.train's inner loop
        index = torch.randperm(len(split), device=device, generator=generator)[:batch]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed):
            labels = {"class": split.labels["class"][index], "index": index}
            loss, online = method.training_loss(split.images(index), labels, generator)
        update(loss + online)

    def model_step(first: torch.Tensor, second: torch.Tensor) -> None:  # SimCLR.objective without the views
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed):
            z = method.head(method.encoder(torch.cat([first, second])))
            with torch.autocast(device.type, enabled=False):
                loss = method.loss(*z.float().chunk(2), generator=generator)
        update(loss)

    index = torch.arange(batch, device=device)
    first = method.view(split.images(index), method.views, generator)
    second = method.view(split.images(index), method.second_views, generator)
    full = timed(full_step, args.steps, device)
    model = timed(lambda: model_step(first, second), args.steps, device)

    loader = DataLoader(
        PilPairs(pixels, pil_transform(size, args.colour_strength)), batch_size=batch, shuffle=True, drop_last=True,
        num_workers=args.workers, persistent_workers=args.workers > 0, pin_memory=device.type == "cuda",
    )
    batches = endless(loader)

    def pil_step() -> None:
        first, second = (views.to(device, non_blocking=True) for views in next(batches))
        model_step(first, second)

    for _ in range(2 * args.workers):  # start the workers and drain what they prefetched while idle
        pil_step()
    pil = timed(pil_step, args.steps, device)

    views = 2 * batch
    print(f"\n{size}×{size}: {source}")
    print(f"  full step (views on the device)  {views / full:9.0f} views/s   {full * 1e3:8.1f} ms/step")
    print(f"  model only (pre-made views)      {views / model:9.0f} views/s   {model * 1e3:8.1f} ms/step")
    print(f"  PIL + DataLoader ({args.workers} workers)     {views / pil:9.0f} views/s   {pil * 1e3:8.1f} ms/step")
    print(f"  full / model only ×{model / full:.2f} (target ≥ 0.9)    full / PIL ×{pil / full:.2f} (target ≥ 2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="resnet18")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each way (after a warm-up)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 96])
    parser.add_argument("--images", type=int, default=10_000, help="images to draw batches from")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads of the step")
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--channels-last", action="store_true", help="the model's weights in channels_last")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder (train.compile)")
    parser.add_argument("--colour-strength", type=float, default=1.0)
    parser.add_argument("--cifar", default="/work/data/cifar-10-batches-py", help="folder of CIFAR-10's batches")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {args.threads} torch thread(s), backbone {args.backbone}, batch {args.batch} "
          f"({2 * args.batch} views a step), {args.precision}{', channels_last' if args.channels_last else ''}"
          f"{', compiled' if args.compile else ''}, "
          f"mean of {args.steps} steps; views: crop, flip, colour {args.colour_strength}, blur")
    for size in args.sizes:
        measure(args, size, device)


if __name__ == "__main__":
    main()
