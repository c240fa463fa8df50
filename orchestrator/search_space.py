"""The ``search:`` block: Optuna samples trial configs from declared distributions.

    search:
      space:
        optim.lr:          {loguniform: [1.0e-4, 1.0e-1]}   # log-uniform on [low, high]
        loss.temperature:  {uniform: [0.05, 0.5]}           # uniform on [low, high]
        train.batch_size:  {int: [32, 256]}                 # an integer in [low, high], both included
        model.head.layers: {choice: [1, 2, 3]}              # one of the values
      metric: linear_acc/first_digit    # what Optuna optimises: a trial's last report
      mode: max                         # or min
      num_samples: 20                   # trials of the search in all, across invocations
      seed: 0                           # the sampler's
      asha: {metric: train/loss, mode: min, grace_period: 1, reduction_factor: 2}   # optional

Each sample is the base config with the sampled values set, validated, hashed and trained as
an ordinary trial (its own MLflow child run, every resolved parameter logged). A study with a
search has no grid, zip or variants, and one seed. Distributions map one to one onto Optuna's
(``FloatDistribution(low, high, log=...)``, ``IntDistribution(low, high)``,
``CategoricalDistribution``). ASHA (``asha``) stops trials early on a per-epoch metric.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, model_validator

from orchestrator.errors import StudyError
from orchestrator.overrides import set_path
from orchestrator.sweep import SpecModel, overlap
from workers.trainer import EPOCH_METRICS, TARGET_METRICS, TRIAL_METRICS

Scalar = builtins.int | float | str | bool | None


class Distribution(SpecModel):
    """One of ``uniform``, ``loguniform``, ``int`` (each ``[low, high]``) or ``choice`` (a list)."""

    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    choice: list[Scalar] | None = Field(None, min_length=1, description="numbers, strings or booleans")
    int: tuple[builtins.int, builtins.int] | None = None

    @model_validator(mode="after")
    def _one_kind_in_order(self) -> Distribution:
        given = [kind for kind in ("uniform", "loguniform", "int", "choice") if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of uniform, loguniform, int, choice (got {', '.join(given) or 'none'})")
        bounds = getattr(self, given[0])
        if given[0] != "choice" and not bounds[0] < bounds[1]:
            raise ValueError(f"{given[0]} needs low < high (got {list(bounds)})")
        if given[0] == "loguniform" and bounds[0] <= 0:
            raise ValueError(f"loguniform needs 0 < low (got {bounds[0]})")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in ("uniform", "loguniform", "int", "choice") if getattr(self, kind) is not None)

    def corners(self) -> list[Any]:
        """The values that bound what can be sampled: both ends of a range, every choice."""
        return list(self.choice) if self.kind == "choice" else list(getattr(self, self.kind))

    def optuna(self):
        """The Optuna distribution it stands for."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(self.choice)
        if self.kind == "int":
            return IntDistribution(*self.int)
        low, high = getattr(self, self.kind)
        return FloatDistribution(low, high, log=self.kind == "loguniform")


class Asha(SpecModel):
    """Asynchronous successive halving: stop trials whose ``metric`` trails at each rung."""

    metric: str = Field(description="a per-epoch metric, e.g. train/loss or online_acc/<target>")
    mode: Literal["min", "max"]
    grace_period: builtins.int = Field(1, ge=1, description="epochs before a trial may be stopped")
    reduction_factor: float = Field(2, gt=1, allow_inf_nan=False)


class Search(SpecModel):
    space: dict[str, Distribution] = Field(min_length=1, description="dotted trial key → distribution")
    metric: str
    mode: Literal["min", "max"]
    num_samples: builtins.int = Field(ge=1, description="trials of the search in all, across invocations")
    seed: builtins.int = Field(0, description="the sampler's seed")
    asha: Asha | None = None

    def optuna_name(self, study: str, base_identity: dict[str, Any]) -> str:
        """The Optuna study's name, ``<study>-<fingerprint>``: also the ``search`` tag of its trials' runs."""
        return f"{study}-{self.fingerprint(base_identity)}"

    def fingerprint(self, base_identity: dict[str, Any]) -> str:
        """What makes two invocations the same search: the base trial, the space, the metric and mode."""
        content = {"base": base_identity, "space": {k: v.model_dump(exclude_none=True) for k, v in self.space.items()},
                   "metric": self.metric, "mode": self.mode}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]


def per_trial_metrics(targets: list[str]) -> list[str]:
    """Every metric name a trial's last report holds (target metrics once per target)."""
    return [*(f"{m}/{t}" for m in TARGET_METRICS for t in targets), *EPOCH_METRICS, *TRIAL_METRICS]


def per_epoch_metrics(targets: list[str]) -> list[str]:
    """The metrics every epoch's report holds (``online_acc/<target>`` with ``eval.online``)."""
    return [*EPOCH_METRICS, *(f"online_acc/{t}" for t in targets)]


def check_search(file: str, spec: Any, base: Any, validate: Callable[..., Any], *, where: str) -> None:
    """A search's study has no other sweep, its metrics exist, and every corner of its space is a valid trial.

    ``base`` is the validated base trial config; ``validate(file, raw, where=..., prefix=...)``
    validates one raw trial config.
    """
    search: Search = spec.search
    targets = list(base.data.targets)
    online = list(base.eval.online.targets) if base.eval.online else []
    sweep = spec.sweep
    for section in ("grid", "zip", "variants"):
        if getattr(sweep, section):
            raise StudyError(file, "a study with search: has no grid, zip or variants; remove it or the search",
                             key=f"sweep.{section}", where=where)
    if len(sweep.seeds) != 1:
        raise StudyError(file, f"a search trains each sample with one seed; sweep.seeds has {len(sweep.seeds)}",
                         key="sweep.seeds", where=where)
    allowed = per_trial_metrics(targets)
    if search.metric not in allowed:
        raise StudyError(file, f"unknown metric {search.metric!r}; allowed: {', '.join(allowed)}",
                         key="search.metric", where=where)
    if search.asha is not None and search.asha.metric not in per_epoch_metrics(online):
        allowed = ", ".join(per_epoch_metrics(online))
        message = f"ASHA needs a metric reported every epoch; {search.asha.metric!r} is not one of {allowed}"
        raise StudyError(file, message, key="search.asha.metric", where=where)
    epochs = base.train.epochs
    if search.asha is not None and search.asha.grace_period >= epochs:
        message = (f"{search.asha.grace_period} is not before the last epoch (train.epochs={epochs}): ASHA could "
                   "only stop trials that trained to the end")
        raise StudyError(file, message, key="search.asha.grace_period", where=where)
    for key, distribution in search.space.items():
        if overlap(key, "seed"):
            raise StudyError(file, "seeds come from sweep.seeds, not a search", key=f"search.space.{key}", where=where)
        for value in distribution.corners():
            raw = set_path(spec.base, key, value)
            validate(file, {**raw, "seed": sweep.seeds[0]}, where=f"search.space.{key}={value!r}", prefix="")

