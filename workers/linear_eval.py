r"""Linear evaluation on frozen, cached features (the protocol of all four papers).

The encoder's representation h is extracted once for the train and test split, standardised
with the train statistics, and one multinomial logistic regression per target is fitted
full-batch with L-BFGS. A regression target (``Dataset.regression``, e.g. a digit's position)
gets a least-squares linear regressor instead, in closed form, scored by its mean Euclidean
error (``linear_regression_error``). All targets share the one extraction (``FeatureCache``),
and so do the kNN accuracy and the measurements that read h (``workers.measures``), switched on
by the optional fields of ``EvalConfig``.

Online evaluation (``eval.online``) is how the Intriguing Properties notebooks report
accuracy: a linear classifier per target, trained alongside the method on the detached
representation of the first view, :math:`\min_{W,b}\ \mathrm{CE}(W\,\mathrm{sg}(h) + b, y)`
(sg: stop-gradient, so the encoder never learns from labels), by the same optimiser, without
weight decay. Its test accuracy (eval mode, no augmentation) is reported after every epoch.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from workers.data.base import Split
from workers.measures import (
    ContrastConfig,
    GeometryConfig,
    KnnConfig,
    SimilaritiesConfig,
    TransformPredictionConfig,
)
from workers.registry import Section


class LinearEvalConfig(Section):
    targets: list[str] | None = Field(None, description="default: every target of the dataset")
    steps: int = Field(200, ge=1, description="L-BFGS iterations")
    weight_decay: float = Field(1e-4, ge=0, description="L2 penalty on the classifier (and regressor) weights")
    projection: bool = Field(
        False, description="also probe z = g(h), the projection head's output: linear_acc_z/<target>"
    )


class OnlineEvalConfig(Section):
    targets: list[str] | None = Field(None, description="default: every target of the dataset")


class EvalConfig(Section):
    """What is measured on the encoder. Every measurement below ``online`` is off (null) by default
    (``workers.measures``); switching one on draws nothing from the training generator."""

    linear: LinearEvalConfig | None = Field(default_factory=LinearEvalConfig)
    online: OnlineEvalConfig | None = Field(None, description="null: no online classifier")
    contrast: ContrastConfig | None = Field(None, description="per epoch: contrast/entropy, contrast/accuracy, i_nce")
    geometry: GeometryConfig | None = Field(None, description="per trial: uniformity, tolerance, alignment")
    knn: KnnConfig | None = Field(None, description="per trial: knn_acc/<target> on the cached features")
    similarities: SimilaritiesConfig | None = Field(None, description="per trial: similarities.npz (artifact)")
    transform_prediction: TransformPredictionConfig | None = Field(
        None, description="per trial: transform_acc/<task>/<h|z|chance>, an MLP on frozen h and g(h)"
    )


@torch.no_grad()
def extract_features(encoder: nn.Module, split: Split, batch_size: int) -> torch.Tensor:
    """h for every example of ``split``, in order, in eval mode: float32 [N, dim]."""
    was_training = encoder.training
    encoder.eval()
    device = next(iter(split.labels.values())).device
    index = torch.arange(len(split), device=device)
    features = torch.cat([encoder(split.images(chunk)) for chunk in index.split(batch_size)])
    encoder.train(was_training)
    return features.float()


class FeatureCache:
    """h of each split, extracted once however many probes and measurements read it."""

    def __init__(self, encoder: nn.Module, batch_size: int) -> None:
        self.encoder, self.batch_size = encoder, batch_size
        self._features: dict[int, tuple[Split, torch.Tensor]] = {}  # the split is kept: its id stays its own

    def __call__(self, split: Split) -> torch.Tensor:
        if id(split) not in self._features:
            self._features[id(split)] = (split, extract_features(self.encoder, split, self.batch_size))
        return self._features[id(split)][1]


def linear_probe(
    train_features: torch.Tensor,
    train_labels: dict[str, torch.Tensor],
    test_features: torch.Tensor,
    test_labels: dict[str, torch.Tensor],
    num_classes: dict[str, int],
    *,
    steps: int = 200,
    weight_decay: float = 1e-4,
) -> dict[str, float]:
    """Test accuracy in percent of a logistic regression per target, fitted on the train features.

    Minimises, for every target t, the mean cross-entropy of ``x W_t + b_t`` plus
    ``weight_decay / 2 · ‖W_t‖²`` on standardised features x.
    """
    mean = train_features.mean(0)
    std = train_features.std(0, correction=0).clamp_min(1e-6)
    train_x = (train_features - mean) / std
    test_x = (test_features - mean) / std
    dim = train_x.shape[1]
    weights = {t: torch.zeros(dim, num_classes[t], device=train_x.device, requires_grad=True) for t in train_labels}
    biases = {t: torch.zeros(num_classes[t], device=train_x.device, requires_grad=True) for t in train_labels}
    optimizer = torch.optim.LBFGS(
        [*weights.values(), *biases.values()],
        lr=1.0,
        max_iter=steps,
        history_size=20,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        loss = train_x.new_zeros(())
        for t, labels in train_labels.items():
            loss = loss + F.cross_entropy(train_x @ weights[t] + biases[t], labels)
            loss = loss + 0.5 * weight_decay * weights[t].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(objective)
    with torch.no_grad():
        return {
            t: 100.0 * ((test_x @ weights[t] + biases[t]).argmax(1) == labels).float().mean().item()
            for t, labels in test_labels.items()
        }


@torch.no_grad()
def linear_regression_error(
    train_features: torch.Tensor,
    train_values: dict[str, torch.Tensor],
    test_features: torch.Tensor,
    test_values: dict[str, torch.Tensor],
    *,
    weight_decay: float = 1e-4,
) -> dict[str, float]:
    r"""Mean Euclidean test error of a least-squares linear regressor per target, fitted on the train features.

    For every target t with values y ∈ R^d ([N, d]; a position: d = 2), on the features x
    standardised as the classifier's,

    .. math:: \min_{W_t, b_t}\ \frac{1}{2n}\sum_i \lVert x_i W_t + b_t - y_i\rVert^2
              + \frac{\lambda}{2}\lVert W_t\rVert^2,

    λ = ``weight_decay``, in closed form (the train x have mean 0): b_t = ȳ,
    W_t = (XᵀX/n + λI)⁺ XᵀY/n (the pseudo-inverse, so dead features and λ = 0 are fine), all in
    float64. The error is :math:`\frac1m\sum_j \lVert x_j W_t + b_t - y_j\rVert_2` over the test
    split, in the target's units (pixels for a position).
    """
    train_x, test_x = train_features.double(), test_features.double()
    mean, std = train_x.mean(0), train_x.std(0, correction=0).clamp_min(1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    n, dim = train_x.shape
    gram = train_x.T @ train_x / n + weight_decay * torch.eye(dim, dtype=torch.float64, device=train_x.device)
    inverse = torch.linalg.pinv(gram, hermitian=True)
    errors = {}
    for t, values in train_values.items():
        y = values.double().reshape(n, -1)
        weights = inverse @ (train_x.T @ (y - y.mean(0)) / n)
        predicted = test_x @ weights + y.mean(0)
        truth = test_values[t].double().reshape(len(test_x), -1)
        errors[t] = (predicted - truth).norm(dim=1).mean().item()
    return errors


@torch.no_grad()
def online_accuracy(
    encoder: nn.Module, classifiers: Mapping[str, nn.Module], split: Split, batch_size: int
) -> dict[str, float]:
    """Accuracy (percent) on ``split`` of each online classifier, as ``online_acc/<target>``."""
    features = extract_features(encoder, split, batch_size)
    return {
        f"online_acc/{target}": 100.0 * (classifier(features).argmax(1) == split.labels[target]).float().mean().item()
        for target, classifier in classifiers.items()
    }
