"""NT-Logistic, the normalised temperature-scaled logistic loss SimCLR compares with NT-Xent."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from workers.losses.base import LOSSES, LossConfig
from workers.losses.semi_hard import cross_view_similarities, semi_hard_negative


class NTLogistic(nn.Module):
    r"""NT-Logistic (Chen et al. 2020, Table 2; the logistic loss of Mikolov et al. 2013).

    Table 2 gives the objective to maximise for one anchor u, positive :math:`v^+` and negative
    :math:`v^-`, all l2-normalised:
    :math:`\log\sigma(u^\top v^+/\tau) + \log\sigma(-u^\top v^-/\tau)`. The loss is its negation,
    averaged over the 2N anchors (both views, negatives from the other view only: see
    ``workers.losses.semi_hard``) with :math:`s^+_a = u_a^\top v^+_a` and
    :math:`s^-_{ak}` for the anchor's N−1 negatives:

    .. math::
        \mathcal{L} = \frac{1}{2N}\sum_{a=1}^{2N}\Big[-\log\sigma(s^+_a/\tau)
            - \frac{1}{N-1}\sum_{k=1}^{N-1}\log\sigma(-s^-_{ak}/\tau)\Big]

    i.e. the mean of Table 2's term over every (anchor, positive, negative) triple: the positive
    and the anchor's negatives *as a group* weigh the same, each negative 1/(N−1). The paper
    names no other re-weighting (Table 2's caption only notes that the losses "impose different
    weightings of positive and negative examples"); summing the negatives instead, as word2vec
    does with its handful of samples, would let N−1 negatives outweigh the one positive.

    ``semi_hard=True`` keeps one negative per anchor, its semi-hard one
    :math:`s^-_{a,\mathrm{sh}}` (``workers.losses.semi_hard``): the loss is then exactly Table 2's
    term, :math:`\frac{1}{2N}\sum_a[-\log\sigma(s^+_a/\tau) - \log\sigma(-s^-_{a,\mathrm{sh}}/\tau)]`.

    SimCLR tunes τ over {0.1, 0.2, 0.5, 1.0} (Appendix B.10); ImageNet top-1 51.6 without and
    57.9 with semi-hard mining, against NT-Xent's 63.9 (Table 4).

    Example (a study file's ``loss:``, then direct use)::

        loss: {name: nt_logistic, temperature: 0.2, semi_hard: true}

        loss = NTLogistic(temperature=0.2, semi_hard=True)(z1, z2)   # z1, z2: [N, d], N ≥ 2
    """

    def __init__(self, temperature: float = 0.5, semi_hard: bool = False) -> None:
        super().__init__()
        if not (isinstance(temperature, int | float) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        if not isinstance(semi_hard, bool):
            raise ValueError(f"semi_hard must be true or false, got {semi_hard!r}")
        self.temperature = float(temperature)
        self.semi_hard = semi_hard

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        # ``generator``: part of every loss's call (``workers.losses.base``); NT-Logistic draws nothing.
        positive, negatives = cross_view_similarities(z1, z2)
        if self.semi_hard:
            negatives = semi_hard_negative(positive, negatives)[:, None]
        # -log σ(x) = softplus(-x): the positive's term and the negatives' mean term.
        positive_term = F.softplus(-positive / self.temperature)
        negative_term = F.softplus(negatives / self.temperature).mean(dim=1)
        return (positive_term + negative_term).mean()


@LOSSES.register
class NTLogisticConfig(LossConfig):
    name: Literal["nt_logistic"]
    temperature: float = Field(0.5, gt=0, allow_inf_nan=False, description="τ; SimCLR tunes it over 0.1, 0.2, 0.5, 1.0")
    semi_hard: bool = Field(False, description="true: each anchor's semi-hard negative only (SimCLR's 'sh')")

    def build(self) -> nn.Module:
        return NTLogistic(self.temperature, self.semi_hard)
