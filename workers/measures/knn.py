r"""Weighted k-nearest-neighbour accuracy (Wu et al. 2018, InstDisc; the kNN Wang & Liu report).

On the same cached representations h as the linear probe (one extraction serves both), each
test feature votes with its k nearest train features by cosine similarity
:math:`s_i = \hat h^\top \hat h_i`, neighbour i weighing :math:`e^{s_i/\tau}`:

.. math:: \hat y = \arg\max_c \sum_{i \in \mathrm{top}\text{-}k} e^{s_i/\tau}\,\mathbb{1}(y_i = c)

InstDisc's settings are the defaults: k = 200, τ = 0.07. Reported per target as
``knn_acc/<target>`` (percent).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from workers.registry import Section


class KnnConfig(Section):
    k: int = Field(200, ge=1, description="neighbours (capped at the train split)")
    temperature: float = Field(0.07, gt=0, description="τ of the exp(s/τ) vote weights")
    targets: list[str] | None = Field(None, description="default: every target of the dataset")


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: dict[str, torch.Tensor],
    test_features: torch.Tensor,
    test_labels: dict[str, torch.Tensor],
    num_classes: dict[str, int],
    *,
    k: int = 200,
    temperature: float = 0.07,
    chunk: int = 1024,
) -> dict[str, float]:
    """Test accuracy in percent of the weighted kNN vote, for every target of ``test_labels``.

    The neighbours are found once per test chunk and serve every target.
    """
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    k = min(k, len(train))
    correct = {target: 0 for target in test_labels}
    for start in range(0, len(test), chunk):
        similarity, neighbours = (test[start : start + chunk] @ train.T).topk(k, dim=1)
        weights = (similarity / temperature).exp()
        for target, labels in test_labels.items():
            votes = torch.zeros(len(weights), num_classes[target], device=weights.device)
            votes.scatter_add_(1, train_labels[target][neighbours], weights)
            correct[target] += int((votes.argmax(dim=1) == labels[start : start + chunk]).sum())
    return {target: 100.0 * hits / len(test) for target, hits in correct.items()}
