"""SimCLR's loss table (Table 2, Table 4, Table 5): NT-Logistic, margin triplet, NT-Xent without ℓ2 norm.

Each loss against a naive loop over anchors and candidates written here (value and gradient,
float64), against hand-computed two-image cases, and its gradient against finite differences.
"""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from workers.config import TrialConfig
from workers.losses import LOSSES, MarginTriplet, NTLogistic, NTXent
from workers.losses.semi_hard import semi_hard_negative

# --- naive references: one anchor, one candidate at a time ------------------------------------


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum() / (a.pow(2).sum().sqrt() * b.pow(2).sum().sqrt())


def naive_triples(z1: torch.Tensor, z2: torch.Tensor, semi_hard: bool) -> list[tuple[torch.Tensor, list]]:
    """Per anchor (view 1's, then view 2's): its positive's similarity and the negatives it scores.

    Negatives come from the other view only. Semi-hard: the most similar negative that is less
    similar than the positive; if there is none, the least similar negative.
    """
    n = len(z1)
    triples = []
    for anchors, candidates in ((z1, z2), (z2, z1)):
        for i in range(n):
            positive = cosine(anchors[i], candidates[i])
            negatives = [cosine(anchors[i], candidates[k]) for k in range(n) if k != i]
            if semi_hard:
                farther = [s for s in negatives if s.item() < positive.item()]
                if farther:
                    negatives = [max(farther, key=lambda s: s.item())]
                else:
                    negatives = [min(negatives, key=lambda s: s.item())]
            triples.append((positive, negatives))
    return triples


def naive_nt_logistic(z1, z2, temperature: float, semi_hard: bool) -> torch.Tensor:
    """Mean over (anchor, positive, negative) triples of -[log σ(s+/τ) + log σ(-s-/τ)]."""
    per_anchor = []
    for positive, negatives in naive_triples(z1, z2, semi_hard):
        terms = [
            -(torch.log(torch.sigmoid(positive / temperature)) + torch.log(torch.sigmoid(-negative / temperature)))
            for negative in negatives
        ]
        per_anchor.append(sum(terms) / len(terms))
    return sum(per_anchor) / len(per_anchor)


def naive_margin_triplet(z1, z2, margin: float, semi_hard: bool) -> torch.Tensor:
    """Mean over (anchor, positive, negative) triples of max(s- - s+ + m, 0)."""
    per_anchor = []
    for positive, negatives in naive_triples(z1, z2, semi_hard):
        terms = [torch.clamp(negative - positive + margin, min=0.0) for negative in negatives]
        per_anchor.append(sum(terms) / len(terms))
    return sum(per_anchor) / len(per_anchor)


def naive_dot_nt_xent(z1, z2, temperature: float, negatives: str) -> torch.Tensor:
    """NT-Xent on plain dot products (no ℓ2 norm), one anchor at a time."""
    n = len(z1)
    total = 0.0
    if negatives == "all":
        z = torch.cat([z1, z2])
        for i in range(2 * n):
            positive = (i + n) % (2 * n)
            denominator = sum(torch.exp(z[i] @ z[k] / temperature) for k in range(2 * n) if k != i)
            total = total - torch.log(torch.exp(z[i] @ z[positive] / temperature) / denominator)
    else:
        for anchors, others in ((z1, z2), (z2, z1)):
            for i in range(n):
                denominator = sum(torch.exp(anchors[i] @ others[k] / temperature) for k in range(n))
                total = total - torch.log(torch.exp(anchors[i] @ others[i] / temperature) / denominator)
    return total / (2 * n)


def projections(seed: int, n: int = 5, d: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=generator, dtype=torch.float64)
    z2 = z1 + 2 * torch.randn(n, d, generator=generator, dtype=torch.float64)
    return z1.requires_grad_(), z2.requires_grad_()


def value_and_gradient(loss_fn, z1, z2) -> tuple[float, torch.Tensor, torch.Tensor]:
    z1, z2 = z1.detach().clone().requires_grad_(), z2.detach().clone().requires_grad_()
    loss = loss_fn(z1, z2)
    g1, g2 = torch.autograd.grad(loss, (z1, z2))
    return loss.item(), g1, g2


def assert_matches_loop(module, naive, z1, z2) -> None:
    ours, g1, g2 = value_and_gradient(module, z1, z2)
    theirs, n1, n2 = value_and_gradient(naive, z1, z2)
    assert ours == pytest.approx(theirs, rel=1e-10, abs=1e-12)
    torch.testing.assert_close(g1, n1, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(g2, n2, rtol=1e-9, atol=1e-12)
    assert g1.abs().sum() > 0  # the loss has a gradient to compare


def test_random_projections_cover_both_semi_hard_cases():
    # The loop tests below mean something for mining only if the data they use has anchors of
    # every kind: with no semi-hard negative (the fallback), and with negatives on both sides of
    # the positive (mining drops some).
    for seed in (0, 1, 2):
        z1, z2 = projections(seed)
        farther = [sum(s.item() < p.item() for s in negs) for p, negs in naive_triples(z1, z2, False)]
        assert 0 in farther and any(0 < count < 4 for count in farther), seed


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("semi_hard", [False, True])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_logistic_matches_naive_loop(seed, semi_hard, temperature):
    z1, z2 = projections(seed)
    assert_matches_loop(
        NTLogistic(temperature, semi_hard=semi_hard),
        lambda a, b: naive_nt_logistic(a, b, temperature, semi_hard),
        z1,
        z2,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("semi_hard", [False, True])
@pytest.mark.parametrize("margin", [0.4, 0.8, 1.6])
def test_margin_triplet_matches_naive_loop(seed, semi_hard, margin):
    z1, z2 = projections(seed)
    assert_matches_loop(
        MarginTriplet(margin, semi_hard=semi_hard),
        lambda a, b: naive_margin_triplet(a, b, margin, semi_hard),
        z1,
        z2,
    )


@pytest.mark.parametrize("negatives", ["all", "cross_view"])
@pytest.mark.parametrize("temperature", [0.5, 10.0, 100.0])
def test_nt_xent_without_normalisation_matches_naive_loop(negatives, temperature):
    z1, z2 = projections(3, n=4, d=3)
    assert_matches_loop(
        NTXent(temperature, negatives=negatives, normalize=False),
        lambda a, b: naive_dot_nt_xent(a, b, temperature, negatives),
        z1,
        z2,
    )
    # It is not the normalised loss: the scale of z now matters.
    ours = NTXent(temperature, negatives=negatives, normalize=False)
    assert ours(z1, z2).item() != pytest.approx(ours(3 * z1, z2).item(), rel=1e-6)


@pytest.mark.parametrize("semi_hard", [False, True])
def test_gradients_match_finite_differences(semi_hard):
    z1, z2 = projections(4)
    for loss in (NTLogistic(0.2, semi_hard), MarginTriplet(0.8, semi_hard), NTXent(10.0, normalize=False)):
        assert torch.autograd.gradcheck(lambda a, b, loss=loss: loss(a, b), (z1, z2), eps=1e-6, atol=1e-7)


# --- hand-computed two-image cases ------------------------------------------------------------


def two_images() -> tuple[torch.Tensor, torch.Tensor]:
    # View 1: e1, e2. View 2: (3, 4) and (4, 3), of length 5. Every anchor then has positive
    # similarity 0.6 and its one negative similarity 0.8 (e1·(4,3)/5, e2·(3,4)/5, and back).
    return torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[3.0, 4.0], [4.0, 3.0]])


@pytest.mark.parametrize("semi_hard", [False, True])
def test_nt_logistic_two_images_by_hand(semi_hard):
    # -log σ(0.6/τ) - log σ(-0.8/τ) = log(1 + e^{-0.6/τ}) + log(1 + e^{0.8/τ}) for every anchor;
    # with one negative, which is not farther than the positive, mining keeps that same one.
    tau = 0.5
    expected = math.log1p(math.exp(-0.6 / tau)) + math.log1p(math.exp(0.8 / tau))
    assert NTLogistic(tau, semi_hard)(*two_images()).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("semi_hard", [False, True])
def test_margin_triplet_two_images_by_hand(semi_hard):
    z1, z2 = two_images()
    assert MarginTriplet(0.4, semi_hard)(z1, z2).item() == pytest.approx(0.8 - 0.6 + 0.4, rel=1e-6)
    assert MarginTriplet(0.0, semi_hard)(z1, z2).item() == pytest.approx(0.2, rel=1e-6)
    # Swap view 2's rows: positives 0.8, negatives 0.6, so the margin 0.2 is already met at m = 0.2.
    assert MarginTriplet(0.2, semi_hard)(z1, z2.flip(0)).item() == pytest.approx(0.0, abs=1e-6)
    assert MarginTriplet(0.4, semi_hard)(z1, z2.flip(0)).item() == pytest.approx(0.2, rel=1e-5)


def test_nt_xent_without_normalisation_two_images_by_hand():
    # z = e1, e2 | 2e1, e2. Dot products: e1·2e1 = 2, e2·e2 = 1, everything else 0. Anchors e1
    # and 2e1 see their positive at 2 and two negatives at 0, anchors e2 (twice) at 1 and 0, 0:
    # L = ½[log(1 + 2e^{-2/τ}) + log(1 + 2e^{-1/τ})]. Normalised, every positive is at 1.
    z1, z2 = torch.eye(2), torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    tau = 0.5
    expected = 0.5 * (math.log1p(2 * math.exp(-2 / tau)) + math.log1p(2 * math.exp(-1 / tau)))
    assert NTXent(tau, normalize=False)(z1, z2).item() == pytest.approx(expected, rel=1e-6)
    assert NTXent(tau)(z1, z2).item() == pytest.approx(math.log1p(2 * math.exp(-1 / tau)), rel=1e-6)


# --- semi-hard mining, by hand -----------------------------------------------------------------


def test_semi_hard_negative_picks_the_closest_farther_one_else_the_least_similar():
    positive = torch.tensor([0.5, 0.1, 0.3])
    negatives = torch.tensor([[0.2, 0.4, 0.9], [0.3, 0.6, 0.2], [0.35, 0.1, 0.3]], requires_grad=True)
    chosen = semi_hard_negative(positive, negatives)
    # Row 0: 0.2 and 0.4 are below 0.5, 0.4 is the closest. Row 1: none is below 0.1, so the
    # least similar, 0.2. Row 2: 0.3 ties the positive (not farther), 0.1 is the only one below.
    assert chosen.tolist() == pytest.approx([0.4, 0.2, 0.1])
    chosen.sum().backward()
    assert negatives.grad.tolist() == [[0, 1, 0], [0, 0, 1], [0, 1, 0]]


def test_anchor_without_semi_hard_negative_uses_its_least_similar_negative():
    # Unit vectors at these angles (degrees): each view-2 row sits nearly opposite its view-1 row,
    # so every anchor's positive is its least similar candidate and no negative is farther.
    # Each anchor then scores its least similar negative (a term of at least m), not nothing.
    first, second = [0, 100, 250], [175, 290, 60]

    def unit(degrees: float) -> list[float]:
        return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]

    z1, z2 = torch.tensor([unit(a) for a in first]), torch.tensor([unit(a) for a in second])
    anchors = [(first[i], second) for i in range(3)] + [(second[i], first) for i in range(3)]
    margin, tau = 0.5, 0.5
    margin_terms, logistic_terms, hardest_terms = [], [], []
    for i, (angle, candidates) in enumerate(anchors):
        positive = math.cos(math.radians(angle - candidates[i % 3]))
        negatives = [math.cos(math.radians(angle - c)) for k, c in enumerate(candidates) if k != i % 3]
        assert all(s > positive for s in negatives)  # no semi-hard negative for any anchor
        margin_terms.append(min(negatives) - positive + margin)
        hardest_terms.append(max(negatives) - positive + margin)
        logistic_terms.append(math.log1p(math.exp(-positive / tau)) + math.log1p(math.exp(min(negatives) / tau)))
    expected = sum(margin_terms) / 6
    assert MarginTriplet(margin, semi_hard=True)(z1, z2).item() == pytest.approx(expected, rel=1e-5)
    assert NTLogistic(tau, semi_hard=True)(z1, z2).item() == pytest.approx(sum(logistic_terms) / 6, rel=1e-5)
    # Neither of the other conventions: dropping such anchors (0) or taking the hardest negative.
    assert expected > margin and expected != pytest.approx(sum(hardest_terms) / 6, rel=1e-3)


def test_semi_hard_mining_changes_the_loss():
    z1, z2 = projections(0, n=6)
    for full, mined in ((NTLogistic(0.2), NTLogistic(0.2, True)), (MarginTriplet(0.8), MarginTriplet(0.8, True))):
        assert full(z1, z2).item() != pytest.approx(mined(z1, z2).item(), rel=1e-3)


# --- arguments and configs ----------------------------------------------------------------------


def test_bad_arguments_are_rejected_with_clear_messages():
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        NTLogistic(0.0)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        NTLogistic(float("inf"))
    with pytest.raises(ValueError, match="margin must be a finite number"):
        MarginTriplet(-0.1)
    with pytest.raises(ValueError, match="semi_hard must be true or false"):
        MarginTriplet(0.4, semi_hard="yes")
    with pytest.raises(ValueError, match="normalize must be true or false"):
        NTXent(0.5, normalize=None)
    for loss in (NTLogistic(), MarginTriplet()):
        with pytest.raises(ValueError, match="one shape"):
            loss(torch.randn(4, 3), torch.randn(5, 3))
        with pytest.raises(ValueError, match="at least 2 images"):
            loss(torch.randn(1, 3), torch.randn(1, 3))


def test_configs_register_build_and_keep_defaults_out_of_the_identity():
    logistic = LOSSES["nt_logistic"](name="nt_logistic", temperature=0.2, semi_hard=True).build()
    assert isinstance(logistic, NTLogistic) and (logistic.temperature, logistic.semi_hard) == (0.2, True)
    margin = LOSSES["margin_triplet"](name="margin_triplet", margin=1.6).build()
    assert isinstance(margin, MarginTriplet) and (margin.margin, margin.semi_hard) == (1.6, False)
    with pytest.raises(ValidationError):
        LOSSES["margin_triplet"](name="margin_triplet", margin=-1)
    with pytest.raises(ValidationError):
        LOSSES["nt_logistic"](name="nt_logistic", temperature=0)

    base = {"data": {"name": "digit_pair"}, "method": "simclr"}
    plain = TrialConfig.model_validate({**base, "loss": {"name": "nt_xent", "temperature": 0.2}})
    explicit = TrialConfig.model_validate({**base, "loss": {"name": "nt_xent", "temperature": 0.2, "normalize": True}})
    assert plain.identity() == explicit.identity() and "normalize" not in plain.identity()["loss"]
    assert plain.loss.build().normalize is True
    unnormalised = TrialConfig.model_validate({**base, "loss": {"name": "nt_xent", "normalize": False}})
    assert unnormalised.identity()["loss"] == {"name": "nt_xent", "normalize": False}
    trial = TrialConfig.model_validate({**base, "loss": {"name": "margin_triplet", "semi_hard": True}})
    assert isinstance(trial.loss.build(), MarginTriplet)
