r"""MoCo (He et al., CVPR 2020): keys from a momentum encoder, negatives from a queue of past keys.

Chen, Luo & Li (2021) also train it on their random-bits data (feature suppression): a
queue of K keys gives every query K negatives whatever the batch size. One training step, for
a batch of N images (Algorithm 1 of He et al.):

1. two views; the query encoder and head give :math:`q = g(f(v_1))`, the key encoder and
   key head (no gradient) give :math:`k = g_k(f_k(v_2))`, both l2-normalised;
2. the loss is InfoNCE of each query against its own key and the queue's K keys
   (:func:`queue_info_nce`); the optimiser steps the query encoder and head only;
3. :meth:`MoCo.after_step`: momentum update :math:`\theta_k \leftarrow m\,\theta_k + (1-m)\,\theta_q`
   (:func:`momentum_update`), then the N new keys replace the N oldest in the queue.

He et al. update the key encoder at the start of a step; doing it after the previous step's
optimiser step is the same sequence (the first update, with :math:`\theta_k = \theta_q`, is a
no-op either way).

Choices, and why:

* **One direction**, query from the first view and key from the second, as He et al.'s
  Algorithm 1: each step enqueues exactly the N keys it used, so the queue holds the last
  K/N batches. A symmetrised loss would enqueue both views' keys of the same images, each
  image's two keys then being each other's near-duplicate negatives.
* **Batch norm**: the key encoder runs in train mode on its own forward pass, so its BN
  statistics (and running averages) come from the key batch, as in He et al. Shuffling BN
  (keys computed on a permuted split of the batch across GPUs, to stop the batch statistics
  leaking which key is the positive) needs several devices; on one device it is not done.
  The momentum update moves parameters only; BN running averages are buffers, each encoder's own.
* **Queue initialisation**: random unit vectors (drawn from torch's global generator, seeded
  with the trial's seed before the model is built), as He et al.; they are flushed after K/N steps.
* **Temperature** τ is ``loss.temperature`` of ``loss: nt_xent`` (the trial's contrastive loss);
  its ``negatives`` is not read (the negatives are the queue's keys).

Example::

    method: {name: moco, momentum: 0.99, queue_size: 4096}
    loss: {name: nt_xent, temperature: 0.2}
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from workers.backbones import Backbone
from workers.methods import METHODS, Method, MethodConfig, build_encoder, online_classes, pair_conflicts
from workers.views import ViewsConfig, make_pair

if TYPE_CHECKING:
    from workers.config import TrialConfig
    from workers.data.base import Dataset


def queue_info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""InfoNCE of N queries against their keys and a queue of K negatives (He et al. 2020, eq. 1).

    .. math::
        \mathcal{L} = \frac1N\sum_{i=1}^{N} -\log\frac{\exp(q_i^\top k_i/\tau)}
            {\exp(q_i^\top k_i/\tau) + \sum_{j=1}^{K}\exp(q_i^\top \kappa_j/\tau)}

    ``q`` and ``k`` [N, d] are l2-normalised here; the ``queue`` rows :math:`\kappa_j` [K, d]
    are used as they are (:class:`KeyQueue` stores normalised keys). The current batch's
    other keys are not negatives: only the queue's are.
    """
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    positive = (q * k).sum(dim=1, keepdim=True)
    logits = torch.cat([positive, q @ queue.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


@torch.no_grad()
def momentum_update(key: nn.Module, query: nn.Module, momentum: float) -> None:
    r"""Every parameter of ``key`` becomes :math:`m\,\theta_k + (1-m)\,\theta_q` (He et al. 2020, eq. 2)."""
    for key_parameter, query_parameter in zip(key.parameters(), query.parameters(), strict=True):
        key_parameter.mul_(momentum).add_(query_parameter, alpha=1 - momentum)


class KeyQueue(nn.Module):
    """The last ``size`` keys, first in first out: a ring buffer whose oldest row is at ``pointer``.

    Both tensors are buffers, so they travel with the method's ``state_dict`` (and checkpoints).
    """

    keys: torch.Tensor
    pointer: torch.Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"a queue needs a positive size and key dimension, got {size} and {dim}")
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Replaces the ``len(keys)`` oldest keys with ``keys`` [N, d] (N ≤ size), in order."""
        size = len(self.keys)
        if len(keys) > size:
            raise ValueError(f"cannot push {len(keys)} keys into a queue of {size}")
        # Index arithmetic on the device: no host sync, and K need not be a multiple of N.
        index = (self.pointer + torch.arange(len(keys), device=self.keys.device)) % size
        self.keys[index] = keys.to(self.keys.dtype)
        self.pointer.copy_((self.pointer + len(keys)) % size)

    def ordered(self) -> torch.Tensor:
        """The keys oldest first [size, d] (reads the pointer on the host)."""
        return self.keys.roll(-int(self.pointer), dims=0)


class MoCo(Method):
    """Query encoder f and head g (trained), their momentum copies f_k, g_k (not trained), a key queue.

    The copies' parameters have ``requires_grad=False``: the optimiser, built from the
    parameters that require a gradient, never sees them; :meth:`after_step` moves them.
    """

    def __init__(
        self,
        encoder: Backbone,
        head: nn.Module,
        views: ViewsConfig,
        *,
        temperature: float,
        momentum: float,
        queue_size: int,
        key_dim: int,
        fixed_channels: int = 0,
    ) -> None:
        super().__init__(encoder, fixed_channels)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be between 0 and 1, got {momentum}")
        self.head, self.views = head, views
        self.temperature, self.momentum = temperature, momentum
        self.key_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.key_head = copy.deepcopy(head).requires_grad_(False)
        self.queue = KeyQueue(queue_size, key_dim)
        self._new_keys: torch.Tensor | None = None  # this step's keys, queued by after_step

    def objective(self, images, labels, generator):
        # Both views with ``views`` (not its asymmetric second branch); with views.pair, its two cuts.
        first, second = make_pair(
            images, self.views, generator, self.fixed_channels,
            second_config=self.views, second_images=labels.get("second_view"),
        )
        h = self.encoder(first)
        q = self.head(h)
        with torch.no_grad():
            k = self.key_head(self.key_encoder(second))
        with torch.autocast(q.device.type, enabled=False):  # similarities / τ need float32
            k = F.normalize(k.float(), dim=1)
            loss = queue_info_nce(q.float(), k, self.queue.keys, self.temperature)
        # Queued after the backward pass: the loss's graph still reads the queue as it is now.
        self._new_keys = k
        return loss, h

    @torch.no_grad()
    def after_step(self) -> None:
        momentum_update(self.key_encoder, self.encoder, self.momentum)
        momentum_update(self.key_head, self.head, self.momentum)
        if self._new_keys is not None:
            self.queue.push(self._new_keys)
            self._new_keys = None


@METHODS.register
class MoCoConfig(MethodConfig):
    name: Literal["moco"]
    momentum: float = Field(0.99, ge=0, le=1, description="m in θ_k ← m·θ_k + (1 − m)·θ_q, after every step")
    queue_size: int = Field(4096, ge=1, description="K, the negatives' queue; at least train.batch_size")
    # Its negatives are the queue's keys whatever loss.negatives says (a study's SimCLR variants
    # may set it): unread, so out of the identity.
    ignores: ClassVar[frozenset[str]] = frozenset({"loss.negatives"})

    def conflicts(self, trial: TrialConfig) -> list[tuple[str, str]]:
        problems = []
        if trial.loss.name != "nt_xent":
            problems.append(("loss", f"moco takes its temperature from loss: nt_xent, not {trial.loss.name}"))
        if self.queue_size < trial.train.batch_size:
            problems.append((
                "method.queue_size",
                f"{self.queue_size} is less than train.batch_size {trial.train.batch_size}; "
                "the queue must hold at least one batch of keys",
            ))
        return problems + pair_conflicts(trial)

    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        if trial.loss.name != "nt_xent":
            raise ValueError(f"moco takes its temperature from loss: nt_xent, not {trial.loss.name}")
        encoder = build_encoder(trial, dataset)  # for views.pair's views, if any
        head = trial.model.head.build(encoder.dim)
        method = MoCo(
            encoder,
            head,
            trial.views,
            temperature=trial.loss.temperature,
            momentum=self.momentum,
            queue_size=self.queue_size,
            key_dim=trial.model.head.dim if trial.model.head.layers else encoder.dim,
            fixed_channels=dataset.fixed_channels,
        )
        return method.with_online(online_classes(trial, dataset))
