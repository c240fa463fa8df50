"""MultiDigits: N digits on one canvas, trained on all N, probed on one (Chen, Luo & Li 2021, Table 3).

Each training canvas is a black ``canvas``×``canvas`` image holding ``digits`` (1..16) source
digits, each resized to ``digit_size``×``digit_size`` (the paper's 28×28: Table 3's header,
"Number of digits (size 28 × 28)"). Two placements (the paper's Figure 2):

- ``random``: every digit's top-left corner is uniform over the canvas; digits overlap more as
  N grows, and overlapping pixels add and saturate at white (as in ``digit_pair``).
- ``grid``: the canvas is cut into g×g square slots, g = ⌈√N⌉, of side ⌊canvas / g⌋ (the last
  canvas % g pixels of each axis belong to no slot); each digit gets its own slot, so digits
  never overlap. With canvas 112 and digits 28, 16 digits fill the 4×4 grid exactly.

Evaluation. Table 3: "During evaluation only 1 digit is present." The target ``digit`` is the
class of each canvas's *designated* digit, the first one drawn; its linear probe
(``probed_for("digit")``) reads the same canvases holding only that digit, at its size and
place. Training canvases always hold all N digits (with N = 1 the two are the same images).

Not stated in the text at hand, chosen here:

- the canvas side: the slides do not give it; 112 is the community re-implementation's
  (``mona251/Intriguing-Properties-of-Contrastive-Losses``, ``img_shape=(112, 112)``), which
  also makes 16 digits of 28 pixels fill a 4×4 grid exactly;
- in ``grid``, which N of the g×g slots are filled is drawn per canvas (all of them when N is
  a square), and a digit sits at a uniform position inside its slot (slot and digit are the
  same size at N = 16 on the paper's canvas, so that case has no freedom left);
- the designated digit is the first drawn, and every source digit is a designated digit once
  (while ``train_examples`` allows) before any repeats; the other N - 1 are drawn uniformly;
- the probe reads the designated digit alone on both the probe's train and test split.

Sizes are in the paper's pixels; the canvas is rendered at ``render_scale`` times that
resolution, so a small run keeps the paper's numbers in its config. Which digits sit on a
canvas and where is fixed by ``seed`` (the dataset's, not the trial's), so every trial of a
study sees the same canvases; they are composed on the device per batch, never stored.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import ClassVar, Literal

import torch
from pydantic import Field, model_validator

from workers.data.base import DATASETS, Dataset, Split
from workers.data.canvas import DigitCanvasConfig
from workers.data.digit_pair import paste, resize_digits
from workers.data.sources import DigitImages, load_digit_images

MAX_DIGITS = 16  # Table 3's largest count


@DATASETS.register
class MultiDigitConfig(DigitCanvasConfig):
    name: Literal["multidigit"]
    digits: int = Field(ge=1, le=MAX_DIGITS, description="digits on every training canvas")
    placement: Literal["random", "grid"] = Field("random", description="uniform positions, or one grid slot each")
    digit_size: int = Field(28, ge=1, description="side of every digit, in the paper's pixels")

    targets: ClassVar[tuple[str, ...]] = ("digit",)

    @model_validator(mode="after")
    def _digits_fit(self) -> MultiDigitConfig:
        if self.digit_size > self.canvas:
            raise ValueError(f"digit_size={self.digit_size} does not fit on canvas={self.canvas}")
        if self.pixels(self.digit_size) < 2:
            raise ValueError(f"render_scale={self.render_scale} renders the digits below 2 pixels")
        if self.placement == "grid":
            side = grid_side(self.digits)
            slot = self.pixels(self.canvas) // side
            if self.pixels(self.digit_size) > slot:
                raise ValueError(
                    f"{self.digits} digits in a {side}×{side} grid leave slots of {slot} rendered pixels, "
                    f"smaller than the {self.pixels(self.digit_size)}-pixel digits; "
                    f"use a larger canvas or a smaller digit_size"
                )
        return self

    def build(self, data_root: Path, device: torch.device) -> Dataset:
        return self.build_canvases(data_root, device, lambda digits, count, generator: MultiDigitSplit(
            digits,
            count,
            digits_per_canvas=self.digits,
            placement=self.placement,
            canvas=self.pixels(self.canvas),
            digit_size=self.pixels(self.digit_size),
            generator=generator,
        ))


def grid_side(digits: int) -> int:
    """Slots per side of the grid that holds ``digits``: ⌈√digits⌉."""
    return math.isqrt(digits - 1) + 1


class MultiDigitSplit(Split):
    """``count`` canvases of ``digits_per_canvas`` digits; which and where drawn once, pixels made per batch.

    ``digit_index`` [count, N] indexes the source digits (column 0: the designated digit),
    ``corners`` [count, N, 2] their top-left (row, col) in rendered pixels.
    """

    def __init__(
        self,
        digits: DigitImages,
        count: int,
        *,
        digits_per_canvas: int,
        placement: Literal["random", "grid"],
        canvas: int,
        digit_size: int,
        generator: torch.Generator,
    ) -> None:
        self.digits = digits
        self.canvas, self.digit_size = canvas, digit_size
        self.shown = digits_per_canvas  # the first ``shown`` digits of each canvas are drawn
        available = len(digits.labels)
        designated = torch.randperm(available, generator=generator).repeat(count // available + 1)[:count]
        others = torch.randint(available, (count, digits_per_canvas - 1), generator=generator)
        index = torch.cat([designated[:, None], others], dim=1)
        if placement == "random":
            corners = torch.randint(canvas - digit_size + 1, (count, digits_per_canvas, 2), generator=generator)
        else:
            side = grid_side(digits_per_canvas)
            slot = canvas // side
            # A random permutation of the slots per canvas (argsort of uniform noise); keep N.
            slots = torch.rand(count, side * side, generator=generator).argsort(dim=1)[:, :digits_per_canvas]
            origin = torch.stack([slots // side, slots % side], dim=-1) * slot
            corners = origin + torch.randint(slot - digit_size + 1, (count, digits_per_canvas, 2), generator=generator)
        device = digits.images.device
        self.digit_index = index.to(device)
        self.corners = corners.to(device)
        self.labels = {"digit": digits.labels[self.digit_index[:, 0]]}

    def probed_for(self, target: str) -> MultiDigitSplit:
        """The same canvases holding only the designated digit, at its place (Table 3's protocol)."""
        if self.shown == 1:
            return self
        alone = copy.copy(self)
        alone.shown = 1
        return alone

    def images(self, index: torch.Tensor) -> torch.Tensor:
        chosen = self.digit_index[index, : self.shown]  # [B, n]
        batch, shown = chosen.shape
        size = self.digit_size
        patches = resize_digits(self.digits.images[chosen.reshape(-1)], size).view(batch, shown, size, size)
        corners = self.corners[index, : self.shown]
        canvases = torch.zeros(batch, self.canvas, self.canvas, device=index.device)
        # One paste per digit position (at most 16), each over the whole batch: overlapping
        # digits of one canvas land in different pastes, so their pixels add.
        for k in range(shown):
            paste(canvases, patches[:, k], corners[:, k])
        return canvases.clamp_(max=1.0).unsqueeze(1)
