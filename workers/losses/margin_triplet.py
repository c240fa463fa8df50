"""The margin triplet loss SimCLR compares with NT-Xent (Schroff et al. 2015's, on cosine similarity)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from workers.losses.base import LOSSES, LossConfig
from workers.losses.semi_hard import cross_view_similarities, semi_hard_negative


class MarginTriplet(nn.Module):
    r"""Margin triplet loss (Chen et al. 2020, Table 2; Schroff et al. 2015).

    Table 2 gives the objective to maximise for one anchor u, positive :math:`v^+` and negative
    :math:`v^-`, all l2-normalised: :math:`-\max(u^\top v^- - u^\top v^+ + m, 0)`. The loss is
    its negation, averaged over every (anchor, negative) pair of the 2N anchors (both views,
    negatives from the other view only: see ``workers.losses.semi_hard``), with
    :math:`s^+_a = u_a^\top v^+_a` and :math:`s^-_{ak}` for the anchor's N−1 negatives:

    .. math::
        \mathcal{L} = \frac{1}{2N}\sum_{a=1}^{2N}\frac{1}{N-1}\sum_{k=1}^{N-1}
            \max(s^-_{ak} - s^+_a + m,\ 0)

    A triple contributes (gradient :math:`v^+ - v^-` on u) only while
    :math:`s^+_a - s^-_{ak} < m`. ``semi_hard=True`` keeps one negative per anchor, its
    semi-hard one :math:`s^-_{a,\mathrm{sh}}` (``workers.losses.semi_hard``):
    :math:`\frac{1}{2N}\sum_a\max(s^-_{a,\mathrm{sh}} - s^+_a + m, 0)`, whose term is non-zero
    exactly when that negative lies within the margin, the paper's "within the loss margin and
    closest in distance, but farther than positive examples" (or, for an anchor with no negative
    farther than its positive, the least similar of its negatives, whose term is at least m).

    SimCLR tunes m over {0, 0.4, 0.8, 1.6} (Appendix B.10); ImageNet top-1 50.9 without and 57.5
    with semi-hard mining, against NT-Xent's 63.9 (Table 4).

    Example (a study file's ``loss:``, then direct use)::

        loss: {name: margin_triplet, margin: 0.8, semi_hard: true}

        loss = MarginTriplet(margin=0.8, semi_hard=True)(z1, z2)   # z1, z2: [N, d], N ≥ 2
    """

    def __init__(self, margin: float = 0.4, semi_hard: bool = False) -> None:
        super().__init__()
        if not (isinstance(margin, int | float) and math.isfinite(margin) and margin >= 0):
            raise ValueError(f"margin must be a finite number ≥ 0, got {margin!r}")
        if not isinstance(semi_hard, bool):
            raise ValueError(f"semi_hard must be true or false, got {semi_hard!r}")
        self.margin = float(margin)
        self.semi_hard = semi_hard

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        # ``generator``: part of every loss's call (``workers.losses.base``); the margin loss draws nothing.
        positive, negatives = cross_view_similarities(z1, z2)
        if self.semi_hard:
            negatives = semi_hard_negative(positive, negatives)[:, None]
        return (negatives - positive[:, None] + self.margin).clamp(min=0).mean()


@LOSSES.register
class MarginTripletConfig(LossConfig):
    name: Literal["margin_triplet"]
    margin: float = Field(0.4, ge=0, allow_inf_nan=False, description="m; SimCLR tunes it over 0, 0.4, 0.8, 1.6")
    semi_hard: bool = Field(False, description="true: each anchor's semi-hard negative only (SimCLR's 'sh')")

    def build(self) -> nn.Module:
        return MarginTriplet(self.margin, self.semi_hard)
