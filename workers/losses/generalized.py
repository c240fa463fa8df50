"""The generalized contrastive loss of Chen, Luo & Li (2021): alignment + λ · distribution.

Follows the paper's notebook ``colabs/intriguing_properties/generalized_contrastive_loss.ipynb``
(google-research/simclr) in every detail that changes a value; each function says which.
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from workers.losses.base import LOSSES, LossConfig

Distribution = Literal["logsumexp", "swd"]
Prior = Literal["uniform_hypersphere", "uniform_hypercube", "gaussian"]
DISTRIBUTIONS: tuple[str, ...] = typing.get_args(Distribution)
PRIORS: tuple[str, ...] = typing.get_args(Prior)


def alignment(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    r"""The notebook's alignment term: half the mean over all N·d entries of the squared difference.

    .. math:: \mathcal{L}_\mathrm{align} = \frac{1}{2Nd}\sum_{i=1}^{N}\lVert z^{(1)}_i - z^{(2)}_i\rVert^2

    (Table 1 writes :math:`\frac1{nd}\sum\lVert z_i - z_j\rVert^2`; the notebook's
    ``reduce_mean((hidden1 - hidden2)**2) / 2.`` halves it.) For l2-normalised rows it is
    :math:`\frac1d(1 - \overline{\cos})`, the mean cosine of the N positive pairs.
    """
    return (z1 - z2).pow(2).mean() / 2


def logsumexp_distribution(z: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""The notebook's logsumexp term on the M = 2N l2-normalised rows of ``z``.

    .. math:: \mathcal{L}_\mathrm{dist} = \frac1M\sum_{a=1}^{M}
        \Big[\log\sum_{b=1}^{M}\exp(\tilde z_a^\top \tilde z_b/\tau) - \log d\Big]

    The inner sum runs over every row, the anchor itself and its positive included (Table 1's
    :math:`\sum_j`, the notebook's ``reduce_logsumexp(states @ states.T / τ, 1)``); the notebook
    subtracts the constant :math:`\log d` (d = feature dimension), which changes no gradient.
    """
    scores = z @ z.T / temperature
    return (torch.logsumexp(scores, dim=1) - math.log(z.shape[1])).mean()


def orthogonal_projection(
    dim: int, projections: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A random [dim, projections] matrix P with orthonormal columns (PᵀP = I), Haar-distributed.

    The Q of a Gaussian matrix's QR decomposition, each column's sign fixed by R's diagonal (as
    Keras' ``Orthogonal`` initializer, which the notebook calls for a fresh [d, d] matrix per step).
    Drawn on ``generator``'s device (the default CPU generator without one).
    """
    if not 1 <= projections <= dim:
        raise ValueError(f"projections must be between 1 and the feature dimension {dim}, got {projections}")
    device = generator.device if generator is not None else None
    gaussian = torch.randn(dim, projections, generator=generator, device=device, dtype=dtype)
    q, r = torch.linalg.qr(gaussian)
    return q * torch.where(r.diagonal() < 0, -1.0, 1.0).to(dtype)


def sample_prior(
    prior: str, count: int, dim: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``count`` samples [count, dim] of the prior, as the notebook draws them (its ``stddev=1``).

    * ``gaussian``: N(0, I).
    * ``uniform_hypercube``: uniform on [-1, 1]^d (each coordinate: mean 0, variance 1/3).
    * ``uniform_hypersphere``: N(0, I) samples l2-normalised, uniform on the unit sphere.
    """
    device = generator.device if generator is not None else None
    if prior == "uniform_hypercube":
        return torch.rand(count, dim, generator=generator, device=device, dtype=dtype) * 2 - 1
    samples = torch.randn(count, dim, generator=generator, device=device, dtype=dtype)
    if prior == "uniform_hypersphere":
        return F.normalize(samples, dim=1)
    if prior == "gaussian":
        return samples
    raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")


def sliced_wasserstein(z: torch.Tensor, samples: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    r"""Squared sliced Wasserstein-2 distance between the rows of ``z`` and equally many ``samples``.

    .. math:: \mathrm{SWD}(Z, Z^\mathrm{prior}) = \frac1k\sum_{j=1}^{k}\frac1M\sum_{m=1}^{M}
        \big(\mathrm{sort}(Z p_j)_m - \mathrm{sort}(Z^\mathrm{prior} p_j)_m\big)^2

    for the k columns :math:`p_j` of ``projection``. Each inner mean is the exact 1-D W2² between
    two M-point empirical distributions (sorted values pair up); the notebook returns it squared
    (``reduce_mean((sorted_prior - sorted_states)**2)``), without a square root.
    """
    if z.shape != samples.shape:
        raise ValueError(f"need as many prior samples as rows, got {tuple(samples.shape)} for {tuple(z.shape)}")
    projected = (z @ projection).sort(dim=0).values
    target = (samples @ projection).sort(dim=0).values
    return (projected - target).pow(2).mean()


class GeneralizedContrastive(nn.Module):
    r"""Generalized contrastive loss (Chen, Luo & Li, NeurIPS 2021, Table 1).

    .. math:: \mathcal{L} = \mathcal{L}_\mathrm{alignment} + \lambda\,\mathcal{L}_\mathrm{distribution}

    on the projections :math:`z^{(1)}, z^{(2)}` [N, d] of two views, with Z the 2N rows of both.
    Table 1's instantiations (:math:`\tilde z` = l2-normalised z, only for the hypersphere):

    * uniform hypersphere, ``distribution: logsumexp`` (Table 1, row 1):
      :math:`\frac1{2Nd}\sum_i\lVert\tilde z^{(1)}_i-\tilde z^{(2)}_i\rVert^2
      + \lambda\,\frac1{2N}\sum_a\big[\log\sum_b e^{\tilde z_a^\top\tilde z_b/\tau}-\log d\big]`
    * uniform hypersphere, ``distribution: swd`` (row 2):
      :math:`\frac1{2Nd}\sum_i\lVert\tilde z^{(1)}_i-\tilde z^{(2)}_i\rVert^2
      + \lambda\,\mathrm{SWD}(\tilde Z, Z^\mathrm{prior})`
    * uniform hypercube [-1, 1]^d, ``swd`` (row 3):
      :math:`\frac1{2Nd}\sum_i\lVert z^{(1)}_i-z^{(2)}_i\rVert^2 + \lambda\,\mathrm{SWD}(Z, Z^\mathrm{prior})`
    * Gaussian N(0, I), ``swd`` (row 4): the same as the hypercube's, with Gaussian prior samples.

    The notebook's settings, followed here: z is l2-normalised (for both terms) exactly for the
    hypersphere (``hidden_norm=True``); the hypercube and Gaussian losses use z as it comes. The
    sliced Wasserstein distance (:func:`sliced_wasserstein`) is taken over both views' 2N rows
    against 2N fresh prior samples (:func:`sample_prior`), along a fresh random orthogonal
    projection (:func:`orthogonal_projection`) of ``projections`` directions (default d, the
    notebook's square [d, d] matrix) at every call.

    ``logsumexp`` is the notebook's "decoupled NT-Xent": with :math:`\bar c` the mean cosine of
    the positive pairs, the loss is :math:`\frac1d(1-\bar c) + \lambda\,\mathcal{L}_\mathrm{dist}`,
    the two parts weighted freely. With :math:`\lambda = \tau/d` it equals
    :math:`\frac{\tau}{d}\mathcal{L}_\mathrm{full} + \frac{1 - \tau\log d}{d}`, where
    :math:`\mathcal{L}_\mathrm{full}` is NT-Xent whose denominator runs over all 2N rows (the
    anchor's own :math:`e^{1/\tau}` included); at the notebook's λ = 1 the distribution term
    weighs d/τ times more, relative to alignment, than in that NT-Xent. Defaults: λ = 1, τ = 1 (the notebook's).

    Randomness (``swd``) comes from ``generator`` (the trainer passes the trial's own, see
    ``workers.losses.base``), else from torch's default CPU generator.

    Example (a study file's ``loss:``, then direct use)::

        loss: {name: generalized, distribution: logsumexp, temperature: 0.2}
        loss: {name: generalized, distribution: swd, prior: gaussian, weight: 2.0}

        criterion = GeneralizedContrastive("swd", prior="uniform_hypercube")
        loss = criterion(z1, z2, generator=torch.Generator().manual_seed(0))
    """

    def __init__(
        self,
        distribution: Distribution = "logsumexp",
        weight: float = 1.0,
        temperature: float | None = None,
        prior: Prior = "uniform_hypersphere",
        projections: int | None = None,
    ) -> None:
        super().__init__()
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}")
        if not weight >= 0:
            raise ValueError(f"weight λ must be at least 0, got {weight}")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if temperature is not None and not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if projections is not None and (isinstance(projections, bool) or not projections >= 1):
            raise ValueError(f"projections must be a positive number of directions, got {projections}")
        if distribution == "logsumexp":
            if prior != "uniform_hypersphere":
                raise ValueError(f"distribution logsumexp matches the uniform_hypersphere prior only, not {prior}; "
                                 "use distribution: swd for other priors")
            if projections is not None:
                raise ValueError("projections is for distribution: swd; logsumexp does not project")
        elif temperature is not None:
            raise ValueError("temperature is for distribution: logsumexp; swd has none")
        self.distribution, self.weight, self.prior = distribution, weight, prior
        self.temperature = 1.0 if temperature is None else temperature
        self.projections = projections
        self.normalise = prior == "uniform_hypersphere"

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if z1.shape != z2.shape or z1.ndim != 2:
            raise ValueError(f"expected two [N, d] tensors of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
        if self.normalise:
            z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        z = torch.cat([z1, z2])
        if self.distribution == "logsumexp":
            distribution = logsumexp_distribution(z, self.temperature)
        else:
            dim = z.shape[1]
            projection = orthogonal_projection(dim, self.projections or dim, generator, z.dtype).to(z.device)
            samples = sample_prior(self.prior, len(z), dim, generator, z.dtype).to(z.device)
            distribution = sliced_wasserstein(z, samples, projection)
        return alignment(z1, z2) + self.weight * distribution


@LOSSES.register
class GeneralizedConfig(LossConfig):
    name: Literal["generalized"]
    distribution: Distribution = Field(
        "logsumexp",
        description="logsumexp: decoupled NT-Xent (uniform hypersphere); swd: sliced Wasserstein to a prior",
    )
    weight: float = Field(1.0, ge=0, description="λ, the distribution term's weight")
    temperature: float | None = Field(None, gt=0, description="τ of logsumexp only; default 1.0 (the notebook's)")
    prior: Prior = Field("uniform_hypersphere", description="what swd matches z to (logsumexp: the hypersphere)")
    projections: int | None = Field(None, gt=0, description="swd only: random directions per step; default d")

    @model_validator(mode="after")
    def _fields_agree(self) -> GeneralizedConfig:
        self.build()  # the module's own checks, so a study fails on them before anything runs
        return self

    def build(self) -> nn.Module:
        return GeneralizedContrastive(self.distribution, self.weight, self.temperature, self.prior, self.projections)
