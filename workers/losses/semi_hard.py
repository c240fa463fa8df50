r"""The pairs SimCLR's pairwise losses score, and semi-hard negative mining (Chen et al. 2020, §5.1).

SimCLR compares NT-Xent with two pairwise losses, NT-Logistic and the margin triplet loss
(``workers.losses.nt_logistic``, ``workers.losses.margin_triplet``), which score one anchor u
against one positive :math:`v^+` and one negative :math:`v^-` at a time (Table 2), all
l2-normalised ("we use the same ℓ2 normalization for all loss functions").

**Which negatives.** Appendix B.10: "For simplicity, we only consider the negatives from one
augmentation view (instead of both sides)". Read here as: the anchor :math:`u = \hat z^{(1)}_i`
is scored against the *other* view's rows only, its positive :math:`\hat z^{(2)}_i` and the
N−1 negatives :math:`\hat z^{(2)}_k, k \ne i` (NT-Xent's ``negatives="all"`` would add the
anchor's own view, "both sides"). Both views take a turn as anchors (:math:`\hat z^{(2)}_i`
against :math:`\hat z^{(1)}`), so the loss is symmetric in the views, like NT-Xent's; the
official code does not contain these losses, so this is our reading of the text.

**Semi-hard mining.** §5.1: "one can compute the gradient using semi-hard negative terms
(i.e., those that are within the loss margin and closest in distance, but farther than
positive examples)", after Schroff et al. (2015). With cosine similarity in place of distance,
each anchor keeps one negative, the *closest* one that is still *farther than the positive*:

.. math:: v^-_\mathrm{sh} = \operatorname*{arg\,max}_{v^- :\; u^\top v^- < u^\top v^+} u^\top v^-

("within the loss margin" then only decides whether the margin loss's term is non-zero). When an
anchor has no such negative (every negative at least as similar as the positive), it takes the
negative with the *lowest* similarity instead, the one nearest the positive from above; this is
the convention of TensorFlow's ``triplet_semihard_loss``. Every anchor thus keeps exactly one
term; ties go to the first candidate in row order. The choice is made without gradient; the
gradient flows through the chosen similarity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_view_similarities(z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Cosine similarities of every anchor to its positive [2N] and to its N−1 negatives [2N, N−1].

    Rows 0..N−1 are the anchors :math:`\hat z^{(1)}_i` against the candidates :math:`\hat z^{(2)}`,
    rows N..2N−1 the anchors :math:`\hat z^{(2)}_i` against :math:`\hat z^{(1)}`; a row's negatives
    keep the candidates' order with the positive (column i) left out.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two [N, d] tensors of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = len(z1)
    if n < 2:
        raise ValueError(f"need at least 2 images for a negative, got {n}")
    u1, u2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    scores = torch.cat([u1 @ u2.T, u2 @ u1.T])  # [2N, N]
    positive_at = torch.eye(n, dtype=torch.bool, device=scores.device).repeat(2, 1)
    return scores[positive_at], scores[~positive_at].view(2 * n, n - 1)


def semi_hard_negative(positive: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Each anchor's semi-hard negative similarity [A], from ``positive`` [A] and ``negatives`` [A, K].

    The largest negative similarity below the positive's; for an anchor with none below, the
    smallest negative similarity (see the module's docstring).
    """
    with torch.no_grad():
        below = negatives < positive[:, None]
        closest_below = negatives.masked_fill(~below, float("-inf")).argmax(dim=1)
        index = torch.where(below.any(dim=1), closest_below, negatives.argmin(dim=1))
    return negatives.gather(1, index[:, None]).squeeze(1)
