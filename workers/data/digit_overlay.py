"""Digits on natural images: an easy feature over a hard one (Chen, Luo & Li 2021, §4, "digits on ImageNet").

The paper overlays "a controlled number of unique MNIST digits" on ImageNet images and finds
that standard SimCLR then learns features good for the digit or for the image class, not for
both, while supervised learning of the image class is unaffected. Here the natural images are
CIFAR-10's (``image_source: cifar10``) and the control is ``pool_size``:

- a pool of ``pool_size`` distinct digit images is drawn once, by ``seed``, from the train
  split of ``digit_source``;
- every natural image gets one digit drawn uniformly from the pool, fixed for the dataset (the
  same in both views and every epoch). Test images draw their own digits from the same pool,
  so a probe is tested on the digit images it was fitted on, over unseen natural images;
- the digit, resized to a tile of ⌊size / 3⌋ pixels, is repeated on a 3×3 grid of tiles (the
  3×3 block centred when ``size`` is not a multiple of 3, the leftover 1 or 2 pixels of each
  axis left without digit), and combined with the image by a pixel-wise maximum, the digit's
  grey level applied to all three channels: white strokes over the photo.

Targets: ``digit`` (the class of the image's pool digit) and ``image_class`` (the natural
image's class). Both probes read the overlaid images (the paper's linear evaluation "on both
MNIST digits and ImageNet classes").

From the authors' colab (``google-research/simclr``, ``colabs/intriguing_properties/
digits_on_tf_flowers.ipynb``): a 3×3 grid of copies of one digit, merged by element-wise max
(the slides say "channel addition"; the max is followed here), 16 unique digits by default
(``num_mnist_digits_used``). Chosen here, not in the paper: CIFAR-10 in place of ImageNet; tiles
that fill the image (the colab pastes 28-pixel digits at fixed offsets 15/45/75 % of a 224-pixel
image, so its digits cover less of it); the pool drawn from the train split only; pool
digits drawn uniformly per image (the number of images per digit is not balanced).

``image_source: sample_photos`` ships with scikit-learn (no download; tests and smoke runs):
its two bundled photos (``load_sample_images``: china.jpg, flower.jpg, 427×640) cut into
non-overlapping 32×32 patches, class = which photo (2 classes), every 4th patch in raster
order held out for test (390 train, 130 test patches), each split in a fixed shuffled order.

Images are stored as uint8 on the device (natural images at the source's resolution, pool
digits at theirs) and every batch is composed there with batched tensor ops.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from workers.data.base import DATASETS, Dataset, DatasetConfig, Split
from workers.data.classification import ImageSplit
from workers.data.digit_pair import resize_digits
from workers.data.sources import (
    TRAIN_DIGITS,
    DigitImages,
    LabelledImages,
    Source,
    SplitName,
    load_digit_images,
    load_images,
)

PhotoSource = Literal["cifar10", "sample_photos"]
PHOTO_SIDE = 32  # CIFAR-10's side, and the side of the sample-photo patches
PHOTO_CLASSES = {"cifar10": 10, "sample_photos": 2}
TRAIN_PHOTOS = {"cifar10": 50_000, "sample_photos": 390}
SAMPLE_TEST_EVERY = 4  # every 4th sample-photo patch (raster order) is a test patch
SAMPLE_ORDER_SEED = 0


@DATASETS.register
class DigitOverlayConfig(DatasetConfig):
    name: Literal["digit_overlay"]
    image_source: PhotoSource = "cifar10"
    digit_source: Source = "mnist"
    pool_size: int = Field(16, ge=1, description="distinct digits overlaid, drawn once from the digit train split")
    size: int | None = Field(None, ge=3, description="image side; default: the image source's (32)")
    train_examples: int | None = Field(None, ge=1, description="the first N training images; default: all")
    test_examples: int | None = Field(None, ge=1, description="the first N test images (at most all)")
    seed: int = Field(0, description="seed of the pool and of each image's digit")

    targets: ClassVar[tuple[str, ...]] = ("digit", "image_class")

    @model_validator(mode="after")
    def _enough_images(self) -> DigitOverlayConfig:
        digits = TRAIN_DIGITS[self.digit_source]
        if self.pool_size > digits:
            raise ValueError(f"pool_size={self.pool_size} is more than the {digits} {self.digit_source} train digits")
        photos = TRAIN_PHOTOS[self.image_source]
        if self.train_examples is not None and self.train_examples > photos:
            raise ValueError(
                f"train_examples={self.train_examples} is more than the {photos} {self.image_source} images"
            )
        return self

    def sources(self) -> list[str]:
        return [source for source in (self.image_source, self.digit_source) if source != "sample_photos"]

    def image_size(self) -> int:
        return self.size or PHOTO_SIDE

    def train_count(self) -> int:
        return self.train_examples or TRAIN_PHOTOS[self.image_source]

    def build(self, data_root: Path, device: torch.device) -> Dataset:
        generator = torch.Generator().manual_seed(self.seed)
        digits = load_digit_images(self.digit_source, "train", data_root)
        pool_index = torch.randperm(len(digits.labels), generator=generator)[: self.pool_size]
        pool = DigitImages(digits.images[pool_index], digits.labels[pool_index]).to(device)
        splits = {}
        for split, count in (("train", self.train_examples), ("test", self.test_examples)):
            photos = load_photos(self.image_source, split, data_root)
            pixels, labels = photos.images[:count], photos.labels[:count]
            drawn = torch.randint(self.pool_size, (len(labels),), generator=generator)
            photo_split = ImageSplit(pixels.to(device), labels.to(device), self.image_size())
            splits[split] = DigitOverlaySplit(photo_split, pool, drawn.to(device), pool_index.to(device))
        return Dataset(
            train=splits["train"],
            test=splits["test"],
            num_classes={"digit": 10, "image_class": PHOTO_CLASSES[self.image_source]},
            channels=3,
            image_size=self.image_size(),
        )


class DigitOverlaySplit(Split):
    """Natural images (``photos``), each with pool digit ``drawn`` [N] tiled over it by pixel-wise max.

    ``pool_source_index`` [P]: where the pool digits sit in the digit source's train split.
    """

    def __init__(
        self, photos: ImageSplit, pool: DigitImages, drawn: torch.Tensor, pool_source_index: torch.Tensor
    ) -> None:
        self.photos = photos
        self.pool = pool
        self.drawn = drawn
        self.pool_source_index = pool_source_index
        self.labels = {"digit": pool.labels[drawn], "image_class": photos.labels["class"]}

    def images(self, index: torch.Tensor) -> torch.Tensor:
        photos = self.photos.images(index)
        return overlay(photos, tile_digits(self.pool.images[self.drawn[index]], photos.shape[-1]))


def tile_digits(digits: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 digits [B, h, w] → float [B, size, size]: each digit resized to ⌊size/3⌋ and repeated
    on a centred 3×3 grid of tiles, zero (no digit) in the leftover border."""
    tile = size // 3
    block = resize_digits(digits, tile).repeat(1, 3, 3)
    before = (size - 3 * tile) // 2
    after = size - 3 * tile - before
    return F.pad(block, (before, after, before, after))


def overlay(images: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
    """Pixel-wise max of ``images`` [B, C, H, W] and grey ``digits`` [B, H, W], the digit in every channel."""
    return torch.maximum(images, digits.unsqueeze(1))


def load_photos(source: PhotoSource, split: SplitName, data_root: Path | str) -> LabelledImages:
    """One split of natural images, uint8 [N, 3, H, W] on the CPU, with their classes."""
    if source == "cifar10":
        return load_images("cifar10", split, data_root)
    return sample_photo_patches(split)


def sample_photo_patches(split: SplitName) -> LabelledImages:
    """scikit-learn's two bundled photos as 32×32 patches; class = which photo (see the module docstring)."""
    from sklearn.datasets import load_sample_images

    patches, labels = [], []
    for label, photo in enumerate(load_sample_images().images):
        rows, cols = photo.shape[0] // PHOTO_SIDE, photo.shape[1] // PHOTO_SIDE
        cut = photo[: rows * PHOTO_SIDE, : cols * PHOTO_SIDE].reshape(rows, PHOTO_SIDE, cols, PHOTO_SIDE, 3)
        patches.append(cut.transpose(0, 2, 4, 1, 3).reshape(-1, 3, PHOTO_SIDE, PHOTO_SIDE))
        labels.append(np.full(rows * cols, label))
    images, classes = np.concatenate(patches), np.concatenate(labels)
    test = np.arange(len(classes)) % SAMPLE_TEST_EVERY == SAMPLE_TEST_EVERY - 1
    keep = test if split == "test" else ~test
    order = torch.randperm(int(keep.sum()), generator=torch.Generator().manual_seed(SAMPLE_ORDER_SEED))
    return LabelledImages(
        torch.from_numpy(np.ascontiguousarray(images[keep]))[order], torch.from_numpy(classes[keep]).long()[order]
    )
