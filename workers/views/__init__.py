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

Pairs (``pairs``): a pair policy, ``pair: {name: patch_offset, size: 32, offset: 16}``, cuts a
pair's two raw views together (InfoMin's patches at a controlled offset, Tian et al. 2020,
Fig. 3); each then gets this config's transforms (crop included unless ``crop: null``).
Methods make their two views with ``make_pair``; ``make_view`` refuses a config with a pair.
Off (null) by default. Channel splits of colour spaces (their Fig. 4) are the ``cmc`` method
(``workers.cmc``, conversions in ``colour_spaces``), as they need an encoder per view.

How much two views share, one number per augmentation (InfoMin, Fig. 5, sweeps each alone):
the crop's area lower bound, ``crop.scale: [low, 1]`` (two random crops of at least that
fraction of the image: the lower, the less they overlap), and the colour distortion's
``colour.strength`` s (the jitter's spread 0.8·s and hue shift 0.2·s: the higher, the less
the views' colours agree). A study sweeps either as one grid axis, e.g.
``sweep.grid: {views.crop.scale: [[0.08, 1], [0.2, 1], [0.4, 1]]}`` or
``{views.colour.strength: [0.25, 0.5, 1.0]}``, and plots accuracy against the measured I_NCE.

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
from workers.views.pairs import PAIRS, PairConfig, PatchOffsetConfig

__all__ = [
    "PAIRS", "BlurConfig", "ColourConfig", "CropConfig", "CutoutConfig", "NoiseConfig", "PairConfig",
    "PatchOffsetConfig", "RotationConfig", "SobelConfig", "ViewsConfig", "make_pair", "make_view",
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
    pair: PAIRS.union() | None = Field(None, description="a policy cutting a pair's two views together; null: off")

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
    if config.pair is not None:
        raise ValueError(f"views.pair ({config.pair.name}) makes both views of a pair at once: use make_pair")
    return _transformed(images, config, generator, fixed_channels)


def make_pair(
    images: torch.Tensor,
    config: ViewsConfig,
    generator: torch.Generator,
    fixed_channels: int = 0,
    *,
    second_config: ViewsConfig | None = None,
    second_images: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two views of a pair of every image in ``images`` [B, C, H, W].

    Without ``config.pair``: ``make_view`` of ``images`` with ``config``, then of ``second_images``
    (default: ``images``) with ``second_config`` (default: ``config.second_branch()``), drawn in
    that order, as methods drew them before pairs existed. With it: the policy cuts both raw
    views, then each gets its config's transforms (the second ``second_config``'s).
    """
    second_config = config.second_branch() if second_config is None else second_config
    if config.pair is None:
        second_images = images if second_images is None else second_images
        first = make_view(images, config, generator, fixed_channels)
        return first, make_view(second_images, second_config, generator, fixed_channels)
    if second_images is not None:
        name = config.pair.name
        raise ValueError(f"views.pair ({name}) cuts both views from one image; this data has its own second view")
    first, second = config.pair.cut(images, generator)
    return (
        _transformed(first, config, generator, fixed_channels),
        _transformed(second, second_config, generator, fixed_channels),
    )


def _transformed(
    images: torch.Tensor, config: ViewsConfig, generator: torch.Generator, fixed_channels: int = 0
) -> torch.Tensor:
    transforms = config.transforms()
    if config.crop is None and not config.flip and not transforms:
        return images
    if fixed_channels:
        varied, fixed = images[:, :-fixed_channels], images[:, -fixed_channels:]
        return torch.cat([_transformed(varied, config, generator), fixed], dim=1)
    if config.crop is not None or config.flip:
        images = crop_and_flip(images, config.crop, config.flip, generator)
    if transforms:
        # Under bfloat16 autocast the blur and Sobel convolutions would round; views stay float32.
        with torch.autocast(images.device.type, enabled=False):
            images = images.float()
            for name in transforms:
                images = APPLY[name](images, getattr(config, name), generator)
    return images
