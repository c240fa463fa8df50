"""SimCLR's augmentations: our batched kernels (workers.views) against kornia's, in the same run.

    .venv/bin/python benchmarks/augmentations.py [--device cuda] [--batch 512] [--repeats 10] [--sizes 32 96]

For each op, the time to transform one batch of RGB images both ways and the ratio
kornia / ours (above 1: ours is faster). Two kinds of kornia rows:

* ``kornia.enhance`` / ``kornia.filters`` functional ops given the parameters we drew: the
  same computation, so the row says whose kernel is faster; ``max|Δ|`` is the largest
  difference between the two outputs (kornia's gray weights are 0.299/0.587/0.114, ours and
  torchvision's 0.2989/0.587/0.114).
* ``kornia.augmentation`` modules, which draw their own parameters from torch's global RNG
  (not the trial's generator) and, for colour jitter, one order of the four steps for the whole
  batch: the nearest kornia does to the transform, timed for reference.

The last rows time a whole SimCLR view (crop, flip, colour distortion of strength 1, blur)
batched against torchvision.transforms.v2 applied to one image tensor at a time.
"""

from __future__ import annotations

import argparse
import math

import kornia
import kornia.augmentation as K
import torch
from timing import timed
from torchvision.transforms import v2

from workers.views import BlurConfig, ColourConfig, CropConfig, CutoutConfig, NoiseConfig, ViewsConfig, make_view
from workers.views.colour import adjust_hue, colour_jitter, random_colour_distortion
from workers.views.filters import gaussian_blur, random_noise, sobel
from workers.views.geometry import random_cutout, rotate_quarter_turns


def kornia_jitter(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation, hue in this order with kornia's functional ops."""
    images = kornia.enhance.adjust_brightness_accumulative(images, factors[:, 0])
    images = kornia.enhance.adjust_contrast_with_mean_subtraction(images, factors[:, 1])
    images = kornia.enhance.adjust_saturation_with_gray_subtraction(images, factors[:, 2])
    return kornia.enhance.adjust_hue(images, factors[:, 3] * 2 * math.pi)


def rows(images: torch.Tensor, generator: torch.Generator) -> list[tuple[str, object, object, bool]]:
    """(name, ours, kornia's, same computation?) for each op on ``images``."""
    batch, device = len(images), images.device
    factors = torch.rand(batch, 4, device=device, generator=generator) * 1.6 + 0.2
    factors[:, 3] = factors[:, 3] / 4 - 0.25  # hue shift in [-0.2, 0.2] turns
    shuffled = torch.rand(batch, 4, device=device, generator=generator).argsort(dim=1)
    sigma = torch.rand(batch, device=device, generator=generator) * 1.9 + 0.1
    taps = BlurConfig().kernel_size(images.shape[-1])
    turns = torch.randint(1, 4, (batch,), device=device, generator=generator)
    colour = ColourConfig()
    jitter_module = K.ColorJitter(0.8, 0.8, 0.8, 0.2, p=1.0)
    distortion_module = K.AugmentationSequential(K.ColorJitter(0.8, 0.8, 0.8, 0.2, p=0.8), K.RandomGrayscale(p=0.2))
    one_order = ColourConfig(random_order=False)
    one_order_module = K.AugmentationSequential(
        K.ColorJitter(0.8, 0.8, 0.8, 0.2, p=0.8, order=(0, 1, 2, 3)), K.RandomGrayscale(p=0.2)
    )
    return [
        ("jitter, fixed order (functional)",
         lambda: colour_jitter(images, factors), lambda: kornia_jitter(images, factors), True),
        ("hue (functional)",
         lambda: adjust_hue(images, factors[:, 3]),
         lambda: kornia.enhance.adjust_hue(images, factors[:, 3] * 2 * math.pi), True),
        ("jitter, order per image / kornia: per batch (module)",
         lambda: colour_jitter(images, factors, shuffled), lambda: jitter_module(images), False),
        ("colour distortion p 0.8 + gray 0.2 (module)",
         lambda: random_colour_distortion(images, colour, generator), lambda: distortion_module(images), False),
        ("colour distortion, order B, C, S, H (module)",
         lambda: random_colour_distortion(images, one_order, generator), lambda: one_order_module(images), False),
        (f"blur, σ per image, {taps} taps (functional)",
         lambda: gaussian_blur(images, sigma, taps),
         lambda: kornia.filters.gaussian_blur2d(images, (taps, taps), sigma[:, None].expand(batch, 2)), True),
        ("blur p 0.5 (module)",
         lambda: make_view(images, ViewsConfig(crop=None, blur=True), generator),
         lambda: K.RandomGaussianBlur((taps, taps), (0.1, 2.0), p=0.5)(images), False),
        ("sobel (functional)",
         lambda: sobel(images),
         lambda: kornia.filters.sobel(kornia.color.rgb_to_grayscale(images), eps=0.0).expand_as(images), True),
        ("rotation 90/180/270 (module)",
         lambda: rotate_quarter_turns(images, turns), lambda: K.RandomRotation90((1, 3), p=1.0)(images), False),
        ("cutout ½ side (module)",
         lambda: random_cutout(images, CutoutConfig(), generator),
         lambda: K.RandomErasing(scale=(0.25, 0.25), ratio=(1.0, 1.0), p=1.0)(images), False),
        ("noise σ 0.1 (module)",
         lambda: random_noise(images, NoiseConfig(), generator),
         lambda: K.RandomGaussianNoise(std=0.1, p=1.0)(images).clamp(0, 1), False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 96])
    args = parser.parse_args()
    device = torch.device(args.device)
    generator = torch.Generator(device=device).manual_seed(0)
    print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch}, 3 channels, "
          f"mean of {args.repeats} repeats; ratio = kornia / ours (above 1: ours faster)")
    for size in args.sizes:
        images = torch.rand(args.batch, 3, size, size, device=device, generator=generator)
        print(f"\n{size}×{size}")
        for name, ours, theirs, same in rows(images, generator):
            ours_s, theirs_s = timed(ours, args.repeats, device), timed(theirs, args.repeats, device)
            agreement = f"   max|Δ| {(ours() - theirs()).abs().max().item():.1e}" if same else ""
            print(f"  {name:<54} ours {ours_s * 1e3:8.2f} ms   kornia {theirs_s * 1e3:8.2f} ms   "
                  f"×{theirs_s / ours_s:5.2f}{agreement}")
        whole_view(images, generator, args.repeats, device)


def whole_view(images: torch.Tensor, generator: torch.Generator, repeats: int, device: torch.device) -> None:
    """A whole SimCLR view: batched make_view vs torchvision v2 per image (the data-loader way, minus the loader)."""
    size = images.shape[-1]
    views = ViewsConfig(crop=CropConfig(), flip=True, colour=True, blur=True)
    per_image = v2.Compose([
        v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8), v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(BlurConfig().kernel_size(size), (0.1, 2.0))], p=0.5),
    ])
    ours = timed(lambda: make_view(images, views, generator), repeats, device)
    baseline = timed(lambda: torch.stack([per_image(image) for image in images]), max(1, repeats // 5), device)
    print(f"  {'whole view: crop, flip, colour 1, blur':<54} ours {ours * 1e3:8.2f} ms   "
          f"torchvision per image {baseline * 1e3:8.1f} ms   ×{baseline / ours:5.1f}")


if __name__ == "__main__":
    main()
