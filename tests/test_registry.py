"""Registries accept only named subclasses of their kind's contract, once each."""

from __future__ import annotations

from typing import Literal

import pytest

from workers.losses import LOSSES, LossConfig, NTXent
from workers.registry import Registry, Section


class Other(LossConfig):
    name: Literal["other"]

    def build(self):
        return NTXent()


def test_registry_rejects_what_breaks_the_contract():
    losses = Registry("loss", LossConfig)
    losses.register(Other)
    with pytest.raises(ValueError, match="registered twice"):
        losses.register(Other)

    class NotALoss(Section):
        name: Literal["x"]

    with pytest.raises(TypeError, match="must subclass LossConfig"):
        losses.register(NotALoss)

    class Unnamed(LossConfig):
        name: str

        def build(self):
            return NTXent()

    with pytest.raises(TypeError, match="one-value Literal"):
        losses.register(Unnamed)


def test_union_accepts_the_bare_name():
    from pydantic import TypeAdapter

    adapter = TypeAdapter(LOSSES.union())
    assert adapter.validate_python("nt_xent").temperature == 0.5
    assert adapter.validate_python({"name": "nt_xent", "temperature": 0.1}).temperature == 0.1


def test_conv3_is_the_notebooks_encoder():
    import torch

    from workers.backbones import BACKBONES

    # 28 → 13 → 6 → 2 with valid 3×3 stride-2 convolutions: 2·2·64 = 256 inputs to the dense layer.
    encoder = BACKBONES["conv3"](name="conv3").build(in_channels=11, image_size=28)
    assert encoder.convolutions[0].in_channels == 11
    assert encoder.dense[1].in_features == 256 and encoder.dim == 128
    assert encoder(torch.zeros(4, 11, 28, 28)).shape == (4, 128)
    assert encoder.feature_map(torch.zeros(4, 11, 28, 28)).shape == (4, 64, 2, 2)
    assert BACKBONES["conv3"](name="conv3", width=2).build(1, 56).dim == 256
