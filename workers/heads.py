"""Projection head g(·): maps the representation h to the space z where the loss is computed.

SimCLR §4.2: a non-linear head (Linear → BN → ReLU → ... → Linear) improves h, and the
Intriguing Properties paper (Table 2) sweeps its depth. ``layers=0`` is no head (z = h),
``1`` a linear head, ``k ≥ 2`` an MLP with k linear layers. Hidden layers have no bias (batch
norm follows them); ``bias`` says whether the last one has one (the notebooks' head does not:
dense-BN-ReLU(256) → dense(64, no bias) is ``{layers: 2, hidden: 256, dim: 64, bias: false}``).
"""

from __future__ import annotations

from itertools import pairwise

from pydantic import Field
from torch import nn

from workers.registry import Section


class HeadConfig(Section):
    layers: int = Field(2, ge=0, description="linear layers: 0 none, 1 linear, 2+ MLP")
    dim: int = Field(128, ge=1, description="output size of z")
    hidden: int | None = Field(None, ge=1, description="hidden width; default: size of h")
    bias: bool = Field(True, description="a bias on the last linear layer")

    def build(self, in_dim: int) -> nn.Module:
        if self.layers == 0:
            return nn.Identity()
        hidden = self.hidden or in_dim
        widths = [in_dim] + [hidden] * (self.layers - 1) + [self.dim]
        modules: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(pairwise(widths)):
            last = index == self.layers - 1
            modules.append(nn.Linear(width_in, width_out, bias=last and self.bias))
            if not last:
                modules += [nn.BatchNorm1d(width_out), nn.ReLU(inplace=True)]
        return nn.Sequential(*modules)
