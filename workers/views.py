"""Views: batched, on-device augmentations that turn one image batch into one view.

SimCLR (Chen et al. 2020, §3 and Appendix A) builds two views of every image with a random
crop resized back to the input size (plus flips and colour distortion on natural images).
Here every random parameter is drawn for the whole batch at once and the crop is one
``affine_grid``/``grid_sample`` call, so a view of a 512-image batch is a handful of kernels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

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


class ViewsConfig(Section):
    crop: CropConfig | None = Field(default_factory=CropConfig, description="null: no crop")
    flip: bool = Field(False, description="random horizontal flip (off for digits)")


def make_view(
    images: torch.Tensor, config: ViewsConfig, generator: torch.Generator, fixed_channels: int = 0
) -> torch.Tensor:
    """One random view of every image in ``images`` [B, C, H, W], same shape.

    The last ``fixed_channels`` channels are not augmented: the view is made from the others
    and they are appended to it unchanged (the shared bits of Chen, Luo & Li 2021, §4, which
    must be identical in both views).
    """
    if config.crop is None and not config.flip:
        return images
    if fixed_channels:
        varied, fixed = images[:, :-fixed_channels], images[:, -fixed_channels:]
        return torch.cat([make_view(varied, config, generator), fixed], dim=1)
    batch = len(images)
    options = {"device": images.device, "generator": generator}
    width = torch.ones(batch, device=images.device)
    height = torch.ones(batch, device=images.device)
    if config.crop is not None:
        width, height = _crop_extent(batch, config.crop, options)
    # Normalised coordinates run from -1 to 1, so a crop of side fraction w has half-width w
    # and its centre can move by 1 - w either way.
    centre_x = (torch.rand(batch, **options) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(batch, **options) * 2 - 1) * (1 - height)
    mirror = torch.ones(batch, device=images.device)
    if config.flip:
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
