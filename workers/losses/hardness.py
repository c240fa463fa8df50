r"""Wang & Liu (CVPR 2021): the hard contrastive loss and the simple losses, with any negatives.

*Understanding the Behaviour of Contrastive Loss* separates the contrastive loss's two
ingredients: the temperature τ, which weights each negative by :math:`e^{s_{ij}/\tau}`, and
*hardness*, which keeps only the negatives most similar to the anchor. With cosine
similarities :math:`s_{ii}` (anchor and positive) and :math:`s_{ij}` (anchor and negative j):

* ``hard_contrastive``: the contrastive loss whose denominator keeps the positive and
  only the negatives at or above the anchor's upper α-quantile :math:`s^{(i)}_\alpha` of negative
  similarity (``quantile: α``), or its K most similar ones (``top_k: K``):

  .. math:: \mathcal{L}_\mathrm{hard}(x_i) = -\log\frac{e^{s_{ii}/\tau}}
      {e^{s_{ii}/\tau} + \sum_{s_{ij}\ge s^{(i)}_\alpha} e^{s_{ij}/\tau}}

* ``simple``: no hardness at all, every negative pushed alike:

  .. math:: \mathcal{L}_\mathrm{simple}(x_i) = -s_{ii} + \lambda\,\frac{1}{M}\sum_{j=1}^{M} s_{ij}

  The paper writes :math:`\lambda\sum_{j\ne i}s_{ij}`; the first author's code
  (``objective.FlatLoss``) takes the **mean** over the memory bank, so λ here multiplies the mean
  (the paper's λ is this λ / M). The code's mean runs over every bank entry, the anchor's own
  (its positive) included, adding :math:`s_{ii}/M`; here only the M negatives count.
* ``hard_simple``: the same mean over the K most similar negatives only (the paper: 4095; the
  code's ``HardFlatLoss`` takes the top 4096 bank entries, the positive almost always among them).

The code's hard loss (``HardNegativePointLoss``) sums :math:`e^{s/\tau}` over the top 4096 of all
bank entries, the positive included: whenever the positive is among them (nearly always), that
is the hard loss above with K = 4095 negatives, the setting here (the positive always counts once). α-quantile:
the paper's α = 0.0819 "(4095 negative samples)" on CIFAR's 50,000 images, so α selects the
:math:`k = \lceil \alpha M\rceil` most similar of an anchor's M negatives (0.0819 · 49,999 → 4095),
with every negative tying the k-th kept too ("at or above"). A K or k beyond M keeps all M
(the normal contrastive loss).

Where the negatives come from (``workers.losses.base``): called ``loss(z1, z2)``, the anchors are
the 2N projections of both views, each one's positive the other view of its image and its M = 2N − 2
negatives the rest (SimCLR's in-batch negatives, as ``nt_xent``). Called
``loss(z1, z2, negatives=bank, exclude=index)`` (``workers.memory_bank``), the N rows of ``z1``
are the anchors, row i of ``z2`` anchor i's positive and the rows of ``bank`` its negatives, except
row ``exclude[i]``, the anchor's own entry. Every vector is l2-normalised here; the loss is the
mean over anchors.

Example (a study file's ``loss:``)::

    loss: {name: hard_contrastive, temperature: 0.7, quantile: 0.0819}
    loss: {name: hard_simple, top_k: 4095}
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from workers.losses.base import LOSSES, LossConfig


def similarities(
    z1: torch.Tensor, z2: torch.Tensor, negatives: torch.Tensor | None = None, exclude: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cosine similarities: (positive [A], negative [A, M], valid bool [A, M]).

    ``valid[a, j]`` is False where column j is not a negative of anchor a (itself, its positive,
    its excluded bank entry); ``negative`` is -inf there. Without ``negatives``, A = M = 2N and each
    row has 2N − 2 negatives; with them, A = N and M = len(negatives).
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two [N, d] tensors of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if negatives is None:
        if exclude is not None:
            raise ValueError("exclude names rows of negatives; without negatives there is nothing to exclude")
        n = len(z1)
        anchors = F.normalize(torch.cat([z1, z2]), dim=1)
        candidates = anchors
        rows = torch.arange(2 * n, device=z1.device)
        partner = rows.roll(n)  # i ↔ i + n
        positive = (anchors * anchors[partner]).sum(dim=1)
        valid = torch.ones(2 * n, 2 * n, dtype=torch.bool, device=z1.device)
        valid[rows, rows] = False
        valid[rows, partner] = False
    else:
        if negatives.ndim != 2 or negatives.shape[1] != z1.shape[1]:
            raise ValueError(f"negatives must be [M, {z1.shape[1]}], got {tuple(negatives.shape)}")
        anchors = F.normalize(z1, dim=1)
        candidates = F.normalize(negatives, dim=1)
        positive = (anchors * F.normalize(z2, dim=1)).sum(dim=1)
        valid = torch.ones(len(z1), len(negatives), dtype=torch.bool, device=z1.device)
        if exclude is not None:
            if exclude.shape != (len(z1),):
                raise ValueError(f"exclude must hold one row of negatives per anchor, got {tuple(exclude.shape)}")
            valid[torch.arange(len(z1), device=z1.device), exclude] = False
    negative = (anchors @ candidates.T).masked_fill(~valid, float("-inf"))
    return positive, negative, valid


def hardest(negative: torch.Tensor, valid: torch.Tensor, count: int) -> torch.Tensor:
    """bool [A, M]: each anchor's negatives at or above its ``count``-th most similar one.

    ``count`` is clamped to the anchor's number of negatives (all kept beyond it). Selection
    is a constant of the step: no gradient flows through which negatives are kept.
    """
    available = int(valid.sum(dim=1).min())
    if count >= available:
        return valid
    threshold = negative.detach().topk(count, dim=1).values[:, -1:]
    return valid & (negative.detach() >= threshold)


def quantile_count(quantile: float, negatives: int) -> int:
    r"""How many negatives the upper α-quantile keeps: :math:`\lceil\alpha M\rceil`, at least one."""
    return max(1, math.ceil(quantile * negatives - 1e-9))  # 1e-9: α·M a whole number stays it


def kept_negatives(
    negative: torch.Tensor, valid: torch.Tensor, top_k: int | None, quantile: float | None
) -> torch.Tensor:
    """The negatives the loss sums over: the top K, the upper α-quantile, or (neither) all."""
    if top_k is not None:
        return hardest(negative, valid, top_k)
    if quantile is not None:
        return hardest(negative, valid, quantile_count(quantile, int(valid.sum(dim=1).min())))
    return valid


class HardContrastive(nn.Module):
    r"""Wang & Liu's hard contrastive loss (see the module docstring); without ``top_k`` and ``quantile``, the
    normal contrastive loss over every negative (InfoNCE; with in-batch negatives, NT-Xent).

    .. math:: \mathcal{L} = \frac1A\sum_{i=1}^{A}\Big[-\frac{s_{ii}}{\tau}
        + \log\Big(e^{s_{ii}/\tau} + \sum_{j\in\mathcal{K}_i} e^{s_{ij}/\tau}\Big)\Big]

    with :math:`\mathcal{K}_i` the kept negatives of anchor i.
    """

    def __init__(self, temperature: float = 0.07, top_k: int | None = None, quantile: float | None = None) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        check_selection(top_k, quantile)
        self.temperature, self.top_k, self.quantile = temperature, top_k, quantile

    def forward(
        self,
        z1: torch.Tensor,
        z2: torch.Tensor,
        generator: torch.Generator | None = None,
        negatives: torch.Tensor | None = None,
        exclude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        positive, negative, valid = similarities(z1, z2, negatives, exclude)
        kept = kept_negatives(negative, valid, self.top_k, self.quantile)
        logits = torch.cat([positive[:, None], negative.masked_fill(~kept, float("-inf"))], dim=1)
        logits = logits / self.temperature
        return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


class Simple(nn.Module):
    r"""The simple loss (``top_k=None``) or the hard-simple loss (the K most similar negatives).

    .. math:: \mathcal{L} = \frac1A\sum_{i=1}^{A}\Big[-s_{ii}
        + \frac{\lambda}{\lvert\mathcal{K}_i\rvert}\sum_{j\in\mathcal{K}_i} s_{ij}\Big]
    """

    def __init__(self, weight: float = 1.0, top_k: int | None = None) -> None:
        super().__init__()
        if not weight >= 0:
            raise ValueError(f"weight λ must be at least 0, got {weight}")
        check_selection(top_k, None)
        self.weight, self.top_k = weight, top_k

    def forward(
        self,
        z1: torch.Tensor,
        z2: torch.Tensor,
        generator: torch.Generator | None = None,
        negatives: torch.Tensor | None = None,
        exclude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        positive, negative, valid = similarities(z1, z2, negatives, exclude)
        kept = kept_negatives(negative, valid, self.top_k, None)
        pushed = negative.masked_fill(~kept, 0.0).sum(dim=1) / kept.sum(dim=1)
        return (self.weight * pushed - positive).mean()


def check_selection(top_k: int | None, quantile: float | None) -> None:
    if top_k is not None and quantile is not None:
        raise ValueError("give top_k or quantile, not both")
    if top_k is not None and (isinstance(top_k, bool) or not top_k >= 1):
        raise ValueError(f"top_k must be a positive number of negatives, got {top_k}")
    if quantile is not None and not 0 < quantile <= 1:
        raise ValueError(f"quantile α must be in (0, 1], got {quantile}")


@LOSSES.register
class HardContrastiveConfig(LossConfig):
    name: Literal["hard_contrastive"]
    temperature: float = Field(0.07, gt=0, description="τ; default 0.07, the first author's run.py")
    quantile: float | None = Field(
        None, gt=0, le=1, description="α: keep the negatives in each anchor's upper α-quantile of similarity"
    )
    top_k: int | None = Field(None, ge=1, description="K: keep each anchor's K most similar negatives (paper: 4095)")
    takes_negatives: ClassVar[bool] = True

    @model_validator(mode="after")
    def _one_selection(self) -> HardContrastiveConfig:
        if (self.quantile is None) == (self.top_k is None):
            raise ValueError("hard_contrastive needs exactly one of quantile (α) and top_k (K)")
        return self

    def build(self) -> nn.Module:
        return HardContrastive(self.temperature, self.top_k, self.quantile)


@LOSSES.register
class SimpleConfig(LossConfig):
    name: Literal["simple"]
    weight: float = Field(1.0, ge=0, description="λ on the mean similarity to the negatives (the code's λ = 1)")
    takes_negatives: ClassVar[bool] = True

    def build(self) -> nn.Module:
        return Simple(self.weight)


@LOSSES.register
class HardSimpleConfig(LossConfig):
    name: Literal["hard_simple"]
    weight: float = Field(1.0, ge=0, description="λ on the mean similarity to the K hardest negatives")
    top_k: int = Field(4095, ge=1, description="K, the most similar negatives kept (the paper's 4095)")
    takes_negatives: ClassVar[bool] = True

    def build(self) -> nn.Module:
        return Simple(self.weight, self.top_k)
