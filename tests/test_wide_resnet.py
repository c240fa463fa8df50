"""Width multipliers of the ResNet backbones (SimCLR's ResNet-50 (2×, 4×)): counts from the architecture's formula."""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import TINY_BASE
from torch import nn

from workers import TrialConfig
from workers.backbones import BACKBONES

STAGE_PLANES = (64, 128, 256, 512)


def bottleneck_trunk_parameters(k: int, in_channels: int = 3, stem_kernel: int = 7) -> int:
    """ResNet-50 without its classifier, every layer k× wide, counted layer by layer.

    Stem: conv c·64k·s² and a batch norm (2 per channel). A bottleneck of planes p reading c
    channels: 1×1 c→p, 3×3 p→p, 1×1 p→4p, each followed by a batch norm; the first block of a
    stage adds a 1×1 c→4p projection and its batch norm.
    """
    total = in_channels * 64 * k * stem_kernel**2 + 2 * 64 * k
    channels = 64 * k
    for planes, blocks in zip(STAGE_PLANES, (3, 4, 6, 3), strict=True):
        p = planes * k
        for block in range(blocks):
            total += channels * p + 2 * p + 9 * p * p + 2 * p + p * 4 * p + 2 * 4 * p
            if block == 0:
                total += channels * 4 * p + 2 * 4 * p
            channels = 4 * p
    return total


def basic_trunk_parameters(k: int, in_channels: int = 3, stem_kernel: int = 7) -> int:
    """ResNet-18 without its classifier, every layer k× wide: two 3×3 convolutions a block, each with a
    batch norm; a 1×1 projection (and batch norm) where a stage changes the channels."""
    total = in_channels * 64 * k * stem_kernel**2 + 2 * 64 * k
    channels = 64 * k
    for planes in STAGE_PLANES:
        p = planes * k
        for block in range(2):
            total += 9 * channels * p + 2 * p + 9 * p * p + 2 * p
            if block == 0 and channels != p:
                total += channels * p + 2 * p
            channels = p
    return total


def count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def test_the_formula_gives_torchvisions_published_counts_at_width_1():
    """torchvision's model cards: resnet50 25,557,032 and resnet18 11,689,512 parameters with the
    1000-class classifier (2048·1000 + 1000 and 512·1000 + 1000 of them)."""
    assert bottleneck_trunk_parameters(1) == 25_557_032 - (2048 * 1000 + 1000)
    assert basic_trunk_parameters(1) == 11_689_512 - (512 * 1000 + 1000)


@pytest.mark.parametrize("width", [1, 2, 4])
@pytest.mark.parametrize("small_stem", [False, True])
@pytest.mark.parametrize(("name", "formula"), [("resnet50", bottleneck_trunk_parameters),
                                               ("resnet18", basic_trunk_parameters)])
def test_parameter_count_is_the_formulas(name, formula, small_stem, width):
    config = BACKBONES[name](name=name, small_stem=small_stem, width=width)
    with torch.device("meta"):  # no memory, no initialisation work: ResNet-50 (4×) has 375M parameters
        encoder = config.build(in_channels=3, image_size=32)
    assert count(encoder) == formula(width, stem_kernel=3 if small_stem else 7)
    assert encoder.dim == width * (2048 if name == "resnet50" else 512)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_every_layer_is_k_times_as_wide(name):
    """Layer by layer against width 1: each convolution's channels and each batch norm's features × k."""
    with torch.device("meta"):
        narrow = BACKBONES[name](name=name, small_stem=False).build(in_channels=5, image_size=32)
        wide = BACKBONES[name](name=name, small_stem=False, width=4).build(in_channels=5, image_size=32)
    pairs = list(zip(narrow.modules(), wide.modules(), strict=True))
    convolutions = [(a, b) for a, b in pairs if isinstance(a, nn.Conv2d)]
    assert len(convolutions) == (53 if name == "resnet50" else 20)
    for index, (a, b) in enumerate(convolutions):
        assert type(a) is type(b) and a.kernel_size == b.kernel_size and a.stride == b.stride
        assert b.in_channels == (5 if index == 0 else 4 * a.in_channels)  # the stem reads the images
        assert b.out_channels == 4 * a.out_channels
    for a, b in pairs:
        if isinstance(a, nn.BatchNorm2d):
            assert b.num_features == 4 * a.num_features


def test_width_1_is_todays_network_draw_for_draw():
    """Same calls, same order: the encoder's initial weights are torchvision's, then the small stem's conv."""
    torch.manual_seed(3)
    ours = BACKBONES["resnet18"](name="resnet18").build(in_channels=3, image_size=32)
    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None)
    reference.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    expected = nn.Sequential(reference.conv1, reference.bn1, reference.relu, nn.Identity(), reference.layer1,
                             reference.layer2, reference.layer3, reference.layer4).state_dict()
    state = ours.trunk.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[key], expected[key]) for key in state)

    torch.manual_seed(3)
    ours50 = BACKBONES["resnet50"](name="resnet50", small_stem=False).build(in_channels=3, image_size=32)
    torch.manual_seed(3)
    reference50 = torchvision.models.resnet50(weights=None)
    assert count(ours50) == count(reference50) - count(reference50.fc)
    assert all(torch.equal(a, b) for a, b in zip(ours50.trunk[0].parameters(), reference50.conv1.parameters(),
                                                  strict=True))
    assert torch.equal(ours50.trunk[7][2].conv3.weight, reference50.layer4[2].conv3.weight)


def test_a_wide_encoder_runs_and_the_default_keeps_the_identity():
    torch.manual_seed(0)
    encoder = BACKBONES["resnet18"](name="resnet18", width=2).build(in_channels=3, image_size=8).eval()
    x = torch.rand(2, 3, 8, 8)
    assert encoder.feature_map(x).shape == (2, 1024, 1, 1)
    assert encoder(x).shape == (2, 1024)
    data = {**TINY_BASE["data"], "canvas": 16}
    plain = TrialConfig.model_validate({**TINY_BASE, "data": data, "model": {"backbone": "resnet50"}})
    explicit = TrialConfig.model_validate(
        {**TINY_BASE, "data": data, "model": {"backbone": {"name": "resnet50", "width": 1}}}
    )
    assert explicit.identity() == plain.identity()
    assert "width" not in plain.identity()["model"]["backbone"]
