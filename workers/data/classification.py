"""A plain labelled image dataset: one source's images and their class, nothing composed.

The setting of the random-bits experiment (Chen, Luo & Li 2021, §4; the ``shared_bits``
dataset wraps this one) and of any standard linear-evaluation benchmark. Target: ``class``.

Each split is one uint8 tensor [N, C, H, W] on the device at the source's resolution; a batch
is made as float [B, C, size, size] in [0, 1], resized bilinearly when ``size`` differs from the
source's (scikit-learn's 8×8 ``digits`` at ``size: 28`` stand in for MNIST at smoke scale).
``train_examples`` / ``test_examples`` keep the first examples of a split (every source's
order is already shuffled: torchvision's files as published, ``digits`` by its fixed split).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from workers.data.base import DATASETS, Dataset, DatasetConfig, Split
from workers.data.sources import IMAGE_SHAPES, NUM_CLASSES, TRAIN_IMAGES, ImageSource, load_images


@DATASETS.register
class ClassificationConfig(DatasetConfig):
    name: Literal["classification"]
    source: ImageSource = "mnist"
    size: int | None = Field(None, ge=1, description="side the images are resized to; default: the source's")
    train_examples: int | None = Field(None, ge=1, description="the first N training images; default: all")
    test_examples: int | None = Field(None, ge=1, description="the first N test images (at most all)")

    targets: ClassVar[tuple[str, ...]] = ("class",)

    @model_validator(mode="after")
    def _enough_images(self) -> ClassificationConfig:
        available = TRAIN_IMAGES[self.source]
        if self.train_examples is not None and self.train_examples > available:
            raise ValueError(f"train_examples={self.train_examples} is more than the {available} {self.source} images")
        return self

    def sources(self) -> list[ImageSource]:
        return [self.source]

    def image_size(self) -> int:
        return self.size or IMAGE_SHAPES[self.source][1]

    def train_count(self) -> int:
        return self.train_examples or TRAIN_IMAGES[self.source]

    def build(self, data_root: Path, device: torch.device) -> Dataset:
        splits = {}
        for split, count in (("train", self.train_examples), ("test", self.test_examples)):
            loaded = load_images(self.source, split, data_root)
            splits[split] = ImageSplit(loaded.images[:count].to(device), loaded.labels[:count].to(device), self.size)
        return Dataset(
            train=splits["train"],
            test=splits["test"],
            num_classes={"class": NUM_CLASSES[self.source]},
            channels=IMAGE_SHAPES[self.source][0],
            image_size=self.image_size(),
        )


class ImageSplit(Split):
    """Stored images ``pixels`` uint8 [N, C, H, W] and their ``class`` labels."""

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor, size: int | None = None) -> None:
        self.pixels = pixels
        self.size = size
        self.labels = {"class": labels}

    def images(self, index: torch.Tensor) -> torch.Tensor:
        x = self.pixels[index].float().div_(255.0)
        if self.size is not None and x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
            x = x.clamp_(0.0, 1.0)
        return x
