"""Each measurement of ``workers.measures`` against a value derived by hand, in closed form or by a naive loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workers.measures import (
    alignment,
    contrastive_statistics,
    knn_accuracy,
    positive_and_negative_similarities,
    save_similarities,
    tolerance,
    uniformity,
)


def naive_contrast(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float, normalize: bool = True, cross_view: bool = False
):
    """Anchor by anchor: its 2N − 1 candidates (cross_view: the other view's N), InfoNCE with its one
    positive, entropy, top-1."""
    z = torch.cat([z1, z2]).double()
    if normalize:
        z = z / z.norm(dim=1, keepdim=True)
    n2 = len(z)
    losses, entropies, hits = [], [], 0
    for i in range(n2):
        positive = (i + n2 // 2) % n2
        others = [k for k in range(n2) if k != i]
        if cross_view:  # only the other view's projections
            others = [k for k in others if (k < n2 // 2) != (i < n2 // 2)]
        scores = [float(z[i] @ z[k]) / temperature for k in others]
        denominator = sum(math.exp(s) for s in scores)
        p = [math.exp(s) / denominator for s in scores]
        losses.append(-math.log(p[others.index(positive)]))
        entropies.append(-sum(q * math.log(q) for q in p))
        hits += others[max(range(len(scores)), key=scores.__getitem__)] == positive
    k = len(others)
    return {
        "contrast/entropy": sum(entropies) / n2,
        "contrast/accuracy": 100.0 * hits / n2,
        "i_nce": math.log(k) - sum(losses) / n2,
    }


def test_equal_similarities_give_entropy_log_k_and_no_information():
    z = torch.ones(4, 3)  # every projection the same: every candidate scores alike
    stats = contrastive_statistics(z, z.clone(), temperature=0.1)
    assert stats["contrast/entropy"] == pytest.approx(math.log(7), abs=1e-5)  # K = 2·4 − 1
    assert stats["i_nce"] == pytest.approx(0.0, abs=1e-5)  # L_NCE = log K


def test_contrastive_accuracy_by_hand():
    # Anchors (1,0), (0,1), (1,.1), (−1,0); positives 0↔2, 1↔3. Cosines from anchor (0,1): to (1,0) 0, to
    # (1,.1) 0.0995, to its positive (−1,0) 0: wrong. The other three anchors rank their positive first.
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.1], [-1.0, 0.0]])
    assert contrastive_statistics(z1, z2, temperature=0.5)["contrast/accuracy"] == pytest.approx(75.0)


@pytest.mark.parametrize("normalize", [True, False])
def test_contrastive_statistics_match_a_loop_over_anchors(normalize):
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 4, generator=generator), torch.randn(5, 4, generator=generator)
    z2 = z2 + 2 * z1  # some positives win, some do not
    ours = contrastive_statistics(z1, z2, temperature=0.3, normalize=normalize)
    expected = naive_contrast(z1, z2, temperature=0.3, normalize=normalize)
    assert 0 < expected["contrast/accuracy"] < 100
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, rel=1e-4, abs=1e-4), name


def test_cross_view_contrast_matches_a_loop_over_anchors():
    generator = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    z2 = z2 + 1.5 * z1
    ours = contrastive_statistics(z1, z2, temperature=0.2, cross_view=True)
    expected = naive_contrast(z1, z2, temperature=0.2, cross_view=True)
    assert 0 < expected["contrast/accuracy"] < 100
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, rel=1e-4, abs=1e-4), name
    # K = N: equal scores everywhere give entropy log N, and I_NCE 0.
    flat = contrastive_statistics(torch.ones(6, 2), torch.ones(6, 2), temperature=0.5, cross_view=True)
    assert flat["contrast/entropy"] == pytest.approx(math.log(6))
    assert flat["i_nce"] == pytest.approx(0.0, abs=1e-6)


def test_uniformity_of_antipodal_points_and_a_regular_simplex():
    # Two antipodal points: ‖x − y‖² = 4, so −log e^{−4t} = 4t.
    assert uniformity(torch.tensor([[3.0, 0.0], [-0.5, 0.0]]), t=2.0) == pytest.approx(8.0)
    # The d + 1 vertices of a regular simplex on the sphere: cos = −1/d, ‖x − y‖² = 2 + 2/d for every pair.
    d = 4
    vertices = F.normalize(torch.eye(d + 1) - 1 / (d + 1), dim=1)
    assert uniformity(vertices, t=2.0) == pytest.approx(2.0 * (2 + 2 / d), rel=1e-5)
    assert uniformity(vertices, t=0.5, chunk=2) == pytest.approx(0.5 * (2 + 2 / d), rel=1e-5)


def test_uniformity_matches_a_loop_over_distinct_pairs():
    features = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    f = F.normalize(features.double(), dim=1)
    terms = [math.exp(-2.0 * float((f[i] - f[j]).pow(2).sum())) for i in range(7) for j in range(7) if i != j]
    assert uniformity(features, t=2.0, chunk=3) == pytest.approx(-math.log(sum(terms) / len(terms)), rel=1e-5)


def test_tolerance_by_hand():
    # Class 0: (1,0) and (.6,.8), cosine .6; class 1: (0,2) and (0,−1), cosine −1; class 2 alone: no pair.
    features = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 2.0], [0.0, -1.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    assert tolerance(features, labels) == pytest.approx((0.6 + 0.6 - 1 - 1) / 4)


def test_alignment_by_hand():
    # Orthogonal views: ‖(1,0) − (0,1)‖² = 2; identical directions: 0; the mean is 1.
    first = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    second = torch.tensor([[0.0, 5.0], [2.0, 2.0]])
    assert alignment(first, second) == pytest.approx(1.0)


def naive_knn(train, train_labels, test, test_labels, classes, k, temperature):
    """Query by query: sort every train feature by cosine, take k, add exp(s/τ) per class, take the best."""
    hits = 0
    for query, label in zip(test, test_labels, strict=True):
        cosines = [(float(F.cosine_similarity(query, row, dim=0)), int(y)) for row, y in zip(train, train_labels,
                                                                                          strict=True)]
        cosines.sort(key=lambda pair: -pair[0])
        votes = [0.0] * classes
        for similarity, y in cosines[:k]:
            votes[y] += math.exp(similarity / temperature)
        hits += max(range(classes), key=votes.__getitem__) == int(label)
    return 100.0 * hits / len(test)


def test_knn_matches_a_loop_over_queries():
    generator = torch.Generator().manual_seed(2)
    train, test = torch.randn(40, 5, generator=generator), torch.randn(17, 5, generator=generator)
    classes = {"a": 3, "b": 4}
    labels = {t: torch.randint(0, c, (40,), generator=generator) for t, c in classes.items()}
    test_labels = {t: torch.randint(0, c, (17,), generator=generator) for t, c in classes.items()}
    ours = knn_accuracy(train, labels, test, test_labels, classes, k=7, temperature=0.2, chunk=5)
    for t, c in classes.items():
        assert ours[t] == pytest.approx(naive_knn(train, labels[t], test, test_labels[t], c, 7, 0.2))


def test_knn_votes_are_weighted_by_similarity():
    # Two far neighbours of class 0 against one near neighbour of class 1: a plain majority says 0,
    # exp(s/τ) at τ = 0.07 says 1 (e^{1/.07} ≫ 2·e^{0.5/.07}); at τ = 100 the weights are nearly equal: 0.
    train = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(0.75)], [0.5, -math.sqrt(0.75)], [-1.0, 0.0]])
    labels = {"y": torch.tensor([1, 0, 0, 1])}
    query, answer = torch.tensor([[1.0, 0.0]]), {"y": torch.tensor([1])}
    assert knn_accuracy(train, labels, query, answer, {"y": 2}, k=3, temperature=0.07)["y"] == 100.0
    assert knn_accuracy(train, labels, query, answer, {"y": 2}, k=3, temperature=100.0)["y"] == 0.0


def test_positive_and_hardest_negative_similarities_by_hand_and_saved(tmp_path):
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    positives = torch.tensor([[2.0, 0.0], [1.0, 0.0], [-1.0, 1.0]])
    positive, negatives = positive_and_negative_similarities(anchors, positives, negatives=2)
    root = math.sqrt(0.5)
    assert positive.tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)
    # Anchor 0 against positives 1, 2: cos 1, −√½; anchor 1: 0, √½; anchor 2: √½, √½ (descending).
    assert negatives.flatten().tolist() == pytest.approx([1.0, -root, root, 0.0, root, root], abs=1e-6)
    saved = np.load(save_similarities(tmp_path, positive, negatives))
    assert set(saved.files) == {"positive", "negatives"}
    assert saved["positive"].dtype == np.float32 and saved["positive"].shape == (3,)
    assert saved["negatives"].dtype == np.float32 and saved["negatives"].shape == (3, 2)
    np.testing.assert_allclose(saved["negatives"], negatives.numpy())


def test_too_few_images_for_the_negatives_is_an_error():
    with pytest.raises(ValueError, match="N > 10"):
        positive_and_negative_similarities(torch.randn(10, 3), torch.randn(10, 3))
