r"""View pairs: policies that make a pair's two views together, so that what they share is controlled.

The transforms of ``workers.views`` make each view on its own; InfoMin (Tian et al. 2020, §3.2,
Fig. 3) instead controls how much the two views share by *where* they are cut from one image.
A pair policy cuts the two raw views of every image at once (``PairConfig.cut``); each then goes
through the per-view transforms of ``views`` as any view does (``workers.views.make_pair``).
Policies are registered in ``PAIRS`` and chosen with ``views.pair: {name: ..., ...}``.

``patch_offset`` (Fig. 3): two patches of side P whose top-left corners lie a distance d apart,

.. math:: c_2 = c_1 + d\,(\cos\theta, \sin\theta),

the direction θ drawn per image, uniform over the directions in which both patches fit inside
the image (every direction while :math:`d \le S - P`; beyond, arcs around the diagonals, up to
:math:`d \le \sqrt{(W - P)^2 + (H - P)^2}`), then the pair's bounding box placed uniformly
inside the image. Corners are continuous: a patch is read with bilinear interpolation at
pixel centres :math:`(c_x + j + \tfrac12, c_y + i + \tfrac12)`, exact for whole-pixel corners
and exact at any corner on an image that is linear in x and y (what the tests check), so the
offset is d itself, not d rounded. Larger d, less shared content, lower :math:`I_\mathrm{NCE}`:
the study sweeps d.

What the encoder reads at evaluation: the paper learns on patches and evaluates the frozen
encoder on whole images of a classification dataset (STL-10, CIFAR-10), so here the encoder is
built for P×P inputs and reads every other image **resized** to P×P (``evaluation: resized``,
the default; bilinear with antialiasing, as ``workers.data`` resizes); ``evaluation: centre``
reads the central P×P patch instead (what a patch-level probe would see).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from workers.backbones import Backbone, BackboneConfig
from workers.registry import Registry, Section


class PairConfig(Section):
    """What a pair policy provides; register subclasses with ``@PAIRS.register``."""

    @abstractmethod
    def cut(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The two raw views [B, C, s, s] of ``images`` [B, C, H, W], drawn from ``generator``."""

    @abstractmethod
    def view_size(self, image_size: int) -> int:
        """The side s of each view made from images of side ``image_size``."""

    @abstractmethod
    def encoder(self, backbone: BackboneConfig, channels: int, image_size: int) -> Backbone:
        """The encoder for this pair's views, reading any image (the whole image at evaluation)."""

    def conflicts(self, image_size: int, min_input_size: int) -> list[tuple[str, str]]:
        """(dotted path, message) for each setting that cannot work on images of side ``image_size``."""
        return []


PAIRS: Registry[PairConfig] = Registry("view pair", PairConfig)


@PAIRS.register
class PatchOffsetConfig(PairConfig):
    """Two P×P patches whose top-left corners are ``offset`` pixels apart in a random direction."""

    name: Literal["patch_offset"]
    size: int = Field(ge=1, description="P, the side of each patch in pixels")
    offset: float = Field(ge=0, description="d, the distance between the patches' top-left corners in pixels")
    evaluation: Literal["resized", "centre"] = Field(
        "resized", description="what the encoder reads of a whole image: it resized to P×P, or its central patch"
    )

    def cut(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        first, second = offset_corners(len(images), images.shape[-2:], self.size, self.offset, generator)
        return read_patches(images, first, self.size), read_patches(images, second, self.size)

    def view_size(self, image_size: int) -> int:
        return self.size

    def encoder(self, backbone: BackboneConfig, channels: int, image_size: int) -> Backbone:
        return PatchEncoder(backbone.build(channels, self.size), self.size, self.evaluation)

    def conflicts(self, image_size: int, min_input_size: int) -> list[tuple[str, str]]:
        if self.size > image_size:
            return [("views.pair.size", f"a {self.size}-pixel patch does not fit in {image_size}-pixel images")]
        if self.size < min_input_size:
            return [("views.pair.size", f"the backbone needs inputs of at least {min_input_size} pixels")]
        longest = math.sqrt(2) * (image_size - self.size)
        if self.offset > longest + 1e-9:
            return [(
                "views.pair.offset",
                f"{self.offset} pixels is more than the {longest:.2f} that two {self.size}-pixel patches "
                f"of {image_size}-pixel images can be apart (corner to corner)",
            )]
        return []


def offset_corners(
    batch: int, shape: tuple[int, int] | torch.Size, size: int, offset: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left corners (x, y) [B, 2] in pixels of two ``size``-patches ``offset`` apart in images of ``shape`` (H, W).

    Draws one [B, 5] uniform block: the direction within the first quadrant's feasible arc, the
    signs of its x and y steps (the arc's mirror images), and the pair's place (x, y).
    """
    height, width = shape
    room_x, room_y = width - size, height - size
    if room_x < 0 or room_y < 0 or offset * offset > room_x**2 + room_y**2 + 1e-9:
        raise ValueError(f"two {size}-pixel patches {offset} pixels apart do not fit in a {height}×{width} image")
    device = generator.device
    draws = torch.rand(batch, 5, device=device, generator=generator)
    # In the first quadrant, |dx| = d·cos θ ≤ room_x and |dy| = d·sin θ ≤ room_y: θ in [acos(rx), asin(ry)].
    # Python numbers: no host-to-device copy.
    low = math.acos(min(1.0, room_x / offset)) if offset > 0 else 0.0
    high = math.asin(min(1.0, room_y / offset)) if offset > 0 else math.pi / 2
    theta = low + (high - low) * draws[:, 0]
    step_x = offset * torch.cos(theta) * torch.where(draws[:, 1] < 0.5, -1.0, 1.0)
    step_y = offset * torch.sin(theta) * torch.where(draws[:, 2] < 0.5, -1.0, 1.0)
    # The pair's bounding box is (size + |dx|) × (size + |dy|); its corner is uniform over where it fits.
    box_x = draws[:, 3] * (room_x - step_x.abs()).clamp_min(0)
    box_y = draws[:, 4] * (room_y - step_y.abs()).clamp_min(0)
    first = torch.stack([box_x + (-step_x).clamp_min(0), box_y + (-step_y).clamp_min(0)], dim=1)
    return first, first + torch.stack([step_x, step_y], dim=1)


def read_patches(images: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """The ``size``×``size`` patch of each image whose top-left corner is ``corners[b]`` = (x, y) in pixels.

    Pixel (i, j) of the patch is the image bilinearly interpolated at (x + j + ½, y + i + ½), pixel
    k's centre being at k + ½; a patch inside the image samples only between pixel centres.
    """
    height, width = images.shape[-2:]
    steps = torch.arange(size, device=images.device, dtype=corners.dtype) + 0.5
    xs = (corners[:, :1] + steps) * (2 / width) - 1  # [B, P], align_corners=False coordinates
    ys = (corners[:, 1:] + steps) * (2 / height) - 1
    grid = torch.stack([xs.unsqueeze(1).expand(-1, size, -1), ys.unsqueeze(2).expand(-1, -1, size)], dim=3)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)


class PatchEncoder(Backbone):
    """A backbone built for P×P patches; any other input is first resized to P×P, or cut to its centre."""

    def __init__(self, backbone: Backbone, size: int, evaluation: Literal["resized", "centre"] = "resized") -> None:
        super().__init__()
        self.backbone, self.size, self.evaluation = backbone, size, evaluation
        self.dim = backbone.dim

    def fit(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` as the backbone reads them: P×P (patches pass as they are)."""
        height, width = images.shape[-2:]
        if (height, width) == (self.size, self.size):
            return images
        if self.evaluation == "centre":
            top, left = (height - self.size) // 2, (width - self.size) // 2
            return images[..., top : top + self.size, left : left + self.size]
        side = (self.size, self.size)
        return F.interpolate(images, size=side, mode="bilinear", antialias=True, align_corners=False).clamp(0.0, 1.0)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.feature_map(self.fit(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.fit(x))
