r"""What the contrastive task itself looks like on held-out pairs, after every epoch.

SimCLR (Chen et al. 2020, Table 5, the ℓ2-norm × τ table) reports, beside top-1, the entropy
of the NT-Xent softmax and the contrastive accuracy; Tian et al. (2020, InfoMin) plot
downstream accuracy against the InfoNCE estimate :math:`I_\mathrm{NCE}`. All three are read
off one similarity matrix of N held-out test images, two views each (``workers.measures.held_out``),
:math:`z = g(f(\mathrm{view}))` in eval mode:

* candidates: each of the 2N projections is an anchor whose candidates are the other 2N − 1
  (one positive, the other view of its image; 2N − 2 negatives), so **K = 2N − 1**; when the
  trial's loss takes its negatives from the other view only (``negatives: cross_view``, as CMC
  uses it), the candidates are the other view's N projections, **K = N**;
* logits :math:`\ell_{ik} = s_{ik}/\tau`, with :math:`s_{ik}` the cosine similarity (or the
  plain dot product when the loss has ``normalize: false``), softmax
  :math:`p_{ik} = e^{\ell_{ik}} / \sum_{k'\ne i} e^{\ell_{ik'}}`;
* ``contrast/entropy``: :math:`\frac1{2N}\sum_i -\sum_{k\ne i} p_{ik}\log p_{ik}` (nats; log K
  when every candidate scores the same);
* ``contrast/accuracy``: percent of anchors whose positive scores highest among the K;
* ``i_nce``: :math:`\log K - \mathcal{L}_\mathrm{NCE}` with
  :math:`\mathcal{L}_\mathrm{NCE} = \frac1{2N}\sum_i -\log p_{i,j(i)}`, the InfoNCE loss of one
  positive among K candidates (Tian et al., after Oord et al.: :math:`I(v_1; v_2) \ge \log K -
  \mathcal{L}_\mathrm{NCE}`), i.e. NT-Xent on the held-out pairs.

τ is ``eval.contrast.temperature`` if set, else the loss's temperature (MoCo: its
``loss.temperature``), else 1 (a loss without one, e.g. a margin loss, is scored on plain
similarities).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from pydantic import Field

from workers.data.base import Split
from workers.measures.held_out import evaluating, held_out_pairs, project
from workers.registry import Section
from workers.views import ViewsConfig

if TYPE_CHECKING:
    from workers.methods import Method

CONTRAST_METRICS = ("contrast/entropy", "contrast/accuracy", "i_nce")


class ContrastConfig(Section):
    examples: int = Field(512, ge=2, description="held-out test images, two views each (capped at the test split)")
    temperature: float | None = Field(None, gt=0, description="τ; default: the loss's (1 if it has none)")


def contrastive_statistics(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float, *, normalize: bool = True, cross_view: bool = False
) -> dict[str, float]:
    """Entropy, contrastive accuracy and I_NCE of the 2N projections of N pairs (module docstring).

    ``z1``, ``z2``: [N, d], row i of each a view of image i; N ≥ 2. ``cross_view``: each anchor's
    candidates are the N projections of the *other* view (its positive and N − 1 negatives), so
    K = N, as for a loss with ``negatives: cross_view`` and CMC, whose anchors never meet their own view.
    """
    n = len(z1)
    if z1.shape != z2.shape or z1.ndim != 2 or n < 2:
        shapes = f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        raise ValueError(f"expected two [N, d] tensors of one shape with N >= 2, got {shapes}")
    z = torch.cat([z1, z2]).float()
    if normalize:
        z = F.normalize(z, dim=1)
    logits = z @ z.T / temperature
    rows = torch.arange(2 * n, device=z.device)
    if cross_view:
        # Anchor i < N scores the second view's N rows, anchor N + i the first view's: [2N, N].
        candidates = torch.cat([logits[:n, n:], logits[n:, :n]])
        positive = rows % n
    else:
        # Each row without its diagonal: [2N, 2N − 1], the anchor's K candidates in order.
        off_diagonal = ~torch.eye(2 * n, dtype=torch.bool, device=z.device)
        candidates = logits[off_diagonal].view(2 * n, 2 * n - 1)
        # The positive of anchor i is i + N (i < N) or i − N; past the dropped diagonal a column moves left by one.
        positive = torch.where(rows < n, rows + n - 1, rows - n)
    log_p = candidates.log_softmax(dim=1)
    nce = -log_p[rows, positive].mean()
    return {
        "contrast/entropy": -(log_p.exp() * log_p).sum(dim=1).mean().item(),
        "contrast/accuracy": 100.0 * (candidates.argmax(dim=1) == positive).float().mean().item(),
        "i_nce": math.log(candidates.shape[1]) - nce.item(),
    }


def loss_temperature(method: Method) -> float | None:
    """τ of the method's contrastive loss (SimCLR: ``method.loss``; MoCo keeps its own), if any."""
    for owner in (getattr(method, "loss", None), method):
        temperature = getattr(owner, "temperature", None)
        if isinstance(temperature, int | float):
            return float(temperature)
    return None


def contrastive_diagnostics(
    method: Method, split: Split, settings: ContrastConfig, views: ViewsConfig, seed: int, batch_size: int
) -> dict[str, float]:
    """The three statistics on held-out pairs of ``split``; {} for a method without a projection head."""
    if method.branch(0)[1] is None:  # CMC has a head per view, and no ``head``
        return {}
    temperature = settings.temperature or loss_temperature(method) or 1.0
    loss = getattr(method, "loss", None)
    normalize = bool(getattr(loss, "normalize", True))
    cross_view = getattr(loss, "negatives", "all") == "cross_view"
    with evaluating(method):
        first, second, _ = held_out_pairs(method, split, views, settings.examples, seed)
        z1, z2 = project(method, first, "z", batch_size), project(method, second, "z", batch_size, branch=1)
    return contrastive_statistics(z1, z2, temperature, normalize=normalize, cross_view=cross_view)
