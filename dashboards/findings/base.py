"""What every check shares: the verdict, curves averaged over seeds, and how numbers are written."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

REPRODUCED, NOT_REPRODUCED, NOT_ENOUGH = "reproduced", "not reproduced", "not enough runs"


@dataclass(frozen=True)
class Verdict:
    claim: str
    status: str
    detail: str


def judged(claim: str, ok: bool, detail: str) -> Verdict:
    """REPRODUCED if ``ok`` else NOT_REPRODUCED, with the numbers behind it."""
    return Verdict(claim, REPRODUCED if ok else NOT_REPRODUCED, detail)


def select(frame: pd.DataFrame, selectors: dict[str, Any]) -> pd.DataFrame:
    """The rows whose columns equal every selector (a list names a list-valued key, held as a tuple)."""
    for key, value in selectors.items():
        wanted = tuple(value) if isinstance(value, list) else value
        # Element by element: ``series == tuple`` would compare position by position when the lengths match.
        frame = frame[frame[key].map(lambda held, wanted=wanted: held == wanted).astype(bool)]
    return frame


def curve(frame: pd.DataFrame, selectors: dict[str, Any], along: str) -> pd.Series:
    """Mean value (over seeds) at each point of ``along``, for the rows matching ``selectors``.

    A point whose runs have not finished is NaN; a point with no rows at all is absent.
    """
    return select(frame, selectors).groupby(along)["value"].mean().sort_index()


def value_at(means: pd.Series, point: Any) -> float:
    """The curve's value at ``point`` of along; NaN where it has none."""
    found = means[means.index == point]
    return float(found.iloc[0]) if len(found) else math.nan


def unfinished(means: pd.Series) -> list[Any]:
    """The points of a curve with no finished run."""
    return [point for point, value in means.items() if math.isnan(value)]


def number(value: float) -> str:
    """One decimal for accuracies in points; three significant digits below 10 (uniformity 3.86, tolerance 0.254)."""
    if math.isnan(value):
        return "·"
    if abs(value) >= 10:
        return f"{value:.1f}"
    text = f"{value:.3g}"
    return text if "." in text or "e" in text else f"{text}.0"


def signed(value: float) -> str:
    """``number`` with its sign: +12.3, −0.042."""
    return "·" if math.isnan(value) else ("+" if value >= 0 else "") + number(value)


def listing(values: Iterable[Any]) -> str:
    return ", ".join(str(value) for value in values)


def points(means: pd.Series) -> str:
    """``20: 40.5, 50: 30.0, 80: 10.5``."""
    return ", ".join(f"{point}: {number(value)}" for point, value in means.items())


def no_run(along: str | None, where: Iterable[Any], what: str = "") -> str:
    """The detail of a NOT_ENOUGH verdict: which points have no finished run."""
    of = f" of {what}" if what else ""
    at = f" at {along}={listing(where)}" if along else ""
    return f"no finished run{of}{at}"


def shared_means(frame: pd.DataFrame, selectors: dict[str, Any], variants: list[str]) -> tuple[pd.Series, int]:
    """Each variant's mean over the cells (grid point, target, seed) that every one of them finished.

    Returns the means (indexed by variant, NaN for all when no cell is shared) and the number of cells.
    """
    rows = select(frame, selectors)
    rows = rows[rows["variant"].isin(variants)]
    keys = [column for column in rows.columns if column not in ("variant", "trial_hash", "value")]
    wide = rows.groupby([*keys, "variant"])["value"].mean().unstack("variant")
    wide = wide.reindex(columns=variants).dropna()
    return wide.mean().reindex(variants), len(wide)
