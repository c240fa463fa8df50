"""The ResNets behind ``resnet18`` and ``resnet50`` (workers/backbones.py): torchvision's, trunk only.

A module of its own so that torchvision (1-2 s to import: its models pull in ``torch._dynamo``)
is imported only by a process that builds a ResNet, not by every driver and worker that
validates a config or trains a small CNN.
"""

from __future__ import annotations

from typing import Literal

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from workers.backbones import Backbone


class ResNet(Backbone):
    """A torchvision ResNet without its classifier, for any number of input channels.

    ``width`` k multiplies the channels of every layer, stem included, as SimCLR's
    ``width_multiplier`` does: stem 64k, stages 64k, 128k, 256k, 512k (× 4 after a bottleneck),
    so h has 512k (basic blocks) or 2048k (bottlenecks) features. k = 1 is torchvision's network,
    built by the same calls in the same order (the same random initial weights for a seed).
    """

    def __init__(
        self,
        architecture: Literal["resnet18", "resnet50"],
        in_channels: int,
        small_stem: bool,
        width: int = 1,
    ):
        super().__init__()
        net = getattr(torchvision.models, architecture)(weights=None) if width == 1 else _widened(architecture, width)
        stem = 64 * width
        if small_stem:
            net.conv1 = nn.Conv2d(in_channels, stem, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3 or width != 1:
            net.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.trunk = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
        )
        self.dim = net.fc.in_features * width  # 512k (basic blocks) or 2048k (bottlenecks)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)


class _WideResNet(torchvision.models.ResNet):
    """torchvision's ResNet with every stage's planes × ``width`` and the stem's batch norm at 64·width.

    Only the classifier stays narrow (the trunk drops it). The stem convolution is replaced by
    ``ResNet`` above, whose input channels vary anyway.
    """

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], width: int) -> None:
        self.width = width  # read by _make_layer during the parent's constructor
        super().__init__(block, layers)
        self.bn1 = nn.BatchNorm2d(64 * width)

    def _make_layer(
        self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int = 1, dilate: bool = False
    ) -> nn.Sequential:
        if planes == 64:  # the first stage reads the (widened) stem's channels
            self.inplanes = 64 * self.width
        return super()._make_layer(block, planes * self.width, blocks, stride, dilate)


# The block and the blocks per stage of each architecture (He et al. 2016, Table 1).
_STAGES: dict[str, tuple[type[BasicBlock | Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


def _widened(architecture: Literal["resnet18", "resnet50"], width: int) -> torchvision.models.ResNet:
    """The network ``architecture`` builds (resnet18 or resnet50), every layer ``width`` times as wide."""
    block, layers = _STAGES[architecture]
    return _WideResNet(block, layers, width)
