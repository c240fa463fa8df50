r"""The geometry of the embedding on the test split (Wang & Liu 2021, §4; Wang & Isola 2020).

All three read ℓ2-normalised features :math:`f(x)`, in the space ``eval.geometry.space``:
``z`` (default; the normalised output feature of the projection head, what Wang & Liu
measure) or ``h`` (the encoder's representation). A method without a head has z = h.

* ``uniformity`` (Wang & Liu, eq. 10, Wang & Isola's Gaussian potential), reported with the
  sign of their Table 1, larger = more uniform:

  .. math:: \mathrm{uniformity} = -\log \mathbb{E}_{x \ne y}\big[e^{-t\lVert f(x)-f(y)\rVert_2^2}\big]

  over every pair of distinct test images (their :math:`\mathcal{L}_\mathrm{uniformity}` is
  the same log without the minus). t = 2 by default: the paper does not state its t; with
  t = 2 the value is at most 4 on the sphere, and Table 1's 3.86-3.93 fit it.
* ``tolerance`` (eq. 11): :math:`\mathbb{E}[f(x)^\top f(y) \mid l(x) = l(y)]`, the mean
  similarity over pairs of distinct test images of the same class of one target
  (``eval.geometry.target``, default: the dataset's first), "the average similarity of samples
  belonging to the same class".
* ``alignment`` (Wang & Isola, α = 2): :math:`\mathbb{E}\lVert f(x_1) - f(x_2)\rVert_2^2` over
  the two views of the same image, on held-out pairs (``workers.measures.held_out``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from pydantic import Field

from workers.data.base import Split
from workers.measures.held_out import Space, evaluating, held_out_pairs, project, project_features
from workers.registry import Section
from workers.views import ViewsConfig

if TYPE_CHECKING:
    from workers.methods import Method

GEOMETRY_METRICS = ("uniformity", "tolerance", "alignment")


class GeometryConfig(Section):
    space: Space = Field("z", description="z: g(f(x)), the paper's output feature; h: f(x)")
    t: float = Field(2.0, gt=0, description="t of the uniformity's Gaussian potential")
    target: str | None = Field(None, description="the classes tolerance groups by; default: the dataset's first target")
    examples: int = Field(1024, ge=1, description="held-out test images (two views each) for alignment")


def uniformity(features: torch.Tensor, t: float = 2.0, chunk: int = 1024) -> float:
    """−log of the mean of exp(−t‖f(x) − f(y)‖²) over ordered pairs x ≠ y of the rows, ℓ2-normalised here."""
    f = F.normalize(features.float(), dim=1)
    n = len(f)
    if n < 2:
        raise ValueError(f"uniformity needs at least 2 examples, got {n}")
    # Summed in the log domain (float64), so a large t cannot underflow every term to 0.
    parts = []
    for start in range(0, n, chunk):
        rows = f[start : start + chunk]
        squared = (2 - 2 * rows @ f.T).clamp_min(0)  # ‖a − b‖² = 2 − 2aᵀb on the unit sphere
        exponent = (-t * squared).double()
        own = torch.arange(len(rows), device=f.device)
        exponent[own, own + start] = -math.inf  # x ≠ y
        parts.append(torch.logsumexp(exponent.flatten(), dim=0))
    return -(torch.logsumexp(torch.stack(parts), dim=0).item() - math.log(n * (n - 1)))


def tolerance(features: torch.Tensor, labels: torch.Tensor) -> float:
    r"""Mean f(x)ᵀf(y) over pairs x ≠ y with the same label (rows ℓ2-normalised here).

    Per class c with :math:`S_c = \sum_{l(x)=c} f(x)`, the sum over its ordered pairs is
    :math:`\lVert S_c\rVert^2 - \sum_{l(x)=c}\lVert f(x)\rVert^2`, so no N×N matrix is formed.
    """
    f = F.normalize(features.float(), dim=1).double()
    classes = int(labels.max()) + 1
    sums = torch.zeros(classes, f.shape[1], dtype=f.dtype, device=f.device).index_add_(0, labels, f)
    counts = torch.bincount(labels, minlength=classes).to(f.dtype)
    pairs = (counts * (counts - 1)).sum()
    if pairs == 0:
        raise ValueError("tolerance needs two examples of one class")
    return ((sums.pow(2).sum() - f.pow(2).sum()) / pairs).item()


def alignment(first: torch.Tensor, second: torch.Tensor) -> float:
    """Mean ‖f(x₁) − f(x₂)‖² over rows (two views of one image per row), rows ℓ2-normalised here."""
    if first.shape != second.shape:
        raise ValueError(f"expected two views of the same images, got {tuple(first.shape)} and {tuple(second.shape)}")
    difference = F.normalize(first.float(), dim=1) - F.normalize(second.float(), dim=1)
    return difference.pow(2).sum(dim=1).mean().item()


def measure_geometry(
    method: Method,
    split: Split,
    h: torch.Tensor,
    settings: GeometryConfig,
    target: str,
    views: ViewsConfig,
    seed: int,
    batch_size: int,
) -> dict[str, float]:
    """Uniformity and tolerance on the cached representations ``h`` of ``split``, alignment on held-out pairs."""
    with evaluating(method):
        features = project_features(method, h, settings.space, batch_size)
        first, second, _ = held_out_pairs(method, split, views, settings.examples, seed)
        f1 = project(method, first, settings.space, batch_size)
        f2 = project(method, second, settings.space, batch_size, branch=1)
    return {
        "uniformity": uniformity(features, settings.t),
        "tolerance": tolerance(features, split.labels[target]),
        "alignment": alignment(f1, f2),
    }
