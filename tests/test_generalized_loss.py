"""The generalized contrastive loss (Chen, Luo & Li 2021, Table 1), each part against an independent value."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_BASE, tiny_study
from scipy.optimize import linear_sum_assignment
from scipy.stats import wasserstein_distance

from orchestrator.errors import StudyError
from orchestrator.spec import load_study
from workers import TrialConfig, run_trial
from workers.losses import LOSSES, GeneralizedContrastive
from workers.losses.generalized import orthogonal_projection, sample_prior, sliced_wasserstein


def pair(seed: int, n: int = 6, d: int = 4, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator, dtype=dtype), torch.randn(n, d, generator=generator, dtype=dtype)


# --- alignment ---------------------------------------------------------------------------------

Z1 = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
Z2 = torch.tensor([[0.0, 2.0], [1.0, 1.0]])


def test_alignment_on_the_hypersphere_is_one_minus_mean_cosine_over_d():
    # Normalised: the first pair is orthogonal (cos 0), the second identical (cos 1), so
    # ½·mean over N·d entries of squared differences = (1/d)(1 - mean cos) = ½·½ = 0.25.
    only_alignment = GeneralizedContrastive("logsumexp", weight=0.0)
    assert only_alignment(Z1, Z2).item() == pytest.approx(0.25)
    assert only_alignment(7 * Z1, 0.1 * Z2).item() == pytest.approx(0.25)  # scale does not matter
    assert GeneralizedContrastive("swd", weight=0.0)(Z1, Z2).item() == pytest.approx(0.25)


@pytest.mark.parametrize("prior", ["uniform_hypercube", "gaussian"])
def test_alignment_for_the_hypercube_and_gaussian_uses_raw_z(prior):
    # Raw differences: (3, -2) and (0, 0), squared sum 13, over 2·N·d = 8 (the notebook's mean / 2).
    assert GeneralizedContrastive("swd", weight=0.0, prior=prior)(Z1, Z2).item() == pytest.approx(13 / 8)


# --- logsumexp ---------------------------------------------------------------------------------


def naive_logsumexp_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float, weight: float) -> torch.Tensor:
    """Table 1, row 1, one anchor at a time (scalar torch ops, so autograd gives its gradient too)."""
    n, d = z1.shape
    rows = [v / v.norm() for v in (*z1, *z2)]
    align = sum(((rows[i] - rows[i + n]) ** 2).sum() for i in range(n)) / (2 * n * d)
    distribution = 0
    for a in range(2 * n):
        total = sum(torch.exp(rows[a] @ rows[b] / temperature) for b in range(2 * n))  # every b, a itself too
        distribution = distribution + torch.log(total) - math.log(d)
    return align + weight * distribution / (2 * n)


@pytest.mark.parametrize(("temperature", "weight"), [(0.1, 1.0), (0.5, 0.3), (1.0, 2.0)])
def test_logsumexp_value_and_gradient_match_a_naive_loop(temperature, weight):
    z1, z2 = pair(0)
    ours_inputs = [z1.clone().requires_grad_(), z2.clone().requires_grad_()]
    naive_inputs = [z1.clone().requires_grad_(), z2.clone().requires_grad_()]
    ours = GeneralizedContrastive("logsumexp", weight=weight, temperature=temperature)(*ours_inputs)
    naive = naive_logsumexp_loss(*naive_inputs, temperature, weight)
    assert ours.item() == pytest.approx(naive.item(), rel=1e-10)
    ours.backward()
    naive.backward()
    for mine, theirs in zip(ours_inputs, naive_inputs, strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-9, atol=1e-12)


def naive_full_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    """NT-Xent whose denominator runs over all 2N rows, the anchor itself included."""
    rows = [v / v.norm() for v in (*z1, *z2)]
    n = len(z1)
    total = 0.0
    for a in range(2 * n):
        positive = (a + n) % (2 * n)
        denominator = sum(math.exp(float(rows[a] @ rows[b]) / temperature) for b in range(2 * n))
        total += -math.log(math.exp(float(rows[a] @ rows[positive]) / temperature) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_logsumexp_with_weight_tau_over_d_is_scaled_nt_xent(temperature):
    # λ = τ/d: L = (τ/d)·NT-Xent(all 2N in the denominator) + (1 - τ log d)/d, as the docstring says.
    z1, z2 = pair(1, n=5, d=3)
    d = z1.shape[1]
    ours = GeneralizedContrastive("logsumexp", weight=temperature / d, temperature=temperature)(z1, z2).item()
    expected = temperature / d * naive_full_nt_xent(z1, z2, temperature) + (1 - temperature * math.log(d)) / d
    assert ours == pytest.approx(expected, rel=1e-10)


# --- sliced Wasserstein ------------------------------------------------------------------------


def w2_squared_by_assignment(a: np.ndarray, b: np.ndarray) -> float:
    """Exact W2² between two equal-size uniform 1-D samples: the cheapest one-to-one matching."""
    cost = (a[:, None] - b[None, :]) ** 2
    rows, columns = linear_sum_assignment(cost)
    return float(cost[rows, columns].mean())


def test_each_projection_gives_the_exact_one_dimensional_w2_squared():
    z, _ = pair(2, n=12, d=5)
    samples = sample_prior("gaussian", 12, 5, torch.Generator().manual_seed(3), torch.float64)
    projection = orthogonal_projection(5, 3, torch.Generator().manual_seed(4), torch.float64)
    per_direction = []
    for j in range(3):
        direction = projection[:, j : j + 1]
        a, b = (z @ direction).squeeze(1).numpy(), (samples @ direction).squeeze(1).numpy()
        value = sliced_wasserstein(z, samples, direction).item()
        assert value == pytest.approx(w2_squared_by_assignment(a, b), rel=1e-10)
        assert value == pytest.approx(np.mean((np.sort(a) - np.sort(b)) ** 2), rel=1e-10)
        # Sorting also gives W1 (scipy's wasserstein_distance): the same matching is optimal.
        assert np.mean(np.abs(np.sort(a) - np.sort(b))) == pytest.approx(wasserstein_distance(a, b), rel=1e-10)
        per_direction.append(value)
    assert sliced_wasserstein(z, samples, projection).item() == pytest.approx(np.mean(per_direction), rel=1e-12)


@pytest.mark.parametrize(("dim", "projections"), [(6, 6), (6, 2), (1, 1)])
def test_projection_is_orthogonal(dim, projections):
    p = orthogonal_projection(dim, projections, torch.Generator().manual_seed(dim + projections), torch.float64)
    assert p.shape == (dim, projections)
    torch.testing.assert_close(p.T @ p, torch.eye(projections, dtype=torch.float64))


def test_more_projections_than_dimensions_is_refused():
    with pytest.raises(ValueError, match="between 1 and the feature dimension 4"):
        GeneralizedContrastive("swd", projections=5)(*pair(0, d=4))


def test_prior_samples_have_their_defining_properties():
    generator = torch.Generator().manual_seed(0)
    sphere = sample_prior("uniform_hypersphere", 20000, 8, generator, torch.float64)
    torch.testing.assert_close(sphere.norm(dim=1), torch.ones(20000, dtype=torch.float64))
    assert sphere.mean(0).abs().max() < 0.02
    torch.testing.assert_close(sphere.T @ sphere / 20000, torch.eye(8, dtype=torch.float64) / 8, atol=0.01, rtol=0)
    cube = sample_prior("uniform_hypercube", 20000, 8, generator, torch.float64)
    assert cube.min() >= -1 and cube.max() <= 1
    assert cube.mean(0).abs().max() < 0.02
    assert cube.var(0).sub(1 / 3).abs().max() < 0.02
    gaussian = sample_prior("gaussian", 20000, 8, generator, torch.float64)
    assert gaussian.mean(0).abs().max() < 0.04
    assert gaussian.var(0).sub(1).abs().max() < 0.05


@pytest.mark.parametrize("prior", ["uniform_hypersphere", "uniform_hypercube", "gaussian"])
def test_swd_loss_is_alignment_plus_weighted_swd_with_the_generators_draws(prior):
    z1, z2 = pair(5, n=7, d=4)
    loss = GeneralizedContrastive("swd", weight=2.5, prior=prior, projections=3)
    value = loss(z1, z2, generator=torch.Generator().manual_seed(9)).item()
    # The same draws, in the module's order (projection, then 2N prior samples), from the same seed.
    generator = torch.Generator().manual_seed(9)
    projection = orthogonal_projection(4, 3, generator, torch.float64)
    samples = sample_prior(prior, 14, 4, generator, torch.float64)
    z = torch.cat([z1, z2])
    if prior == "uniform_hypersphere":
        z = z / z.norm(dim=1, keepdim=True)
    align = GeneralizedContrastive("swd", weight=0.0, prior=prior)(z1, z2).item()
    assert value == pytest.approx(align + 2.5 * sliced_wasserstein(z, samples, projection).item(), rel=1e-10)


def test_same_seed_same_loss_different_seed_different_loss():
    z1, z2 = pair(6)
    loss = GeneralizedContrastive("swd", prior="gaussian")

    def at(seed):
        return loss(z1, z2, generator=torch.Generator().manual_seed(seed)).item()

    assert at(0) == at(0)
    assert at(0) != at(1)
    assert math.isfinite(loss(z1, z2).item())  # no generator: torch's default one


def test_swd_gradient_reaches_both_views():
    z1, z2 = (t.requires_grad_() for t in pair(7))
    GeneralizedContrastive("swd", prior="uniform_hypercube")(z1, z2, generator=torch.Generator()).backward()
    assert torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0
    assert torch.isfinite(z2.grad).all() and z2.grad.abs().sum() > 0


# --- configuration -----------------------------------------------------------------------------

INSTANTIATIONS = {
    "logsumexp": "{name: generalized, distribution: logsumexp, temperature: 0.2}",
    "swd_hypersphere": "{name: generalized, distribution: swd, prior: uniform_hypersphere}",
    "swd_hypercube": "{name: generalized, distribution: swd, prior: uniform_hypercube, weight: 2.0}",
    "swd_gaussian": "{name: generalized, distribution: swd, prior: gaussian, projections: 4}",
}


@pytest.mark.parametrize("text", INSTANTIATIONS.values(), ids=INSTANTIATIONS.keys())
def test_each_table_1_instantiation_validates_as_a_trial_loss(text):
    loss = TrialConfig.model_validate({**TINY_BASE, "loss": yaml.safe_load(text)}).loss
    module = loss.build()
    assert isinstance(module, GeneralizedContrastive)
    assert math.isfinite(module(*pair(8, d=8, dtype=torch.float32), generator=torch.Generator()).item())


def test_defaults_leave_the_identity():
    config = LOSSES["generalized"](name="generalized", distribution="swd", prior="uniform_hypersphere", weight=1.0)
    assert config.model_dump(exclude_defaults=True) == {"name": "generalized", "distribution": "swd"}
    assert LOSSES["generalized"](name="generalized").build().temperature == 1.0  # the notebook's default


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"distribution": "swd", "temperature": 0.2}, "temperature is for distribution: logsumexp"),
        ({"prior": "gaussian"}, "logsumexp matches the uniform_hypersphere prior only"),
        ({"projections": 8}, "projections is for distribution: swd"),
        ({"weight": -1.0}, "greater than or equal to 0"),
        ({"distribution": "swd", "projections": 0}, "greater than 0"),
        ({"temperature": 0.0}, "greater than 0"),
        ({"distribution": "swd", "prior": "laplace"}, "uniform_hypersphere"),
    ],
)
def test_bad_fields_are_refused_with_the_reason(fields, message):
    with pytest.raises(ValueError, match=message):
        LOSSES["generalized"](name="generalized", **fields)


def test_module_refuses_bad_arguments():
    with pytest.raises(ValueError, match="distribution must be one of logsumexp, swd"):
        GeneralizedContrastive("mmd")
    with pytest.raises(ValueError, match="weight λ must be at least 0"):
        GeneralizedContrastive(weight=-0.5)
    with pytest.raises(ValueError, match="one shape"):
        GeneralizedContrastive()(torch.randn(4, 3), torch.randn(5, 3))


def test_a_study_names_the_key_of_a_mismatched_field(write_study):
    base = {**TINY_BASE, "loss": {"name": "generalized", "distribution": "swd", "temperature": 0.2}}
    with pytest.raises(StudyError) as caught:
        load_study(write_study(tiny_study(base=base, sweep={"seeds": [0]})))
    text = str(caught.value)
    assert "\n" not in text
    assert "base.loss" in text and "temperature is for distribution: logsumexp" in text


def test_every_registered_loss_takes_the_generator():
    # The call contract of workers.losses.base: loss(z1, z2, generator=...).
    z1, z2 = pair(9, dtype=torch.float32)
    for name in ("nt_xent", "generalized"):
        module = LOSSES[name](name=name).build()
        assert math.isfinite(module(z1, z2, generator=torch.Generator()).item())


# --- end to end --------------------------------------------------------------------------------


def test_swd_trial_trains_through_the_shared_trainer(tmp_path):
    config = TrialConfig.model_validate(
        {**TINY_BASE, "loss": {"name": "generalized", "distribution": "swd", "prior": "uniform_hypersphere"}}
    )
    epochs = []
    metrics = run_trial(config, data_root=tmp_path, device="cpu", on_epoch=lambda e, m: epochs.append(m))
    assert len(epochs) == 2
    assert all(math.isfinite(m["train/loss"]) for m in epochs)
    assert 0 <= metrics["linear_acc/first_digit"] <= 100


def test_simclr_hands_the_trials_generator_to_the_loss(tmp_path):
    config = TrialConfig.model_validate({**TINY_BASE, "loss": {"name": "generalized", "distribution": "swd"}})
    dataset = config.data.build(tmp_path, torch.device("cpu"))
    method = config.method.build(config, dataset)
    received = []

    class Spy(torch.nn.Module):
        def __init__(self, loss):
            super().__init__()
            self.loss = loss

        def forward(self, z1, z2, generator=None):
            received.append(generator)
            return self.loss(z1, z2, generator=generator)

    method.loss = Spy(method.loss)
    generator = torch.Generator().manual_seed(0)
    loss, _ = method.objective(dataset.train.images(torch.arange(8)), {}, generator)
    assert received == [generator] and math.isfinite(loss.item())
