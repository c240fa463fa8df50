"""What the digit-canvas datasets share: MNIST-like digits pasted on a larger black canvas.

``digit_pair`` (Table 4) and ``multidigit`` (Table 3) both give sizes in the paper's pixels and
render at ``render_scale`` of that resolution, so small and smoke runs shrink the canvas while
their tables keep the paper's sizes. Which digits land where is fixed by ``seed`` (the
dataset's, not the trial's), so every trial of a study sees the same images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from pydantic import Field

from workers.data.base import Dataset, DatasetConfig, Split
from workers.data.sources import TRAIN_DIGITS, DigitImages, Source, load_digit_images

MakeSplit = Callable[[DigitImages, int, torch.Generator], Split]


class DigitCanvasConfig(DatasetConfig):
    """Fields and sizes common to datasets that compose digits on a canvas."""

    source: Source = "mnist"
    canvas: int = Field(112, ge=1, description="canvas side, in the paper's pixels")
    render_scale: float = Field(1.0, gt=0, le=1, description="rendered pixels per paper pixel")
    train_examples: int | None = Field(None, ge=1, description="default: one per train digit")
    test_examples: int | None = Field(None, ge=1, description="default: one per test digit")
    seed: int = Field(0, description="seed of which digits sit on each canvas and where")

    def pixels(self, paper_pixels: int) -> int:
        """Rendered pixels of a length given in the paper's pixels (at least 1)."""
        return max(1, round(paper_pixels * self.render_scale))

    def sources(self) -> list[Source]:
        return [self.source]

    def image_size(self) -> int:
        return self.pixels(self.canvas)

    def train_count(self) -> int:
        return self.train_examples or TRAIN_DIGITS[self.source]

    def build_canvases(self, data_root: Path, device: torch.device, make_split: MakeSplit) -> Dataset:
        """The train and test splits, ``make_split(digits, count, generator)`` each, from one
        generator seeded by ``seed`` (train drawn first), with a 10-class label per target."""
        generator = torch.Generator().manual_seed(self.seed)
        splits = {}
        for split, count in (("train", self.train_examples), ("test", self.test_examples)):
            digits = load_digit_images(self.source, split, data_root).to(device)
            splits[split] = make_split(digits, count or len(digits.labels), generator)
        return Dataset(
            train=splits["train"],
            test=splits["test"],
            num_classes={target: 10 for target in self.targets},
            channels=1,
            image_size=self.image_size(),
        )
