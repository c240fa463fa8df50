"""What every loss provides, and the registry that names them.

A loss module is called ``loss(z1, z2, generator=generator)`` on the projections of the two
views of the same N images ([N, d] each, row i of ``z1`` pairs with row i of ``z2``) and returns
a scalar. ``generator`` is the trial's own random stream (``workers.methods.SimCLR`` passes the
per-trial generator, seeded with ``config.seed`` and on the trial's device): a loss that draws
random numbers (the sliced Wasserstein losses draw projections and prior samples) takes them
from it, so a trial stays reproducible from its seed; a deterministic loss ignores it.

Negatives that are not the batch's (a memory bank's, ``workers.memory_bank``): a loss whose
config sets ``takes_negatives = True`` also accepts two optional keywords,

    loss(z1, z2, generator=generator, negatives=bank, exclude=index)

``negatives`` [M, d]: then row i of ``z1`` is an anchor, row i of ``z2`` its positive and the M
rows of ``negatives`` its negatives, except row ``exclude[i]`` (int64 [N], optional: the
anchor's own bank entry). Without them (the default) the loss takes its negatives from the batch
as before. Losses that do not set ``takes_negatives`` are never passed either keyword.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from torch import nn

from workers.registry import Registry, Section


class LossConfig(Section):
    """What a loss config provides; register subclasses with ``@LOSSES.register``."""

    # Whether the built loss accepts ``negatives=`` and ``exclude=`` (see the module docstring).
    takes_negatives: ClassVar[bool] = False

    @abstractmethod
    def build(self) -> nn.Module:
        """The loss module, called as ``loss(z1, z2, generator=...)`` on the two views' projections."""


LOSSES: Registry[LossConfig] = Registry("loss", LossConfig)
