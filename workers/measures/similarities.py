r"""Positive and hardest-negative similarity distributions (Wang & Liu 2021, Fig. 4 and 6).

For N held-out test images with two views each (``workers.measures.held_out``), the anchor is
the first view :math:`a_i`, its positive the second view :math:`p_i` of the same image, and its
negatives the second views :math:`p_j` of the other N − 1 images (one per image, so the
hardest negatives are ten different images):

* ``positive`` [N]: :math:`\cos(f(a_i), f(p_i))`;
* ``negatives`` [N, m]: the m (default 10) largest :math:`\cos(f(a_i), f(p_j))`, j ≠ i,
  in descending order.

Logged per trial as three numbers, ``similarities/positive`` (mean positive cosine),
``similarities/negatives`` (mean of the m hardest negatives' cosines) and ``similarities/gap``
(their difference: how far positives stand from the hardest negatives, the quantity the paper's
histograms show shrinking as τ grows), and saved as ``similarities.npz`` (float32 arrays
``positive`` and ``negatives``) in the trial's artifact folder; the report's histograms read that file. The space is
``eval.similarities.space`` (z by default, as the paper's output feature).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from workers.data.base import Split
from workers.measures.held_out import Space, evaluating, held_out_pairs, project
from workers.registry import Section
from workers.views import ViewsConfig

if TYPE_CHECKING:
    from workers.methods import Method

SIMILARITIES_FILE = "similarities.npz"
SIMILARITY_METRICS = ("similarities/positive", "similarities/negatives", "similarities/gap")


class SimilaritiesConfig(Section):
    examples: int = Field(1024, ge=2, description="held-out test anchors (capped at the test split)")
    negatives: int = Field(10, ge=1, description="the most similar negatives kept per anchor")
    space: Space = Field("z", description="z: g(f(x)), the paper's output feature; h: f(x)")


def positive_and_negative_similarities(
    anchors: torch.Tensor, positives: torch.Tensor, negatives: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos to the positive [N], the ``negatives`` largest cos to the other rows' positives [N, m], descending)."""
    n = len(anchors)
    if anchors.shape != positives.shape or n <= negatives:
        raise ValueError(f"need two [N, d] tensors of one shape with N > {negatives}; got {tuple(anchors.shape)}, "
                         f"{tuple(positives.shape)}")
    similarity = F.normalize(anchors.float(), dim=1) @ F.normalize(positives.float(), dim=1).T
    positive = similarity.diagonal().clone()
    similarity.fill_diagonal_(-torch.inf)  # an anchor's own positive is no negative
    return positive, similarity.topk(negatives, dim=1).values


def similarity_summary(positive: torch.Tensor, negatives: torch.Tensor) -> dict[str, float]:
    """The means of ``positive`` and of ``negatives`` (every anchor's m hardest), and positive − negatives."""
    mean_positive, mean_negatives = positive.float().mean().item(), negatives.float().mean().item()
    return {
        "similarities/positive": mean_positive,
        "similarities/negatives": mean_negatives,
        "similarities/gap": mean_positive - mean_negatives,
    }


def save_similarities(folder: Path, positive: torch.Tensor, negatives: torch.Tensor) -> Path:
    """Writes ``folder/similarities.npz`` (float32 ``positive`` [N], ``negatives`` [N, m]); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SIMILARITIES_FILE
    np.savez(
        path,
        positive=positive.detach().cpu().numpy().astype(np.float32),
        negatives=negatives.detach().cpu().numpy().astype(np.float32),
    )
    return path


def similarity_distributions(
    method: Method, split: Split, settings: SimilaritiesConfig, views: ViewsConfig, seed: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``positive_and_negative_similarities`` of held-out pairs of ``split``."""
    with evaluating(method):
        first, second, _ = held_out_pairs(method, split, views, settings.examples, seed)
        anchors, positives = project(method, first, settings.space, batch_size), project(
            method, second, settings.space, batch_size, branch=1
        )
    if len(anchors) <= settings.negatives:
        raise ValueError(
            f"eval.similarities: the test split's {len(anchors)} images leave fewer than "
            f"{settings.negatives} negatives per anchor"
        )
    return positive_and_negative_similarities(anchors, positives, settings.negatives)
