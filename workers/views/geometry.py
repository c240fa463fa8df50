"""Geometric transforms: random resized crop and flip (one ``grid_sample``), quarter-turn rotation, cutout.

Every random parameter is drawn for the whole batch at once from the trial's generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from workers.registry import Section


class CropConfig(Section):
    """Random resized crop: area fraction drawn from ``scale``, aspect ratio (w/h) log-uniform in ``ratio``."""

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    @model_validator(mode="after")
    def _ordered(self) -> CropConfig:
        low, high = self.scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {list(self.scale)}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {list(self.ratio)}")
        return self


class RotationConfig(Section):
    """Rotation by a multiple of 90°, drawn uniformly from ``angles`` per image (SimCLR Fig. 4: {90°, 180°, 270°})."""

    angles: tuple[int, ...] = Field((90, 180, 270), min_length=1, description="degrees, multiples of 90")
    probability: float = Field(1.0, ge=0, le=1)

    @field_validator("angles")
    @classmethod
    def _quarter_turns(cls, angles: tuple[int, ...]) -> tuple[int, ...]:
        if any(angle % 90 for angle in angles):
            raise ValueError(f"angles must be multiples of 90, got {list(angles)}")
        return angles


class CutoutConfig(Section):
    """One square of side ``size`` (a fraction of the image's side) set to 0, its centre uniform over the image.

    DeVries & Taylor 2017 (used in SimCLR Fig. 4): the square may reach past the border and is
    clipped there, so its mean area is (s - s²/4)² of the image. Their CIFAR-10 square, 16 of 32
    pixels, is ``size: 0.5``.
    """

    size: float = Field(0.5, gt=0, le=1)
    probability: float = Field(1.0, ge=0, le=1)


def crop_and_flip(
    images: torch.Tensor, crop: CropConfig | None, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Random resized crop (resized back to the input size) and horizontal flip, one ``grid_sample``.

    Draws, in order: area and log-ratio (with a crop), the crop centre's x and y, and the flip
    (with ``flip``), each one number per image.
    """
    batch = len(images)
    options = {"device": images.device, "generator": generator}
    width = torch.ones(batch, device=images.device)
    height = torch.ones(batch, device=images.device)
    if crop is not None:
        width, height = _crop_extent(batch, crop, options)
    # Normalised coordinates run from -1 to 1, so a crop of side fraction w has half-width w
    # and its centre can move by 1 - w either way.
    centre_x = (torch.rand(batch, **options) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(batch, **options) * 2 - 1) * (1 - height)
    mirror = torch.ones(batch, device=images.device)
    if flip:
        mirror = torch.where(torch.rand(batch, **options) < 0.5, -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3, device=images.device)
    theta[:, 0, 0] = width * mirror
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = height
    theta[:, 1, 2] = centre_y
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # A crop touching the border samples up to half a pixel past the outermost pixel centres;
    # "border" repeats the edge there, as cropping inside the image would, instead of fading to 0.
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _crop_extent(batch: int, crop: CropConfig, options: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Side fractions (w, h) with w·h = area ~ U(scale) and w/h log-uniform in ratio.

    torchvision redraws crops that do not fit; clamping to the image instead keeps this one
    batched, and only changes the rare extreme-ratio draws of large areas.
    """
    area = torch.empty(batch, device=options["device"]).uniform_(*crop.scale, generator=options["generator"])
    log_low, log_high = math.log(crop.ratio[0]), math.log(crop.ratio[1])
    log_ratio = torch.empty_like(area).uniform_(log_low, log_high, generator=options["generator"])
    ratio = log_ratio.exp()
    width = (area * ratio).sqrt().clamp(max=1.0)
    height = (area / ratio).sqrt().clamp(max=1.0)
    return width, height


def rotate_quarter_turns(images: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Each square image [C, H, H] turned ``turns[b]`` × 90° counter-clockwise (exact: a pixel gather).

    The four index maps come from ``torch.rot90`` of a grid of pixel numbers, so the whole
    batch is one ``gather``: out[b, c, p] = images[b, c, map[turns[b], p]].
    """
    batch, channels, height, width = images.shape
    if height != width:
        raise ValueError(f"rotation by multiples of 90° needs square images, got {height}×{width}")
    pixels = torch.arange(height * width, device=images.device).view(height, width)
    maps = torch.stack([torch.rot90(pixels, k, dims=(0, 1)).flatten() for k in range(4)])
    index = maps[turns.remainder(4)].unsqueeze(1).expand(batch, channels, height * width)
    return images.flatten(2).gather(2, index).view_as(images)


def random_rotation(images: torch.Tensor, config: RotationConfig, generator: torch.Generator) -> torch.Tensor:
    """Draws, in order: which angle (uniform over ``angles``) and whether to rotate, one each per image."""
    batch = len(images)
    choice = torch.randint(len(config.angles), (batch,), device=images.device, generator=generator)
    applied = torch.rand(batch, device=images.device, generator=generator) < config.probability
    turns = torch.zeros_like(choice)
    for index, angle in enumerate(config.angles):  # a few angles, not images; no host-to-device copy
        turns = torch.where(choice == index, angle // 90 % 4, turns)
    return rotate_quarter_turns(images, torch.where(applied, turns, 0))


def cutout(images: torch.Tensor, centre: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Zeros the square of side fraction ``size[b]`` centred at ``centre[b]`` = (x, y) in [0, 1]² (clipped).

    A pixel is inside when its centre is: |(j + ½)/W - x| < size/2 and |(i + ½)/H - y| < size/2.
    """
    height, width = images.shape[-2:]
    xs = (torch.arange(width, device=images.device) + 0.5) / width
    ys = (torch.arange(height, device=images.device) + 0.5) / height
    half = (size / 2).view(-1, 1)
    inside_x = (xs - centre[:, :1]).abs() < half  # [B, W]
    inside_y = (ys - centre[:, 1:]).abs() < half  # [B, H]
    inside = inside_y.unsqueeze(2) & inside_x.unsqueeze(1)  # [B, H, W]
    return images.masked_fill(inside.unsqueeze(1), 0.0)


def random_cutout(images: torch.Tensor, config: CutoutConfig, generator: torch.Generator) -> torch.Tensor:
    """Draws, in order: the centre (x, y) and whether to cut, per image."""
    batch = len(images)
    draws = torch.rand(batch, 3, device=images.device, generator=generator)
    size = torch.where(draws[:, 2] < config.probability, config.size, 0.0)  # size 0 cuts nothing
    return cutout(images, draws[:, :2], size)
