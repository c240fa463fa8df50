"""Colorful-Moving-MNIST: two views that share a chosen set of factors (Tian et al. 2020, Fig. 6, Table 4).

A video is one digit moving over one natural image. Three factors make a frame: the *digit*
(which source image), its *position* and the *background* (which natural image). The first
view is a sequence of frames v₁ = x_{1:k} (``frames`` = k); the second view v₂ is one frame
that shares with the next frame x_t (t = k + 1) exactly the factors in ``shared`` and differs
from it in the others, so I(v₁; v₂) holds only what ``shared`` names ("the matched second view
v₂⁺ shares some factor with x_t that v₁ can predict", Fig. 6). Sharing all three makes v₂ the
next frame itself. Table 4 trains on each non-empty subset and reads three tasks off the frozen
encoder: the digit's class, the background's class, and the digit's position (localisation).

Frames (``canvas``×``canvas``, colour): the background resized to the canvas, the digit
(resized to ``digit_size``) drawn over it in white by screen blending,
x = b + d − b·d = 1 − (1 − b)(1 − d), b the background and d the digit's grey level, both in
[0, 1] (black digit pixels leave the photo as it is, white ones make it white).

Motion (Srivastava et al.'s Moving MNIST): the digit's top-left corner starts uniform over the
canvas, moves ``speed`` pixels a frame in a uniform direction, and bounces off the borders:
frame j (0-based) holds it at fold(p₀ + j·v), fold(u) = L − |(u mod 2L) − L| per axis, with
L = canvas − digit_size, rounded to whole rendered pixels.

The second view. A shared factor is x_t's own: the same source digit, the digit's corner in
x_t, the same background image. A factor not shared is drawn uniformly from the *other*
values (another source digit, another background image, another corner of the canvas), so it
always differs and tells nothing else about x_t. Every alternative is drawn whatever ``shared``
is, so the trials of a Table 4 sweep see the same videos, train and test.

Targets (what the probes read is v₁, the sequence, and they are x_t's factors, the ones the
views share): ``digit`` (the digit's class), ``background`` (the background's class) and
``position``, a regression target (``Dataset.regression``): the centre of the digit's square
in x_t, (x, y) = (column, row) in the paper's pixels, float [N, 2]. Its probe's error is the
mean Euclidean distance in pixels (``linear_error/position``), Table 4's "digit loc. error".

How an encoder reads the sequence: its k frames stacked as channels (3k channels, frame by
frame, RGB each), as a 2-D network reads a clip whose frames are channels. ``images(index)`` is
v₁ [B, 3k, H, W], what every probe and measurement reads; ``second_view(index)`` is v₂ shaped
alike, its one frame repeated k times (a still video), so that one encoder reads both views
(the trainer hands it to the method as ``labels["second_view"]``, ``workers.data.base.Split``).

Sources. Backgrounds: ``stl10`` (the paper's; torchvision's STL-10 labelled splits, 5,000 train
and 8,000 test images, 96×96), ``cifar10`` (small scale), ``sample_photos`` (smoke and tests:
scikit-learn's two bundled photos cut into 32×32 patches, class = which photo, as in
``workers.data.digit_overlay``). Digits: ``mnist`` or scikit-learn's 8×8 ``digits`` (smoke).

Chosen here, not in the paper at hand (its text gives no sizes): a 64-pixel canvas and 28-pixel
digits, as in Moving MNIST (Table 4's localisation errors near 14-16 px are what predicting the
mean position gives on that canvas: the mean distance to the centre of a uniform square of
side 36 is 0.383 × 36 ≈ 13.8); k = 3 frames; 3 pixels a frame; one video per source digit
(each digit once); the probes on v₁ and x_t's factors. Sizes are in the paper's pixels and
rendered at ``render_scale``; positions are reported in the paper's pixels. Which digit,
background and path each video has is fixed by ``seed``; frames are rendered on the device
per batch, never stored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from workers.data.base import DATASETS, Dataset, Split
from workers.data.canvas import DigitCanvasConfig
from workers.data.digit_overlay import sample_photo_patches
from workers.data.digit_pair import paste, resize_digits
from workers.data.sources import DigitImages, LabelledImages, SplitName, load_digit_images, load_images

Factor = Literal["digit", "position", "background"]
FACTORS: tuple[Factor, ...] = ("digit", "position", "background")
BackgroundSource = Literal["stl10", "cifar10", "sample_photos"]
BACKGROUND_CLASSES = {"stl10": 10, "cifar10": 10, "sample_photos": 2}


@DATASETS.register
class ColorfulMovingMnistConfig(DigitCanvasConfig):
    name: Literal["colorful_moving_mnist"]
    background: BackgroundSource = Field("stl10", description="the natural images behind the digit")
    canvas: int = Field(64, ge=2, description="frame side, in the paper's pixels")
    digit_size: int = Field(28, ge=1, description="side of the digit, in the paper's pixels")
    frames: int = Field(3, ge=1, description="k: frames of the first view, x_1..x_k")
    speed: float = Field(3.0, ge=0, description="paper pixels the digit moves per frame")
    shared: tuple[Factor, ...] = Field(
        FACTORS, min_length=1, description="factors of the next frame x_t that the second view keeps"
    )

    targets: ClassVar[tuple[str, ...]] = ("digit", "background", "position")
    regression_targets: ClassVar[tuple[str, ...]] = ("position",)

    @field_validator("shared")
    @classmethod
    def _canonical(cls, shared: tuple[Factor, ...]) -> tuple[Factor, ...]:
        """Each factor once, in a fixed order: ``[background, digit]`` is ``[digit, background]``."""
        repeated = sorted({factor for factor in shared if shared.count(factor) > 1})
        if repeated:
            raise ValueError(f"names {', '.join(repeated)} more than once")
        return tuple(factor for factor in FACTORS if factor in shared)

    @model_validator(mode="after")
    def _digit_moves(self) -> ColorfulMovingMnistConfig:
        if self.pixels(self.canvas) - self.pixels(self.digit_size) < 1:
            raise ValueError(
                f"digit_size={self.digit_size} leaves the digit no room to move on canvas={self.canvas} "
                f"(at render_scale={self.render_scale})"
            )
        return self

    def sources(self) -> list[str]:
        return [source for source in (self.source, self.background) if source not in ("digits", "sample_photos")]

    def build(self, data_root: Path, device: torch.device) -> Dataset:
        generator = torch.Generator().manual_seed(self.seed)
        splits = {}
        for split, count in (("train", self.train_examples), ("test", self.test_examples)):
            digits = load_digit_images(self.source, split, data_root).to(device)
            photos = load_backgrounds(self.background, split, data_root)
            splits[split] = MovingDigitSplit(
                digits,
                LabelledImages(photos.images.to(device), photos.labels.to(device)),
                count or len(digits.labels),
                canvas=self.pixels(self.canvas),
                digit_size=self.pixels(self.digit_size),
                frames=self.frames,
                speed=self.speed * self.render_scale,
                shared=self.shared,
                generator=generator,
                scale=self.render_scale,
            )
        return Dataset(
            train=splits["train"],
            test=splits["test"],
            num_classes={"digit": 10, "background": BACKGROUND_CLASSES[self.background]},
            channels=3 * self.frames,
            image_size=self.image_size(),
            regression={"position": 2},
        )


def load_backgrounds(source: BackgroundSource, split: SplitName, data_root: Path | str) -> LabelledImages:
    """One split of background images, uint8 [N, 3, h, w] on the CPU, with their classes."""
    if source == "sample_photos":
        return sample_photo_patches(split)
    return load_images(source, split, data_root)


def fold(path: torch.Tensor, travel: float) -> torch.Tensor:
    """Positions bounced into [0, travel]: travel − |(u mod 2·travel) − travel| (a reflection at each border)."""
    return travel - ((path % (2 * travel)) - travel).abs()


def different(value: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Per entry, a value of 0..count−1 drawn uniformly from all but ``value`` (needs count ≥ 2)."""
    if count < 2:
        raise ValueError(f"no other value to draw among {count}")
    shift = torch.randint(1, count, value.shape, generator=generator)
    return (value + shift.to(value.device)) % count


class MovingDigitSplit(Split):
    """``count`` videos and their second views: which digit, background and path, drawn once.

    ``digit``, ``background`` [N] index the source digits and background images;
    ``corners`` [N, k + 1, 2]: the digit's top-left (row, col) in rendered pixels in each
    frame, the last one x_t's; ``second_digit``, ``second_background`` [N] and
    ``second_corner`` [N, 2]: the second view's factors.
    """

    def __init__(
        self,
        digits: DigitImages,
        backgrounds: LabelledImages,
        count: int,
        *,
        canvas: int,
        digit_size: int,
        frames: int,
        speed: float,
        shared: tuple[str, ...],
        generator: torch.Generator,
        scale: float = 1.0,
    ) -> None:
        self.digits, self.backgrounds = digits, backgrounds
        self.canvas, self.digit_size, self.frames = canvas, digit_size, frames
        self.shared = shared
        travel = canvas - digit_size
        available, photos = len(digits.labels), len(backgrounds.labels)
        digit = torch.randperm(available, generator=generator).repeat(count // available + 1)[:count]
        background = torch.randint(photos, (count,), generator=generator)
        start = torch.rand(count, 2, generator=generator, dtype=torch.float64) * travel
        angle = torch.rand(count, generator=generator, dtype=torch.float64) * (2 * math.pi)
        velocity = speed * torch.stack([angle.sin(), angle.cos()], dim=1)  # (row, col) per frame
        steps = torch.arange(frames + 1, dtype=torch.float64)
        corners = fold(start[:, None] + steps[None, :, None] * velocity[:, None], travel).round().long()
        # Every alternative is drawn, shared or not: the videos do not depend on ``shared``.
        other_digit = different(digit, available, generator)
        other_background = different(background, photos, generator)
        last = corners[:, frames]
        other_place = different(last[:, 0] * (travel + 1) + last[:, 1], (travel + 1) ** 2, generator)
        other_corner = torch.stack([other_place // (travel + 1), other_place % (travel + 1)], dim=1)
        device = digits.images.device
        self.digit, self.background, self.corners = digit.to(device), background.to(device), corners.to(device)
        self.second_digit = (digit if "digit" in shared else other_digit).to(device)
        self.second_background = (background if "background" in shared else other_background).to(device)
        self.second_corner = (last if "position" in shared else other_corner).to(device)
        centre = (self.corners[:, frames].double() + digit_size / 2) / scale  # (row, col), paper pixels
        self.labels = {
            "digit": digits.labels[self.digit],
            "background": backgrounds.labels[self.background],
            "position": centre.flip(1).float(),  # (x, y)
        }

    def render(self, digit: torch.Tensor, background: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
        """Frames float [B, T, 3, H, W] in [0, 1]: source digit ``digit`` [B] over background image
        ``background`` [B] with its corner at ``corners`` [B, T, 2] (row, col) in frame t."""
        photos = self.backgrounds.images[background].float().div_(255.0)
        if photos.shape[-1] != self.canvas or photos.shape[-2] != self.canvas:
            photos = F.interpolate(photos, size=(self.canvas, self.canvas), mode="bilinear", antialias=True)
            photos = photos.clamp_(0.0, 1.0)
        glyphs = resize_digits(self.digits.images[digit], self.digit_size)
        batch, steps = corners.shape[:2]
        layers = torch.zeros(batch * steps, self.canvas, self.canvas, device=photos.device)
        paste(layers, glyphs.repeat_interleave(steps, dim=0), corners.reshape(-1, 2))
        d = layers.view(batch, steps, 1, self.canvas, self.canvas)
        b = photos[:, None]
        return b + d - b * d

    def images(self, index: torch.Tensor) -> torch.Tensor:
        """v₁: frames x_1..x_k of each video, stacked as channels: [B, 3k, H, W]."""
        frames = self.render(self.digit[index], self.background[index], self.corners[index, : self.frames])
        return frames.flatten(1, 2)

    def second_frame(self, index: torch.Tensor) -> torch.Tensor:
        """The frame of v₂, which shares ``shared`` with x_t: [B, 3, H, W]."""
        corner = self.second_corner[index, None]
        return self.render(self.second_digit[index], self.second_background[index], corner)[:, 0]

    def second_view(self, index: torch.Tensor) -> torch.Tensor:
        """v₂ as the encoder reads it: its frame repeated k times, a still video [B, 3k, H, W]."""
        return self.second_frame(index).repeat(1, self.frames, 1, 1)
