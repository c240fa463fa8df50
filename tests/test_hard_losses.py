"""Wang & Liu's hard contrastive, simple and hard-simple losses against naive loops over anchors."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from conftest import TINY_BASE
from pydantic import ValidationError

from workers import TrialConfig
from workers.losses import LOSSES, HardContrastive, NTXent, Simple


def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b) / (a.norm() * b.norm())


def anchors(z1, z2, negatives=None, exclude=None):
    """(positive similarity, [negative similarities]) of every anchor, one at a time."""
    if negatives is None:  # in-batch: 2N anchors, the other view positive, the other 2N − 2 negatives
        z, n = torch.cat([z1, z2]), len(z1)
        for i in range(2 * n):
            partner = (i + n) % (2 * n)
            yield cos(z[i], z[partner]), [cos(z[i], z[k]) for k in range(2 * n) if k not in (i, partner)]
    else:
        for i in range(len(z1)):
            own = None if exclude is None else int(exclude[i])
            yield cos(z1[i], z2[i]), [cos(z1[i], v) for j, v in enumerate(negatives) if j != own]


def kept(negatives: list, top_k: int | None = None, quantile: float | None = None) -> list:
    """The negatives at or above the count-th largest, count = K or ⌈α·M⌉ (exact), or all."""
    values = sorted((s.item() for s in negatives), reverse=True)
    count = len(values)
    if top_k is not None:
        count = min(top_k, count)
    if quantile is not None:
        count = min(max(1, math.ceil(Fraction(str(quantile)) * len(values))), len(values))
    return [s for s in negatives if s.item() >= values[count - 1]]


def naive_hard(z1, z2, temperature, top_k=None, quantile=None, negatives=None, exclude=None):
    total, count = 0.0, 0
    for positive, negs in anchors(z1, z2, negatives, exclude):
        chosen = kept(negs, top_k, quantile)
        denominator = torch.exp(positive / temperature) + sum(torch.exp(s / temperature) for s in chosen)
        total = total - torch.log(torch.exp(positive / temperature) / denominator)
        count += 1
    return total / count


def naive_simple(z1, z2, weight, top_k=None, negatives=None, exclude=None):
    total, count = 0.0, 0
    for positive, negs in anchors(z1, z2, negatives, exclude):
        chosen = kept(negs, top_k)
        total = total - positive + weight * sum(chosen) / len(chosen)
        count += 1
    return total / count


def inputs(n=5, d=4, bank=None, seed=0):
    """float64 z1, z2 (requiring gradients), and optionally a bank with distinct rows ``index``."""
    generator = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=generator, dtype=torch.float64).requires_grad_()
    if bank is None:
        z2 = torch.randn(n, d, generator=generator, dtype=torch.float64).requires_grad_()
        return z1, z2, None, None
    negatives = torch.randn(bank, d, generator=generator, dtype=torch.float64)
    index = torch.randperm(bank, generator=generator)[:n]
    return z1, negatives[index], negatives, index


def assert_same(ours, reference, wrt):
    assert ours.item() == pytest.approx(reference.item(), rel=1e-10, abs=1e-12)
    for mine, theirs in zip(torch.autograd.grad(ours, wrt), torch.autograd.grad(reference, wrt), strict=True):
        assert torch.allclose(mine, theirs, rtol=1e-9, atol=1e-12)


SELECTIONS = {"top_k_3": {"top_k": 3}, "quantile_0.3": {"quantile": 0.3}, "quantile_0.05": {"quantile": 0.05}}


@pytest.mark.parametrize("temperature", [0.1, 0.7])
@pytest.mark.parametrize("selection", SELECTIONS.values(), ids=SELECTIONS.keys())
def test_hard_contrastive_in_batch_matches_loop(selection, temperature):
    z1, z2, _, _ = inputs()  # 10 anchors, 8 negatives each: top 3, ⌈2.4⌉ = 3, ⌈0.4⌉ = 1
    ours = HardContrastive(temperature, **selection)(z1, z2)
    assert_same(ours, naive_hard(z1, z2, temperature, **selection), (z1, z2))


@pytest.mark.parametrize("selection", [*SELECTIONS.values(), {"quantile": 0.25}], ids=[*SELECTIONS, "quantile_0.25"])
def test_hard_contrastive_against_a_bank_matches_loop(selection):
    z1, z2, bank, index = inputs(n=4, bank=12)  # 11 negatives per anchor; 0.25 · 11 → 3
    ours = HardContrastive(0.2, **selection)(z1, z2, negatives=bank, exclude=index)
    assert_same(ours, naive_hard(z1, z2, 0.2, negatives=bank, exclude=index, **selection), (z1,))


def test_quantile_count_is_the_papers_4095():
    from workers.losses.hardness import quantile_count

    assert quantile_count(0.0819, 49_999) == 4095 and quantile_count(0.0819, 50_000) == 4095
    assert quantile_count(0.25, 8) == 2 and quantile_count(0.001, 8) == 1 and quantile_count(1.0, 8) == 8


def test_ties_at_the_threshold_are_kept():
    z1, _, bank, index = inputs(n=3, bank=8, seed=3)
    bank = torch.cat([bank, bank])  # every negative twice: top 1 keeps both copies of the nearest
    z2 = bank[index]
    ours = HardContrastive(0.5, top_k=1)(z1, z2, negatives=bank, exclude=index)
    reference = naive_hard(z1, z2, 0.5, top_k=1, negatives=bank, exclude=index)
    assert_same(ours, reference, (z1,))
    # Without exclusion the anchor's own entry (= its positive) is a negative too.
    with_own = HardContrastive(0.5, top_k=1)(z1, z2, negatives=bank)
    assert with_own.item() == pytest.approx(naive_hard(z1, z2, 0.5, top_k=1, negatives=bank).item(), rel=1e-10)


def test_hard_contrastive_keeping_everything_is_nt_xent():
    z1, z2, _, _ = inputs(n=6)
    for keep_all in ({"top_k": 10}, {"top_k": 500}, {"quantile": 1.0}, {}):
        ours = HardContrastive(0.3, **keep_all)(z1, z2)
        assert ours.item() == pytest.approx(NTXent(0.3)(z1, z2).item(), rel=1e-10)
    # And it only keeps fewer negatives, so it is never above the normal loss.
    assert HardContrastive(0.3, top_k=2)(z1, z2).item() < NTXent(0.3)(z1, z2).item()


@pytest.mark.parametrize("top_k", [None, 1, 3])
@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_simple_losses_match_loop(top_k, weight):
    z1, z2, _, _ = inputs()
    assert_same(Simple(weight, top_k)(z1, z2), naive_simple(z1, z2, weight, top_k), (z1, z2))
    z1, z2, bank, index = inputs(n=4, bank=9, seed=1)
    ours = Simple(weight, top_k)(z1, z2, negatives=bank, exclude=index)
    assert_same(ours, naive_simple(z1, z2, weight, top_k, negatives=bank, exclude=index), (z1,))


def test_simple_closed_form():
    # Two orthogonal images, views identical: s_ii = 1, the one negative of each anchor s = 0 (in-batch:
    # anchor i's negatives are the other image's two views, both at 0), so the loss is −1.
    z = torch.eye(2)
    assert Simple(1.0)(z, z).item() == pytest.approx(-1.0)
    # Against a bank of e1, e2, −e1 with e1 the anchor's own entry: negatives 0 and −1, mean −1/2.
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    anchor = torch.tensor([[2.0, 0.0]])
    own = torch.tensor([0])
    assert Simple(2.0)(anchor, bank[own], negatives=bank, exclude=own).item() == pytest.approx(-1.0 + 2.0 * -0.5)
    assert Simple(2.0, top_k=1)(anchor, bank[own], negatives=bank, exclude=own).item() == pytest.approx(-1.0)


def test_configs_build_and_check():
    hard = LOSSES["hard_contrastive"].model_validate({"name": "hard_contrastive", "quantile": 0.0819})
    assert (hard.temperature, hard.quantile, hard.top_k, hard.takes_negatives) == (0.07, 0.0819, None, True)
    assert isinstance(hard.build(), HardContrastive) and hard.build().quantile == 0.0819
    for bad in ({}, {"quantile": 0.1, "top_k": 5}):
        with pytest.raises(ValidationError, match="exactly one of quantile"):
            LOSSES["hard_contrastive"].model_validate({"name": "hard_contrastive", **bad})
    with pytest.raises(ValidationError):
        LOSSES["hard_contrastive"].model_validate({"name": "hard_contrastive", "quantile": 1.5})
    hard_simple = LOSSES["hard_simple"].model_validate({"name": "hard_simple"})
    assert (hard_simple.top_k, hard_simple.weight) == (4095, 1.0) and hard_simple.build().top_k == 4095
    assert LOSSES["simple"].model_validate({"name": "simple"}).build().top_k is None
    assert not LOSSES["nt_xent"].takes_negatives and not LOSSES["generalized"].takes_negatives
    with pytest.raises(ValueError, match="not both"):
        HardContrastive(0.5, top_k=2, quantile=0.5)
    with pytest.raises(ValueError, match="nothing to exclude"):
        HardContrastive(0.5, top_k=2)(torch.randn(3, 2), torch.randn(3, 2), exclude=torch.arange(3))


def test_existing_trials_keep_their_hashes():
    from orchestrator.expansion import trial_hash

    # Computed with the code before these losses (and the memory bank) existed.
    expected = {
        "simclr": ({}, "f365cb69f096136d"),
        "moco": ({"method": {"name": "moco", "queue_size": 128}}, "60703fe19085cd9b"),
        "cifar10": ({"data": {"name": "classification", "source": "cifar10"}, "eval": {"linear": {"steps": 20}}},
                    "3835abbecf9929bc"),
    }
    for name, (changes, digest) in expected.items():
        assert trial_hash(TrialConfig.model_validate({**TINY_BASE, **changes})) == digest, name
