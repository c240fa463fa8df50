"""NT-Xent against a naive double loop and against a closed form."""

from __future__ import annotations

import math

import pytest
import torch

from workers.losses import NTXent


def naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    """SimCLR eq. 1, one anchor at a time, in float64 Python arithmetic."""
    z = torch.cat([z1, z2]).double()
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        def sim(a, b):
            return float(z[a] @ z[b] / (z[a].norm() * z[b].norm()))
        denominator = sum(math.exp(sim(i, k) / temperature) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(sim(i, positive) / temperature) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.05, 0.2, 1.0])
def test_nt_xent_matches_naive_loop(temperature):
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    ours = NTXent(temperature)(z1, z2).item()
    assert ours == pytest.approx(naive_nt_xent(z1, z2, temperature), rel=1e-5)


def test_nt_xent_closed_form_for_identical_orthogonal_pairs():
    # Two images, views identical, the images orthogonal: for each anchor the positive has
    # similarity 1 and the two negatives similarity 0, so the loss is
    # -log(e^{1/τ} / (e^{1/τ} + 2)).
    z = torch.eye(2)
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2))
    assert NTXent(tau)(z, z).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_ignores_scale_of_projections():
    z1, z2 = torch.randn(4, 3), torch.randn(4, 3)
    assert NTXent(0.3)(z1, z2).item() == pytest.approx(NTXent(0.3)(5 * z1, 0.1 * z2).item(), rel=1e-5)


def test_nt_xent_rejects_bad_arguments():
    with pytest.raises(ValueError, match="temperature must be positive"):
        NTXent(0.0)
    with pytest.raises(ValueError, match="one shape"):
        NTXent(0.5)(torch.randn(4, 3), torch.randn(5, 3))


def naive_cross_view_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    """The notebooks' loss, one anchor at a time: candidates are the other view's N images only."""
    n = len(z1)

    def sim(a, b):
        return float(a.double() @ b.double() / (a.double().norm() * b.double().norm()))

    total = 0.0
    for anchors, others in ((z1, z2), (z2, z1)):
        for i in range(n):
            denominator = sum(math.exp(sim(anchors[i], others[k]) / temperature) for k in range(n))
            total += -math.log(math.exp(sim(anchors[i], others[i]) / temperature) / denominator)
    return total / (2 * n)  # the mean of the two directions' means


@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5])
def test_cross_view_nt_xent_matches_naive_loop(temperature):
    generator = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(7, 4, generator=generator), torch.randn(7, 4, generator=generator)
    ours = NTXent(temperature, negatives="cross_view")(z1, z2).item()
    assert ours == pytest.approx(naive_cross_view_nt_xent(z1, z2, temperature), rel=1e-5)
    # It differs from SimCLR's loss, whose candidates include the anchor's own view.
    assert ours != pytest.approx(NTXent(temperature)(z1, z2).item(), rel=1e-3)


def test_cross_view_closed_form_for_identical_orthogonal_pairs():
    # N orthogonal images, both views identical: each anchor sees its positive at similarity 1
    # and N-1 negatives at 0, so both directions give -log(e^{1/τ} / (e^{1/τ} + N - 1)).
    n, tau = 3, 0.2
    z = torch.eye(n)
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + n - 1))
    assert NTXent(tau, negatives="cross_view")(z, z).item() == pytest.approx(expected, rel=1e-6)


def test_negatives_default_keeps_the_config_identity():
    from workers.losses import LOSSES

    config = LOSSES["nt_xent"](name="nt_xent", temperature=0.2)
    assert config.model_dump(exclude_defaults=True) == {"name": "nt_xent", "temperature": 0.2}
    assert config.build().negatives == "all"
    with pytest.raises(ValueError, match="negatives must be"):
        NTXent(0.5, negatives="same_view")
