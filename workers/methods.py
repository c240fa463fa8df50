"""Methods: what one training step optimises. One loop (``workers.trainer``) runs them all.

* ``simclr`` (Chen et al. 2020): two views of each image, encoder f, head g, contrastive loss
  on z = g(f(view)); with ``views.pair`` (e.g. InfoMin's patches at an offset) the pair policy
  cuts the two views, and ``moco`` takes them too.
* ``supervised``: one view, a linear classifier per target on h = f(view), cross-entropy
  (the supervised baselines of Chen, Luo & Li 2021, Tables 3-4); a regression target
  (``Dataset.regression``: a digit's position, Tian et al. 2020, Table 4) gets a linear
  regressor, mean squared error of the target standardised by the train split's mean and std.
* ``moco`` (He et al. 2020, ``workers.moco``): a momentum encoder's keys and a queue of negatives.
* ``cmc`` (Tian et al. 2019/2020, ``workers.cmc``): a colour space's channels split between two
  views, an encoder and head each; h is both encoders' features concatenated.
* ``random_init``: no training; the randomly initialised encoder is evaluated as it is (the
  "untrained network" baselines).

With ``eval.online``, every training method also trains a linear classifier per target on
sg(h) of the first view (``workers.linear_eval``): its cross-entropy is added to the loss that
is back-propagated, and the stop-gradient keeps it from reaching the encoder.

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
from workers.views import ViewsConfig, make_pair, make_view

if TYPE_CHECKING:
    from workers.config import TrialConfig
    from workers.data.base import Dataset

class Method(nn.Module):
    """An encoder plus whatever a method trains beside it.

    ``fixed_channels``: the images' last channels that views leave untouched (shared bits).
    ``online``: the online linear classifiers, one per target (empty unless ``with_online``).
    """

    trains: ClassVar[bool] = True

    def __init__(self, encoder: Backbone, fixed_channels: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.fixed_channels = fixed_channels
        self.online = nn.ModuleDict()

    def with_online(self, num_classes: dict[str, int]) -> Method:
        """Adds an online linear classifier on h for each target in ``num_classes``; returns self."""
        for target, classes in num_classes.items():
            self.online[target] = nn.Linear(self.encoder.dim, classes)
        return self

    def objective(
        self, images: torch.Tensor, labels: dict[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The method's loss and h [B, dim] of the first view of ``images``."""
        raise NotImplementedError

    def training_loss(
        self, images: torch.Tensor, labels: dict[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the method's loss, the online classifiers' summed cross-entropy on sg(h); 0 without).

        The trainer back-propagates their sum. Summing gives each classifier exactly its own
        gradient; ``detach`` keeps every one of them off the encoder.
        """
        loss, h = self.objective(images, labels, generator)
        online = loss.new_zeros(())
        for target, classifier in self.online.items():
            online = online + F.cross_entropy(classifier(h.detach()), labels[target])
        return loss, online

    def view(self, images: torch.Tensor, views: ViewsConfig, generator: torch.Generator) -> torch.Tensor:
        """One view of ``images``, the last ``fixed_channels`` left as they are."""
        return make_view(images, views, generator, self.fixed_channels)

    def pair(
        self,
        images: torch.Tensor,
        views: ViewsConfig,
        generator: torch.Generator,
        *,
        second_images: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two views of a pair as training makes them: ``make_pair`` (the second view with
        ``views.second_branch()``; with ``views.pair``, the policy's two cuts). Held-out measurements
        that want the pairs training sees (patches at an offset, CMC's channel groups) call this,
        and read view k through :meth:`branch` (k).
        """
        return make_pair(images, views, generator, self.fixed_channels, second_images=second_images)

    def branch(self, index: int) -> tuple[nn.Module, nn.Module | None]:
        """The encoder and projection head (None without one) that read view ``index`` (0, 1) of a pair."""
        head = getattr(self, "head", None)
        return self.encoder, head if isinstance(head, nn.Module) else None

    def after_step(self) -> None:
        """Called by the trainer after every optimiser step (MoCo's momentum update); no-op here."""


class SimCLR(Method):
    def __init__(
        self, encoder: Backbone, head: nn.Module, loss: nn.Module, views: ViewsConfig, fixed_channels: int = 0
    ) -> None:
        super().__init__(encoder, fixed_channels)
        self.head, self.loss, self.views = head, loss, views
        self.second_views = views.second_branch()  # crop and flip only with views.asymmetric (Fig. 5)

    def objective(self, images, labels, generator):
        # A dataset whose second view is another input (``Split.second_view``) hands it in the batch.
        first, second = make_pair(
            images, self.views, generator, self.fixed_channels,
            second_config=self.second_views, second_images=labels.get("second_view"),
        )
        # One forward pass over both views: batch-norm statistics span the 2N images.
        h = self.encoder(torch.cat([first, second]))
        z = self.head(h)
        with torch.autocast(z.device.type, enabled=False):  # similarities / τ need float32
            # The trial's generator: losses that draw random numbers (SWD) stay seeded by it.
            return self.loss(*z.float().chunk(2), generator=generator), h[: len(images)]


class Supervised(Method):
    """``regression``: per regression target, the train split's values [N, d] (for their mean and std)."""

    def __init__(
        self,
        encoder: Backbone,
        num_classes: dict[str, int],
        views: ViewsConfig,
        fixed_channels: int = 0,
        regression: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(encoder, fixed_channels)
        self.views = views
        self.classifiers = nn.ModuleDict({t: nn.Linear(encoder.dim, k) for t, k in num_classes.items()})
        regression = regression or {}
        self.regressors = nn.ModuleDict({t: nn.Linear(encoder.dim, y.shape[1]) for t, y in regression.items()})
        self.standard = {t: (y.mean(0), y.std(0).clamp_min(1e-6)) for t, y in regression.items()}

    def objective(self, images, labels, generator):
        h = self.encoder(self.view(images, self.views, generator))
        losses = [F.cross_entropy(classifier(h), labels[t]) for t, classifier in self.classifiers.items()]
        for t, regressor in self.regressors.items():
            mean, std = self.standard[t]
            losses.append(F.mse_loss(regressor(h).float(), (labels[t] - mean) / std))
        return torch.stack(losses).mean(), h


class RandomInit(Method):
    trains = False


class MethodConfig(Section):
    """What a method config provides; register subclasses with ``@METHODS.register``."""

    ignores: ClassVar[frozenset[str]]  # dotted trial-config keys the method never reads

    @abstractmethod
    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        """The method module (encoder included), for ``trial`` on ``dataset``."""

    def conflicts(self, trial: TrialConfig) -> list[tuple[str, str]]:
        """(dotted path, message) for each setting of ``trial`` this method cannot run with."""
        return []


METHODS: Registry[MethodConfig] = Registry("method", MethodConfig)


def online_classes(trial: TrialConfig, dataset: Dataset) -> dict[str, int]:
    """Classes of each target that gets an online classifier (none without ``eval.online``)."""
    online = trial.eval.online
    if online is None:
        return {}
    return {t: dataset.num_classes[t] for t in online.targets or dataset.num_classes}


def build_encoder(trial: TrialConfig, dataset: Dataset) -> Backbone:
    """The trial's backbone for the dataset's images; with ``views.pair``, for the pair's views
    (e.g. P×P patches), reading whole images as the policy says (``workers.views.pairs``)."""
    if trial.views.pair is None:
        return trial.model.backbone.build(dataset.channels, dataset.image_size)
    return trial.views.pair.encoder(trial.model.backbone, dataset.channels, dataset.image_size)


def pair_conflicts(trial: TrialConfig) -> list[tuple[str, str]]:
    """What ``views.pair`` cannot do with the trial's images and backbone (for methods that make pairs)."""
    if trial.views.pair is None:
        return []
    return trial.views.pair.conflicts(trial.data.image_size(), trial.model.backbone.min_input_size())


@METHODS.register
class SimCLRConfig(MethodConfig):
    name: Literal["simclr"]
    ignores: ClassVar[frozenset[str]] = frozenset()

    def conflicts(self, trial: TrialConfig) -> list[tuple[str, str]]:
        return pair_conflicts(trial)

    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        encoder = build_encoder(trial, dataset)
        head = trial.model.head.build(encoder.dim)
        method = SimCLR(encoder, head, trial.loss.build(), trial.views, dataset.fixed_channels)
        return method.with_online(online_classes(trial, dataset))


@METHODS.register
class SupervisedConfig(MethodConfig):
    name: Literal["supervised"]
    targets: list[str] | None = Field(None, description="labels trained on; default: every target")
    ignores: ClassVar[frozenset[str]] = frozenset({"loss", "model.head", "eval.contrast"})  # no head: no diagnostics

    def conflicts(self, trial: TrialConfig) -> list[tuple[str, str]]:
        if trial.views.pair is not None:
            return [("views.pair", "supervised trains on one view of whole images; set views.pair: null")]
        return []

    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        encoder = trial.model.backbone.build(dataset.channels, dataset.image_size)
        targets = self.targets or [*dataset.num_classes, *dataset.regression]
        classes = {t: dataset.num_classes[t] for t in targets if t not in dataset.regression}
        regression = {t: dataset.train.labels[t] for t in targets if t in dataset.regression}
        method = Supervised(encoder, classes, trial.views, dataset.fixed_channels, regression)
        return method.with_online(online_classes(trial, dataset))


@METHODS.register
class RandomInitConfig(MethodConfig):
    name: Literal["random_init"]
    ignores: ClassVar[frozenset[str]] = frozenset(
        {"loss", "model.head", "views", "optim", "train", "eval.online", "eval.contrast"}
    )

    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        return RandomInit(trial.model.backbone.build(dataset.channels, dataset.image_size))
