"""From a study to trials: each validated cell with its content address.

A trial's identity is the hash of what it computes (``TrialConfig.identity``), so two cells of
a study that resolve to the same config are one trial, and a finished trial is recognised in
any later invocation, whatever the study file around it looks like.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from orchestrator.spec import Study
from workers.config import IDENTITY_VERSION, TrialConfig

HASH_LENGTH = 16


def trial_hash(config: TrialConfig) -> str:
    """Hex digest of the canonical JSON (sorted keys, no spaces) of ``config.identity()`` and its version."""
    content = {"identity_version": IDENTITY_VERSION, "config": config.identity()}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


@dataclass(frozen=True)
class Trial:
    """One cell of the sweep: which variant, grid point and seed, and the config it resolves to."""

    config: TrialConfig
    hash: str
    variant: str
    point: tuple[tuple[str, Any], ...]
    seed: int

    def labels(self) -> dict[str, Any]:
        """The cell's coordinates: ``variant``, each grid key, ``seed`` (lists as tuples, to group by)."""
        point = {key: tuple(value) if isinstance(value, list) else value for key, value in self.point}
        return {"variant": self.variant, **point, "seed": self.seed}

    @property
    def name(self) -> str:
        point = " ".join(f"{key.rsplit('.', 1)[-1]}={_short(value)}" for key, value in self.point)
        return " ".join(part for part in (self.variant, point, f"seed={self.seed}") if part)


def _short(value: Any) -> Any:
    """A float as people read it (a sampled 0.0012520653814999472 is 0.001252); anything else as it is."""
    return f"{value:.4g}" if isinstance(value, float) else value


def expand(study: Study) -> list[Trial]:
    """Every cell of the study, in file order: variant, then grid point, then seed."""
    return [Trial(c.config, trial_hash(c.config), c.variant, c.point, c.seed) for c in study.cells]


def unique(trials: list[Trial]) -> list[Trial]:
    """One trial per identity, the first cell that has it."""
    first: dict[str, Trial] = {}
    for trial in trials:
        first.setdefault(trial.hash, trial)
    return list(first.values())
