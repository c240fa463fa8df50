r"""Which transformation was applied, predicted from frozen h and from frozen g(h) (SimCLR §4.2, Table 3).

SimCLR's answer to why h, not z = g(h), is the representation: g is trained to be invariant
to the views' transformations, so it removes what h still holds about them. Its Table 3 trains
an additional MLP on h and on g(h) to predict the transformation applied; h predicts it far
better (rotation: 67.6 vs 25.6 %, chance 25).

After pretraining, for each task a labelled set is made from the images of the train split
(to fit on) and of the test split (to score on): every image once per variant of the
transformation, its label the variant's index, with the ops of ``workers.views`` and their
parameters fixed:

* ``colour``: the image (0) or its grayscale gray(x) in every channel (1); RGB images only;
* ``rotation``: turned by 0°, 90°, 180°, 270° counter-clockwise (0-3); square images only;
* ``corruption``: the image (0) or clip(x + ε), ε ~ N(0, σ²) per pixel, σ = ``noise_std`` (1).
  "Corrupted" is Gaussian noise: the caption of Table 3 names the three transformations
  added for its last three rows, "rotation ..., Gaussian noise, and Sobel filtering";
* ``sobel``: the image (0) or its Sobel gradient magnitude (1).

Each class holds the same images, so chance is 1/K of the K variants
(``transform_acc/<task>/chance``, percent). The paper's colour row has chance 80: its sets
were labelled by whether the pretraining augmentation (grayscale with probability 0.2) made
the image gray; ours are balanced. The images are the split's own (no crop), and channels
that views leave fixed (shared bits) stay fixed here too.

h = f(x) (eval mode) is extracted once per image and variant (the untransformed variant is
shared by every task) and z = g(h) is computed from it. On each, standardised with the train
set's statistics, an MLP with one hidden layer, :math:`W_2\,\mathrm{ReLU}(W_1 x + b_1) + b_2`,
is trained by Adam on the cross-entropy of minibatches, and its test accuracy is logged as
``transform_acc/<task>/h`` and ``transform_acc/<task>/z`` (percent; no ``z`` for a method
without a projection head). Which images, the noise, the MLP's initial weights and its
minibatches all come from a measurement generator (``held_out.measurement_generator``), never
from the trial's training generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from workers.data.base import Dataset, Split
from workers.measures.held_out import evaluating, measurement_generator, project, project_features, projection_head
from workers.registry import Section
from workers.views.colour import grayscale
from workers.views.filters import NoiseConfig, random_noise, sobel
from workers.views.geometry import rotate_quarter_turns

if TYPE_CHECKING:
    from workers.methods import Method

Task = Literal["colour", "rotation", "corruption", "sobel"]
TASKS: tuple[Task, ...] = ("colour", "rotation", "corruption", "sobel")
TRANSFORM_METRICS = tuple(f"transform_acc/{task}/{column}" for task in TASKS for column in ("h", "z", "chance"))
Variant = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class TransformPredictionConfig(Section):
    tasks: list[Task] = Field(list(TASKS), min_length=1, description="colour, rotation, corruption, sobel")
    hidden: int = Field(512, ge=1, description="hidden units of the MLP")
    steps: int = Field(500, ge=1, description="Adam steps of the MLP")
    batch_size: int = Field(256, ge=1, description="MLP minibatch (capped at the labelled train set)")
    lr: float = Field(1e-3, gt=0, description="Adam's learning rate")
    examples: int = Field(2048, ge=1, description="images of each split (capped), one labelled example per variant")
    noise_std: float = Field(NoiseConfig().std, gt=0, description="σ of the corruption's Gaussian noise")

    @field_validator("tasks")
    @classmethod
    def _once_each(cls, tasks: list[Task]) -> list[Task]:
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks must name each task once, got {tasks}")
        return tasks


def _identity(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return images


def _gray(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if images.shape[1] != 3:
        raise ValueError(f"eval.transform_prediction: task colour needs RGB images, got {images.shape[1]} channel(s)")
    return grayscale(images).expand_as(images).contiguous()


def _turned(quarter_turns: int) -> Variant:
    def turn(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return rotate_quarter_turns(images, torch.full((len(images),), quarter_turns, device=images.device))

    return turn


def _noisy(std: float) -> Variant:
    def corrupt(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_noise(images, NoiseConfig(std=std, probability=1.0), generator)

    return corrupt


def _sobel(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return sobel(images)


def task_variants(task: Task, settings: TransformPredictionConfig) -> list[tuple[str, Variant]]:
    """(name, op) of each class of ``task``, class 0 first; "original" is the untransformed image."""
    original = ("original", _identity)
    if task == "colour":
        return [original, ("grayscale", _gray)]
    if task == "rotation":
        return [original, *((f"rotation{90 * k}", _turned(k)) for k in (1, 2, 3))]
    if task == "corruption":
        return [original, (f"noise{settings.noise_std}", _noisy(settings.noise_std))]
    return [original, ("sobel", _sobel)]


def labelled_images(
    images: torch.Tensor, variants: list[tuple[str, Variant]], generator: torch.Generator, fixed_channels: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image under every variant, class by class: ([K·N, C, H, W], labels [K·N] = the variant's index).

    The last ``fixed_channels`` channels are left as they are (as ``workers.views.make_view`` does).
    """
    made, labels = [], []
    for label, (_, op) in enumerate(variants):
        made.append(_apply(op, images, generator, fixed_channels))
        labels.append(torch.full((len(images),), label, dtype=torch.long, device=images.device))
    return torch.cat(made), torch.cat(labels)


def _apply(op: Variant, images: torch.Tensor, generator: torch.Generator, fixed_channels: int) -> torch.Tensor:
    if not fixed_channels:
        return op(images, generator)
    varied, fixed = images[:, :-fixed_channels], images[:, -fixed_channels:]
    return torch.cat([op(varied, generator), fixed], dim=1)


def train_mlp_classifier(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    classes: int,
    generator: torch.Generator,
    *,
    hidden: int = 512,
    steps: int = 500,
    batch_size: int = 256,
    lr: float = 1e-3,
) -> float:
    r"""Test accuracy (percent) of :math:`W_2\,\mathrm{ReLU}(W_1 x + b_1) + b_2` fitted by Adam on the train set.

    x is standardised with the train set's mean and standard deviation. Weights and biases start
    as ``nn.Linear``'s, U(−1/√fan_in, 1/√fan_in), and every step reads ``batch_size`` train
    examples drawn without replacement; both from ``generator``.
    """
    mean, std = train_x.mean(0), train_x.std(0, correction=0).clamp_min(1e-6)
    train_x, test_x = (train_x.float() - mean) / std, (test_x.float() - mean) / std
    device, dim = train_x.device, train_x.shape[1]

    def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
        bound = 1 / math.sqrt(fan_in)
        values = torch.rand(shape, device=device, generator=generator) * 2 * bound - bound
        return values.requires_grad_()

    parameters = [uniform((dim, hidden), dim), uniform((hidden,), dim), uniform((hidden, classes), hidden),
                  uniform((classes,), hidden)]
    w1, b1, w2, b2 = parameters

    def logits(x: torch.Tensor) -> torch.Tensor:
        return F.relu(x @ w1 + b1) @ w2 + b2

    optimizer = torch.optim.Adam(parameters, lr=lr)
    batch = min(batch_size, len(train_x))
    with torch.enable_grad():
        for _ in range(steps):
            rows = torch.randperm(len(train_x), device=device, generator=generator)[:batch]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(logits(train_x[rows]), train_y[rows]).backward()
            optimizer.step()
    with torch.no_grad():
        return 100.0 * (logits(test_x).argmax(1) == test_y).float().mean().item()


def transform_prediction(
    method: Method, dataset: Dataset, settings: TransformPredictionConfig, seed: int, batch_size: int
) -> dict[str, float]:
    """``transform_acc/<task>/<h|z|chance>`` for every task of ``settings`` (module docstring)."""
    device = next(iter(dataset.train.labels.values())).device
    generator = measurement_generator(seed, device)
    with_head = projection_head(method) is not None
    splits = {"train": dataset.train, "test": dataset.test}
    index = {name: _subset(split, settings.examples, generator) for name, split in splits.items()}
    features: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}  # (split, variant) -> (h, z)
    metrics: dict[str, float] = {}
    with evaluating(method):
        for task in settings.tasks:
            variants = task_variants(task, settings)
            for split_name, split in splits.items():
                images = split.images(index[split_name])
                for variant_name, op in variants:
                    if (split_name, variant_name) not in features:
                        made = _apply(op, images, generator, method.fixed_channels)
                        h = project(method, made, "h", batch_size)
                        z = project_features(method, h, "z", batch_size) if with_head else h
                        features[split_name, variant_name] = h, z
            spaces = ("h", "z") if with_head else ("h",)
            for column, space in enumerate(spaces):
                train_x, train_y = _stacked(features, "train", variants, column)
                test_x, test_y = _stacked(features, "test", variants, column)
                metrics[f"transform_acc/{task}/{space}"] = train_mlp_classifier(
                    train_x, train_y, test_x, test_y, len(variants), generator,
                    hidden=settings.hidden, steps=settings.steps, batch_size=settings.batch_size, lr=settings.lr,
                )
            metrics[f"transform_acc/{task}/chance"] = 100.0 / len(variants)  # balanced classes
    return metrics


def _subset(split: Split, count: int, generator: torch.Generator) -> torch.Tensor:
    """``min(count, len(split))`` random rows of ``split``, in order."""
    device = next(iter(split.labels.values())).device
    return torch.randperm(len(split), device=device, generator=generator)[:count].sort().values


def _stacked(
    features: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]],
    split: str,
    variants: list[tuple[str, Variant]],
    column: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The labelled features of ``split``: each variant's (h or z) rows, labelled with its index."""
    rows = [features[split, name][column] for name, _ in variants]
    labels = [torch.full((len(x),), label, dtype=torch.long, device=x.device) for label, x in enumerate(rows)]
    return torch.cat(rows), torch.cat(labels)
