"""The ResNet-50 backbone: h of size 2048 for any number of input channels, both stems."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_BASE
from pydantic import ValidationError

from workers import TrialConfig
from workers.backbones import BACKBONES


@pytest.mark.parametrize(("small_stem", "side", "map_side"), [(True, 8, 1), (False, 32, 1), (True, 16, 2)])
def test_resnet50_shapes(small_stem, side, map_side):
    torch.manual_seed(0)
    config = BACKBONES["resnet50"](name="resnet50", small_stem=small_stem)
    encoder = config.build(in_channels=5, image_size=side).eval()
    x = torch.rand(2, 5, side, side)
    assert encoder.dim == 2048
    assert encoder.trunk[0].in_channels == 5
    assert encoder.feature_map(x).shape == (2, 2048, map_side, map_side)
    assert encoder(x).shape == (2, 2048)
    assert config.min_input_size() == (8 if small_stem else 32)


def test_resnet50_min_input_size_is_checked():
    data = {**TINY_BASE["data"], "canvas": 16}
    model = {"backbone": {"name": "resnet50", "small_stem": False}}
    with pytest.raises(ValidationError, match="resnet50 needs images of at least 32 pixels; the data are 16"):
        TrialConfig.model_validate({**TINY_BASE, "data": data, "model": model})
    trial = TrialConfig.model_validate({**TINY_BASE, "data": data, "model": {"backbone": "resnet50"}})
    assert trial.model.backbone.small_stem  # the 3×3 stride-1 stem, as resnet18's default
