"""Backbones: the encoder f(·) whose pooled output h is the representation that gets evaluated.

Every backbone exposes ``feature_map(x)`` (before pooling: the local features that the
MultiDigit experiments cluster) and ``forward(x)`` (global-average-pooled h, of size ``dim``).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from workers.registry import Registry, Section


class Backbone(nn.Module):
    dim: int

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))


class BackboneConfig(Section):
    """What a backbone config provides; register subclasses with ``@BACKBONES.register``."""

    @abstractmethod
    def build(self, in_channels: int, image_size: int) -> Backbone:
        """A fresh, randomly initialised encoder for ``in_channels`` × ``image_size``² images."""

    @abstractmethod
    def min_input_size(self) -> int:
        """The smallest image side the encoder accepts."""


BACKBONES: Registry[BackboneConfig] = Registry("backbone", BackboneConfig)


@BACKBONES.register
class SmallCNNConfig(BackboneConfig):
    """A plain CNN: ``stages`` × (3×3 conv, BN, ReLU, 2×2 max-pool), channels doubling from ``width``."""

    name: Literal["small_cnn"]
    width: int = Field(32, ge=1)
    stages: int = Field(3, ge=1)

    def build(self, in_channels: int, image_size: int) -> Backbone:
        return SmallCNN(in_channels, self.width, self.stages)

    def min_input_size(self) -> int:
        return 2**self.stages  # one 2×2 max-pool a stage


class SmallCNN(Backbone):
    def __init__(self, in_channels: int, width: int, stages: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(stages):
            out = width * 2**stage
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.layers = nn.Sequential(*layers)
        self.dim = channels

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@BACKBONES.register
class ResNet18Config(BackboneConfig):
    """torchvision's ResNet-18. ``small_stem`` (SimCLR's CIFAR variant): 3×3 stride-1 first conv, no max-pool."""

    name: Literal["resnet18"]
    small_stem: bool = True
    width: int = Field(1, ge=1, description="width multiplier of every layer's channels (SimCLR's 2×, 4×)")

    def build(self, in_channels: int, image_size: int) -> Backbone:
        from workers.resnet import ResNet  # torchvision (1-2 s to import) only where a ResNet is built

        return ResNet("resnet18", in_channels, self.small_stem, self.width)

    def min_input_size(self) -> int:
        return 8 if self.small_stem else 32  # total stride of the trunk


@BACKBONES.register
class ResNet50Config(BackboneConfig):
    """torchvision's ResNet-50 (He et al. 2016; SimCLR's and MoCo's encoder), h of size 2048 × width.

    Bottleneck blocks [3, 4, 6, 3], randomly initialised (``weights=None``). ``small_stem`` as
    for ``resnet18``. ``width`` k: SimCLR's ResNet-50 (k×), every layer's channels × k (h of size
    2048·k); torchvision's ``wide_resnet50_2`` is another network (it widens only the
    bottlenecks' inner 3×3).
    """

    name: Literal["resnet50"]
    small_stem: bool = True
    width: int = Field(1, ge=1, description="width multiplier of every layer's channels (SimCLR's 2×, 4×)")

    def build(self, in_channels: int, image_size: int) -> Backbone:
        from workers.resnet import ResNet

        return ResNet("resnet50", in_channels, self.small_stem, self.width)

    def min_input_size(self) -> int:
        return 8 if self.small_stem else 32  # total stride of the trunk


@BACKBONES.register
class Conv3Config(BackboneConfig):
    """The encoder of the Intriguing Properties notebooks (``randbits_mnist.ipynb``, ``ConvN``).

    Three 3×3 stride-2 convolutions without padding (Keras ``valid``), each conv → BN → ReLU,
    of 32, 64 and 64 filters (× ``width``), then flatten → dense → BN → ReLU to ``dim`` (128 ×
    ``width``): h. On 28×28 MNIST the map shrinks 28 → 13 → 6 → 2, so h sees 2×2×64 values.
    """

    name: Literal["conv3"]
    width: int = Field(1, ge=1, description="width multiplier of every layer")

    def build(self, in_channels: int, image_size: int) -> Backbone:
        return Conv3(in_channels, image_size, self.width)

    def min_input_size(self) -> int:
        return 15  # three valid stride-2 3×3 convolutions leave a 1×1 map


class Conv3(Backbone):
    def __init__(self, in_channels: int, image_size: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, side = in_channels, image_size
        for filters in (32 * width, 64 * width, 64 * width):
            layers += [nn.Conv2d(channels, filters, 3, stride=2, bias=False), nn.BatchNorm2d(filters), nn.ReLU(True)]
            channels, side = filters, (side - 3) // 2 + 1
        self.convolutions = nn.Sequential(*layers)
        self.dim = 128 * width
        self.dense = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * side * side, self.dim, bias=False),
            nn.BatchNorm1d(self.dim),
            nn.ReLU(True),
        )

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.convolutions(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.convolutions(x))
