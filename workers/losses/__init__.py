"""Contrastive losses, one family per module, each registered in ``LOSSES`` under its ``name``.

* ``nt_xent`` (``workers.losses.nt_xent``): SimCLR's NT-Xent and the notebooks' cross-view form.
* ``generalized`` (``workers.losses.generalized``): Chen, Luo & Li's alignment + λ·distribution,
  with a logsumexp or a sliced Wasserstein distribution term (their Table 1).
* ``hard_contrastive``, ``simple``, ``hard_simple`` (``workers.losses.hardness``): Wang & Liu's
  hardness-aware losses, with in-batch negatives or a memory bank's (``workers.memory_bank``).

A new family is one module here with ``@LOSSES.register`` on its config, imported below so that
it registers. The call contract every loss module keeps is in ``workers.losses.base``.
"""

from workers.losses.base import LOSSES, LossConfig
from workers.losses.generalized import GeneralizedConfig, GeneralizedContrastive
from workers.losses.hardness import (
    HardContrastive,
    HardContrastiveConfig,
    HardSimpleConfig,
    Simple,
    SimpleConfig,
)
from workers.losses.margin_triplet import MarginTriplet, MarginTripletConfig
from workers.losses.nt_logistic import NTLogistic, NTLogisticConfig
from workers.losses.nt_xent import NTXent, NTXentConfig

__all__ = [
    "LOSSES",
    "GeneralizedConfig",
    "GeneralizedContrastive",
    "HardContrastive",
    "HardContrastiveConfig",
    "HardSimpleConfig",
    "LossConfig",
    "MarginTriplet",
    "MarginTripletConfig",
    "NTLogistic",
    "NTLogisticConfig",
    "NTXent",
    "NTXentConfig",
    "Simple",
    "SimpleConfig",
]
