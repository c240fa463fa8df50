"""What every dataset hands the trainer: two splits of on-device tensors and their targets."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch

from workers.registry import Registry, Section


class Split(ABC):
    """One split. Images are made on the device from uint8 tensors when a batch asks for them.

    ``labels`` maps each evaluation target (``first_digit``, ...) to int64 labels [N], or, for a
    regression target (``Dataset.regression``), to float values [N, dim].
    """

    labels: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(next(iter(self.labels.values())))

    @abstractmethod
    def images(self, index: torch.Tensor) -> torch.Tensor:
        """float32 [B, C, H, W] in [0, 1] for the examples at ``index`` (int64 [B])."""

    def second_view(self, index: torch.Tensor) -> torch.Tensor | None:
        """The second view's input, for datasets whose two views are different inputs rather than
        two augmentations of ``images`` (Colorful-Moving-MNIST: a sequence and a frame); None here.

        Shaped as ``images`` (one encoder reads both); the trainer hands it to the method in the
        batch as ``labels["second_view"]``, and evaluation reads ``images`` alone.
        """
        return None

    def probed_for(self, target: str) -> Split:
        """The split a linear probe of ``target`` reads: this one, unless the dataset's
        evaluation protocol shows the probe other images (e.g. only the target's digit).

        Targets whose probes get the same object share one feature extraction.
        """
        return self


@dataclass(frozen=True)
class Dataset:
    """``fixed_channels``: how many of the last channels views must leave untouched (shared bits).

    ``num_classes`` covers the classification targets; ``regression`` names the regression targets
    (e.g. a digit's position) with their dimension, fitted by the linear probe and ``supervised`` only.
    """

    train: Split
    test: Split
    num_classes: dict[str, int]  # per target
    channels: int
    image_size: int
    fixed_channels: int = 0
    regression: dict[str, int] = field(default_factory=dict)  # per regression target, its dimension


class DatasetConfig(Section):
    """What a dataset config provides; register subclasses with ``@DATASETS.register``."""

    targets: ClassVar[tuple[str, ...]]  # the labels a linear probe can be fitted to
    regression_targets: ClassVar[tuple[str, ...]] = ()  # those of ``targets`` that are regressed, not classified

    @abstractmethod
    def sources(self) -> list[str]:
        """Downloadable sources read (for ``workers.data.sources.prepare_source``)."""

    @abstractmethod
    def image_size(self) -> int:
        """Side of the images the network sees."""

    @abstractmethod
    def train_count(self) -> int:
        """Number of training examples (checked against the batch size before anything runs)."""

    @abstractmethod
    def build(self, data_root: Path, device: torch.device) -> Dataset:
        """The splits, as tensors on ``device``."""


DATASETS: Registry[DatasetConfig] = Registry("dataset", DatasetConfig)
