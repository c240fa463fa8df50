"""Views: batched, on-device augmentations that turn one image batch into one view.

SimCLR (Chen et al. 2020, §3, Fig. 4 and Appendix A) builds two views of every image: a random
crop resized back to the input size and a flip, then colour distortion (jitter with
probability 0.8, grayscale with 0.2) and Gaussian blur; its Fig. 5 also tries cutout, Sobel
filtering, Gaussian noise and rotation. Here every random parameter is drawn for the whole batch
at once from the trial's generator, and every transform is a few batched kernels: no Python
loop over images, no PIL.

Order: crop and flip first (one ``affine_grid``/``grid_sample``, ``geometry``), then the enabled
transforms of ``order`` (default: rotation, colour, blur, sobel, cutout, noise), each with its
own probability per image. Each is a section that is off (null) by default; ``true`` switches
one on with its defaults, e.g. ``views: {flip: true, colour: {strength: 0.5}, blur: true}``.
With every new section off, a view is the crop and flip alone, drawn exactly as before.

Asymmetric views (Fig. 5): with ``asymmetric: true`` the second view of a pair is the crop and
flip only; the other transforms make the first view alone (``ViewsConfig.second_branch``).

Own kernels, not kornia's, and why (``benchmarks/augmentations.py`` measures both; figures in
``benchmarks/README.md``): kornia's augmentation modules draw their parameters from torch's
global RNG, not from a ``torch.Generator``, so a trial could not be reproduced from its seed
unless the parameters were drawn here anyway; its ``ColorJitter`` also shares one order of the
four jitter steps across the batch, where SimCLR's code draws one per image. Given our
parameters, kornia's functional ops (``enhance.adjust_*``, ``filters.gaussian_blur2d``,
``filters.sobel``) compute the same thing. Ours were about as fast (jitter, blur, Sobel, cutout,
noise: ratios 0.8-2.3 over two runs on a busy 2-core CPU) or faster (the hue shift ×2-6, as
kornia builds HSV in full; rotation ×2-9, as a quarter turn here is an exact pixel gather where
kornia warps). So every transform here is our own, and kornia is a benchmark dependency only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import torch
from pydantic import BeforeValidator, Field, model_validator

from workers.registry import Section
from workers.views.colour import ColourConfig, random_colour_distortion
from workers.views.filters import BlurConfig, NoiseConfig, SobelConfig, random_blur, random_noise, random_sobel
from workers.views.geometry import (
    CropConfig,
    CutoutConfig,
    RotationConfig,
    crop_and_flip,
    random_cutout,
    random_rotation,
)

__all__ = [
    "BlurConfig", "ColourConfig", "CropConfig", "CutoutConfig", "NoiseConfig", "RotationConfig", "SobelConfig",
    "ViewsConfig", "make_view",
]

Transform = Literal["rotation", "colour", "blur", "sobel", "cutout", "noise"]
TRANSFORMS: tuple[Transform, ...] = ("rotation", "colour", "blur", "sobel", "cutout", "noise")
APPLY: dict[str, Callable[[torch.Tensor, Any, torch.Generator], torch.Tensor]] = {
    "rotation": random_rotation,
    "colour": random_colour_distortion,
    "blur": random_blur,
    "sobel": random_sobel,
    "cutout": random_cutout,
    "noise": random_noise,
}


def _switch(value: Any) -> Any:
    """``true`` means the section's defaults, ``false`` means off (null)."""
    if value is True:
        return {}
    return None if value is False else value


def _section(what: str) -> Any:
    return Field(default=None, description=f"{what}; null: off, true: the defaults")


class ViewsConfig(Section):
    crop: CropConfig | None = Field(default_factory=CropConfig, description="null: no crop")
    flip: bool = Field(False, description="random horizontal flip (off for digits)")
    rotation: Annotated[RotationConfig | None, BeforeValidator(_switch)] = _section("rotation by 90° steps")
    colour: Annotated[ColourConfig | None, BeforeValidator(_switch)] = _section("colour distortion")
    blur: Annotated[BlurConfig | None, BeforeValidator(_switch)] = _section("Gaussian blur")
    sobel: Annotated[SobelConfig | None, BeforeValidator(_switch)] = _section("Sobel filtering")
    cutout: Annotated[CutoutConfig | None, BeforeValidator(_switch)] = _section("cutout")
    noise: Annotated[NoiseConfig | None, BeforeValidator(_switch)] = _section("Gaussian noise")
    order: tuple[Transform, ...] = Field(TRANSFORMS, description="the order of the transforms after crop and flip")
    asymmetric: bool = Field(False, description="the second view of a pair gets the crop and flip only (Fig. 5)")

    @model_validator(mode="after")
    def _ordered(self) -> ViewsConfig:
        repeated = sorted({name for name in self.order if self.order.count(name) > 1})
        if repeated:
            raise ValueError(f"order names {', '.join(repeated)} more than once")
        missing = [name for name in TRANSFORMS if getattr(self, name) is not None and name not in self.order]
        if missing:
            raise ValueError(f"order must list every transform switched on; missing: {', '.join(missing)}")
        return self

    def transforms(self) -> list[str]:
        """The transforms switched on, in the order they apply after crop and flip."""
        return [name for name in self.order if getattr(self, name) is not None]

    def second_branch(self) -> ViewsConfig:
        """The config of a pair's second view: this one, or with ``asymmetric`` its crop and flip alone."""
        return ViewsConfig(crop=self.crop, flip=self.flip) if self.asymmetric else self


def make_view(
    images: torch.Tensor, config: ViewsConfig, generator: torch.Generator, fixed_channels: int = 0
) -> torch.Tensor:
    """One random view of every image in ``images`` [B, C, H, W] (values in [0, 1]), same shape.

    The last ``fixed_channels`` channels are not augmented: the view is made from the others
    and they are appended to it unchanged (the shared bits of Chen, Luo & Li 2021, §4, which
    must be identical in both views).
    """
    transforms = config.transforms()
    if config.crop is None and not config.flip and not transforms:
        return images
    if fixed_channels:
        varied, fixed = images[:, :-fixed_channels], images[:, -fixed_channels:]
        return torch.cat([make_view(varied, config, generator), fixed], dim=1)
    if config.crop is not None or config.flip:
        images = crop_and_flip(images, config.crop, config.flip, generator)
    if transforms:
        # Under bfloat16 autocast the blur and Sobel convolutions would round; views stay float32.
        with torch.autocast(images.device.type, enabled=False):
            images = images.float()
            for name in transforms:
                images = APPLY[name](images, getattr(config, name), generator)
    return images
