"""Methods: what one training step optimises. One loop (``workers.trainer``) runs them all.

* ``simclr`` (Chen et al. 2020): two views of each image, encoder f, head g, contrastive loss
  on z = g(f(view)).
* ``supervised``: one view, a linear classifier per target on h = f(view), cross-entropy
  (the supervised baselines of Chen, Luo & Li 2021, Tables 3-4).
* ``random_init``: no training; the randomly initialised encoder is evaluated as it is (the
  "untrained network" baselines).

``ignores`` names the trial-config keys a method never reads (dotted, e.g. ``model.head``);
they leave the trial's identity, so a temperature sweep does not re-run the supervised
baseline once per temperature. Everything else, including sections added later, counts.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from workers.backbones import Backbone
from workers.registry import Registry, Section
from workers.views import ViewsConfig, make_view

if TYPE_CHECKING:
    from workers.config import TrialConfig
    from workers.data.base import Dataset

class Method(nn.Module):
    """An encoder plus whatever a method trains beside it."""

    trains: ClassVar[bool] = True

    def __init__(self, encoder: Backbone) -> None:
        super().__init__()
        self.encoder = encoder

    def training_loss(
        self, images: torch.Tensor, labels: dict[str, torch.Tensor], generator: torch.Generator
    ) -> torch.Tensor:
        raise NotImplementedError


class SimCLR(Method):
    def __init__(self, encoder: Backbone, head: nn.Module, loss: nn.Module, views: ViewsConfig) -> None:
        super().__init__(encoder)
        self.head, self.loss, self.views = head, loss, views

    def training_loss(self, images, labels, generator):
        first = make_view(images, self.views, generator)
        second = make_view(images, self.views, generator)
        # One forward pass over both views: batch-norm statistics span the 2N images.
        z = self.head(self.encoder(torch.cat([first, second])))
        return self.loss(*z.chunk(2))


class Supervised(Method):
    def __init__(self, encoder: Backbone, num_classes: dict[str, int], views: ViewsConfig) -> None:
        super().__init__(encoder)
        self.views = views
        self.classifiers = nn.ModuleDict({t: nn.Linear(encoder.dim, k) for t, k in num_classes.items()})

    def training_loss(self, images, labels, generator):
        h = self.encoder(make_view(images, self.views, generator))
        losses = [F.cross_entropy(classifier(h), labels[t]) for t, classifier in self.classifiers.items()]
        return torch.stack(losses).mean()


class RandomInit(Method):
    trains = False


class MethodConfig(Section):
    """What a method config provides; register subclasses with ``@METHODS.register``."""

    ignores: ClassVar[frozenset[str]]  # dotted trial-config keys the method never reads

    @abstractmethod
    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        """The method module (encoder included), for ``trial`` on ``dataset``."""


METHODS: Registry[MethodConfig] = Registry("method", MethodConfig)


@METHODS.register
class SimCLRConfig(MethodConfig):
    name: Literal["simclr"]
    ignores: ClassVar[frozenset[str]] = frozenset()

    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        encoder = trial.model.backbone.build(dataset.channels, dataset.image_size)
        return SimCLR(encoder, trial.model.head.build(encoder.dim), trial.loss.build(), trial.views)


@METHODS.register
class SupervisedConfig(MethodConfig):
    name: Literal["supervised"]
    targets: list[str] | None = Field(None, description="labels trained on; default: every target")
    ignores: ClassVar[frozenset[str]] = frozenset({"loss", "model.head"})

    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        encoder = trial.model.backbone.build(dataset.channels, dataset.image_size)
        targets = self.targets or list(dataset.num_classes)
        return Supervised(encoder, {t: dataset.num_classes[t] for t in targets}, trial.views)


@METHODS.register
class RandomInitConfig(MethodConfig):
    name: Literal["random_init"]
    ignores: ClassVar[frozenset[str]] = frozenset({"loss", "model.head", "views", "optim", "train"})

    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        return RandomInit(trial.model.backbone.build(dataset.channels, dataset.image_size))
