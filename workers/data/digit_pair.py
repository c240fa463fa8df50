"""Two digits on one canvas: the feature-suppression dataset of Chen, Luo & Li (2021, Table 4).

Each example pastes two random digits at random positions on a black ``canvas``×``canvas``
image: the *first* digit resized to ``first_size``, the *second* to ``second_size``. As the
second digit grows it dominates the image, and a contrastive encoder stops representing the
first one. Targets: ``first_digit`` and ``second_digit`` (the two class labels).

Overlapping pixels add and saturate at white. Sizes are in the paper's pixels; the canvas is
rendered at ``render_scale`` times that resolution, so a smoke run on a small canvas keeps the
paper's sizes in its tables.

Evaluation (``evaluation``). Training canvases always hold both digits. The linear probe of
each digit reads, by default (``target_alone``), canvases holding only that digit, at its size
and place: the paper's Table 4 supports this reading (its untrained network reads the first
digit equally at every size of the second, 16.5-16.9%, which two-digit canvases could not give,
since a large second digit hides the first more often; and at 20/20 every method reads "first"
and "second" at 99%, though with both digits on the canvas at random places and equal sizes
the two are indistinguishable, so no probe can pass about 55% there), and its Table 3 says so
of MultiDigits ("during evaluation only 1 digit is present"). ``both_digits`` evaluates on the
training canvases instead.

Which digits pair up and where they sit is fixed by ``seed`` (the dataset, not the trial), so
every trial of a study trains and evaluates on the same images. Canvases are composed on the
device for each batch from the source digits and that layout; none is stored.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from workers.data.base import DATASETS, Dataset, Split
from workers.data.canvas import DigitCanvasConfig
from workers.data.sources import DigitImages, load_digit_images


@DATASETS.register
class DigitPairConfig(DigitCanvasConfig):
    name: Literal["digit_pair"]
    first_size: int = Field(20, ge=1, description="side of the first digit")
    second_size: int = Field(20, ge=1, description="side of the second digit")
    evaluation: Literal["target_alone", "both_digits"] = Field(
        "target_alone", description="what the linear probe of a digit sees: that digit alone, or both"
    )

    targets: ClassVar[tuple[str, ...]] = ("first_digit", "second_digit")

    @model_validator(mode="after")
    def _digits_fit(self) -> DigitPairConfig:
        for field in ("first_size", "second_size"):
            if getattr(self, field) > self.canvas:
                raise ValueError(f"{field}={getattr(self, field)} does not fit on canvas={self.canvas}")
        if self.pixels(self.first_size) < 2:
            raise ValueError(f"render_scale={self.render_scale} renders the first digit below 2 pixels")
        return self

    def build(self, data_root: Path, device: torch.device) -> Dataset:
        return self.build_canvases(data_root, device, lambda digits, count, generator: DigitPairSplit(
            digits,
            count,
            canvas=self.pixels(self.canvas),
            first_size=self.pixels(self.first_size),
            second_size=self.pixels(self.second_size),
            generator=generator,
            probe_alone=self.evaluation == "target_alone",
        ))


class DigitPairSplit(Split):
    """``count`` canvases: which two digits and where, drawn once; pixels made per batch."""

    def __init__(
        self,
        digits: DigitImages,
        count: int,
        *,
        canvas: int,
        first_size: int,
        second_size: int,
        generator: torch.Generator,
        probe_alone: bool = True,
    ) -> None:
        self.digits = digits
        self.probe_alone = probe_alone
        self.shown = ("first_digit", "second_digit")
        self.canvas, self.first_size, self.second_size = canvas, first_size, second_size
        available = len(digits.labels)
        # Every digit is a first digit once (while count allows); the second is any digit.
        order = torch.randperm(available, generator=generator)
        first = order.repeat(count // available + 1)[:count]
        second = torch.randint(available, (count,), generator=generator)
        device = digits.images.device
        self.first = first.to(device)
        self.second = second.to(device)
        self.first_corner = torch.randint(canvas - first_size + 1, (count, 2), generator=generator).to(device)
        self.second_corner = torch.randint(canvas - second_size + 1, (count, 2), generator=generator).to(device)
        self.labels = {
            "first_digit": digits.labels[self.first],
            "second_digit": digits.labels[self.second],
        }

    def probed_for(self, target: str) -> DigitPairSplit:
        """With ``probe_alone``, the same canvases holding only ``target``'s digit."""
        if not self.probe_alone:
            return self
        alone = copy.copy(self)
        alone.shown = (target,)
        return alone

    def images(self, index: torch.Tensor) -> torch.Tensor:
        canvases = torch.zeros(len(index), self.canvas, self.canvas, device=index.device)
        for target, digit, size, corner in (
            ("first_digit", self.first, self.first_size, self.first_corner),
            ("second_digit", self.second, self.second_size, self.second_corner),
        ):
            if target not in self.shown:
                continue
            pixels = resize_digits(self.digits.images[digit[index]], size)
            paste(canvases, pixels, corner[index])
        return canvases.clamp_(max=1.0).unsqueeze(1)


def resize_digits(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [B, h, w] → float [B, size, size] in [0, 1], antialiased bilinear."""
    x = images.unsqueeze(1).float().div_(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.squeeze(1).clamp_(0.0, 1.0)


def paste(canvases: torch.Tensor, patches: torch.Tensor, corners: torch.Tensor) -> None:
    """Add ``patches`` [B, s, s] into ``canvases`` [B, H, W] with top-left ``corners`` [B, 2] (row, col)."""
    size = patches.shape[-1]
    offsets = torch.arange(size, device=canvases.device)
    rows = (corners[:, 0:1] + offsets)[:, :, None]  # [B, s, 1]
    cols = (corners[:, 1:2] + offsets)[:, None, :]  # [B, 1, s]
    batch = torch.arange(len(canvases), device=canvases.device)[:, None, None]
    canvases[batch, rows, cols] += patches
