"""NT-Xent, SimCLR's contrastive loss (and the cross-view variant of the Intriguing Properties notebooks)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from workers.losses.base import LOSSES, LossConfig

Negatives = Literal["all", "cross_view"]


class NTXent(nn.Module):
    r"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020, eq. 1).

    For 2N projections (two views of N images) with cosine similarity
    :math:`s_{ik} = z_i^\top z_k / (\lVert z_i\rVert \lVert z_k\rVert)` and positive ``j(i)``
    (the other view of the same image):

    .. math::
        \mathcal{L} = \frac{1}{2N}\sum_{i=1}^{2N}
            -\log \frac{\exp(s_{i,j(i)}/\tau)}{\sum_{k\ne i}\exp(s_{ik}/\tau)}

    Chen, Luo & Li (2021, Table 1) read it as alignment plus a logsumexp "distribution" term
    that pushes z towards the uniform hypersphere; ``temperature`` τ sets how hard the
    negatives are weighted (Wang & Liu 2021).

    ``negatives="cross_view"`` is the loss of the Intriguing Properties notebooks
    (``randbits_mnist.ipynb``): each anchor's candidates are the N images of the *other* view
    only. With :math:`S = \hat z^{(1)} \hat z^{(2)\top} / \tau` (N×N, rows l2-normalised),

    .. math::
        \mathcal{L} = \tfrac12\big[\mathrm{CE}(S, \mathrm{arange}\,N)
            + \mathrm{CE}(S^\top, \mathrm{arange}\,N)\big],\qquad
        \mathrm{CE}(S, y) = \frac1N\sum_{i=1}^{N} -\log\frac{\exp S_{i,y_i}}{\sum_{k=1}^{N}\exp S_{ik}}

    The notebook *sums* the two directions (twice this value). Under Adam a constant factor on
    the loss only changes the relative weight of an L2 penalty added beside it: the notebook's
    Keras ``l2(c)`` with the summed loss equals ``weight_decay = c`` (not ``2c``) with this mean
    (see ``workers.optim``).

    ``normalize=False`` is the "ℓ2 norm? No" half of SimCLR's Table 5 (ℓ2 norm × τ, there with
    τ = 10 and 100): the projections are not l2-normalised, so every :math:`s_{ik}` above is the
    plain dot product :math:`z_i^\top z_k` (the official code's ``hidden_norm=False``), in either
    ``negatives`` form. The paper finds the contrastive task then easier but the representation
    worse.

    Example::

        loss = NTXent(temperature=0.2)(z1, z2)   # z1, z2: [N, d], views of the same N images
        loss = NTXent(0.1, negatives="cross_view")(z1, z2)
        loss = NTXent(10.0, normalize=False)(z1, z2)   # dot products, Table 5's "No" rows
    """

    def __init__(self, temperature: float = 0.5, negatives: Negatives = "all", normalize: bool = True) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if negatives not in ("all", "cross_view"):
            raise ValueError(f"negatives must be 'all' or 'cross_view', got {negatives!r}")
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be true or false, got {normalize!r}")
        self.temperature = temperature
        self.negatives = negatives
        self.normalize = normalize

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        # ``generator``: part of every loss's call (``workers.losses.base``); NT-Xent draws nothing.
        if z1.shape != z2.shape or z1.ndim != 2:
            raise ValueError(f"expected two [N, d] tensors of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
        if self.normalize:
            z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        if self.negatives == "cross_view":
            logits = z1 @ z2.T / self.temperature
            positives = torch.arange(len(z1), device=z1.device)
            return 0.5 * (F.cross_entropy(logits, positives) + F.cross_entropy(logits.T, positives))
        n = len(z1)
        z = torch.cat([z1, z2])
        logits = (z @ z.T) / self.temperature
        logits.fill_diagonal_(float("-inf"))  # k ≠ i
        positives = torch.arange(2 * n, device=z.device).roll(n)  # i ↔ i + n
        return F.cross_entropy(logits, positives)


@LOSSES.register
class NTXentConfig(LossConfig):
    name: Literal["nt_xent"]
    temperature: float = Field(0.5, gt=0)
    negatives: Negatives = Field(
        "all", description="all: the other 2N-2 projections (SimCLR); cross_view: the other view's N-1"
    )
    normalize: bool = Field(True, description="false: dot products of raw z, no l2 normalisation (SimCLR Table 5)")

    def build(self) -> nn.Module:
        return NTXent(self.temperature, self.negatives, self.normalize)
