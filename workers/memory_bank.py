r"""Instance discrimination with a memory bank (Wu et al., CVPR 2018), Wang & Liu's setting.

Wang & Liu (CVPR 2021, §5.1) train every loss of their Table 1 against "a memory bank storing an
exponential moving average of the features", as the first author's code
(``WangFeng18/UnsupervisedLearningCodes``, ``run.py`` and ``objective.MemoryBank_v1``) does.
One training step, for a batch of N images whose rows in the training set are ``index``:

1. **one** view of each image (the code augments each image once per step); z = g(f(view)),
   l2-normalised by the loss;
2. the loss of each anchor :math:`z_i` against its **positive**, the bank's entry
   :math:`v_{\mathrm{index}_i}` of the same image (the code's ``point_indices``: not another view),
   and its negatives, **every other entry of the bank** (the code scores the whole bank; no
   sample): ``loss(z, v[index], negatives=v, exclude=index)`` (``workers.losses.base``);
3. :meth:`InstanceDiscrimination.after_step`, once the optimiser has stepped: each of the batch's
   entries moves towards its new feature (:meth:`MemoryBank.update`, the code's ``update_points``)

   .. math:: v_i \leftarrow \frac{m\,v_i + (1-m)\,\hat z_i}{\lVert m\,v_i + (1-m)\,\hat z_i\rVert},
       \qquad \hat z_i = z_i / \lVert z_i\rVert,\ m = 0.5

   with the features of this step's forward pass (the code's ``output.detach()``).

The bank holds one 128-d (the head's output size) unit vector per training example. It starts as
the code's ``random_init_bank``, uniform in :math:`[-\sigma, \sigma]` with :math:`\sigma = 1/\sqrt{d/3}`
(rows of expected norm 1), here also l2-normalised (the code leaves the first draw unnormalised),
drawn from torch's global generator, seeded with the trial's seed before the model is built. It
is a buffer: checkpoints carry it (``workers.checkpoint``) and a resumed trial continues it.

Losses: ``nt_xent`` gives the normal contrastive loss (InstDisc's softmax over the bank, the code's
``PointLoss``) at its ``temperature`` (its ``negatives`` is not read); ``hard_contrastive``,
``simple`` and ``hard_simple`` (``workers.losses.hardness``) take the bank's negatives themselves.
The trainer hands each batch's rows as ``labels["index"]`` (``INDEX``).

Example::

    method: {name: memory_bank, momentum: 0.5}
    loss: {name: hard_contrastive, temperature: 0.7, quantile: 0.0819}
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from workers.backbones import Backbone
from workers.losses.hardness import HardContrastive
from workers.methods import METHODS, Method, MethodConfig, online_classes
from workers.views import ViewsConfig

if TYPE_CHECKING:
    from workers.config import TrialConfig
    from workers.data.base import Dataset

INDEX = "index"  # the key under which the trainer passes each batch's rows in the training split


class MemoryBank(nn.Module):
    """One l2-normalised feature per training example, ``features`` [size, dim] (a buffer)."""

    features: torch.Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 2 or dim < 1:
            raise ValueError(f"a memory bank needs at least 2 entries and a positive dimension, got {size} and {dim}")
        bound = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("features", F.normalize(torch.rand(size, dim) * 2 * bound - bound, dim=1))

    @torch.no_grad()
    def update(self, index: torch.Tensor, features: torch.Tensor, momentum: float) -> None:
        r"""Rows ``index`` become :math:`\mathrm{normalise}(m\,v + (1-m)\,\mathrm{normalise}(f))`."""
        fresh = F.normalize(features.to(self.features.dtype), dim=1)
        self.features[index] = F.normalize(momentum * self.features[index] + (1 - momentum) * fresh, dim=1)


class InstanceDiscrimination(Method):
    """Encoder f and head g, trained against a :class:`MemoryBank` of every training image."""

    def __init__(
        self,
        encoder: Backbone,
        head: nn.Module,
        loss: nn.Module,
        views: ViewsConfig,
        *,
        bank_size: int,
        dim: int,
        momentum: float,
        fixed_channels: int = 0,
    ) -> None:
        super().__init__(encoder, fixed_channels)
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be between 0 and 1, got {momentum}")
        self.head, self.loss, self.views, self.momentum = head, loss, views, momentum
        self.bank = MemoryBank(bank_size, dim)
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None  # this step's (index, z), for after_step

    def objective(self, images, labels, generator):
        if INDEX not in labels:
            raise ValueError(f"memory_bank needs each batch's rows in the training set as labels[{INDEX!r}]")
        index = labels[INDEX]
        h = self.encoder(self.view(images, self.views, generator))
        z = self.head(h)
        with torch.autocast(z.device.type, enabled=False):  # similarities / τ need float32
            z = z.float()
            bank = self.bank.features
            loss = self.loss(z, bank[index], generator=generator, negatives=bank, exclude=index)
        # The bank moves after the backward pass: the loss's graph reads it as it is now.
        self._pending = (index, z.detach())
        return loss, h

    @torch.no_grad()
    def after_step(self) -> None:
        if self._pending is not None:
            self.bank.update(*self._pending, self.momentum)
            self._pending = None


@METHODS.register
class MemoryBankConfig(MethodConfig):
    name: Literal["memory_bank"]
    momentum: float = Field(0.5, ge=0, le=1, description="m in v ← normalise(m·v + (1 − m)·z); Wang & Liu: 0.5")
    # Its negatives are the bank's whatever loss.negatives (nt_xent's) says: unread, so out of the identity.
    ignores: ClassVar[frozenset[str]] = frozenset({"loss.negatives"})

    def conflicts(self, trial: TrialConfig) -> list[tuple[str, str]]:
        loss = trial.loss
        if loss.name != "nt_xent" and not loss.takes_negatives:
            return [("loss", f"memory_bank needs a loss that takes a bank's negatives "
                             f"(nt_xent, hard_contrastive, simple, hard_simple), not {loss.name}")]
        negatives = trial.data.train_count() - 1
        top_k = getattr(loss, "top_k", None)
        if top_k is not None and top_k >= negatives:
            return [("loss.top_k", f"{top_k} keeps every one of the bank's {negatives} negatives "
                                   f"(train_count - 1), so nothing is hard; take fewer, or a quantile")]
        return []

    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        problems = self.conflicts(trial)
        if problems:
            raise ValueError(problems[0][1])
        loss = trial.loss
        criterion = HardContrastive(loss.temperature) if loss.name == "nt_xent" else loss.build()
        encoder = trial.model.backbone.build(dataset.channels, dataset.image_size)
        head = trial.model.head.build(encoder.dim)
        method = InstanceDiscrimination(
            encoder,
            head,
            criterion,
            trial.views,
            bank_size=len(dataset.train),
            dim=trial.model.head.dim if trial.model.head.layers else encoder.dim,
            momentum=self.momentum,
            fixed_channels=dataset.fixed_channels,
        )
        return method.with_online(online_classes(trial, dataset))
