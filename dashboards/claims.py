"""What a study file claims: each finding of the paper and the check that judges it on our runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from dashboards.spec import Spec

CURVE_KINDS = ("drop_at_least", "drop_at_most", "rise_at_least", "monotone", "first_below", "peak_inside")
KINDS = (*CURVE_KINDS, "order", "better", "exceeds", "against_paper")
# Options that belong to some kinds only: (the kinds they go with, the kinds that need them).
_OPTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "along": ((*CURVE_KINDS, "order", "better", "exceeds"), CURVE_KINDS),
    "versus": (CURVE_KINDS, ()),
    "slack": (("monotone", "order"), ()),
    "at": (("order", "better", "exceeds"), ()),
    "within": (("first_below",), ("first_below",)),
    "than": (("better",), ("better",)),
    "by": (("better", "exceeds"), ()),
    "cells": (("against_paper",), ("against_paper",)),
}


class Check(Spec):
    """How a claim is tested on our runs: select rows, average over seeds, compare.

    The selectors (``variant``, ``target`` or any result column, given as extra keys) fix
    everything but ``along``; ``metric`` (default ``linear_acc``) is averaged over seeds at each
    point of ``along``. Exactly one comparison is given, one of::

        {variant: v, along: size, drop_at_least: 20}      # last point ≥ 20 below the first
        {variant: v, along: size, drop_at_most: 5}        # last point at most 5 below the first
        {variant: v, along: size, rise_at_least: 10}      # last point ≥ 10 above the first
        {variant: v, along: bits, monotone: decreasing, slack: 1}   # no step goes up by more than 1
        {order: [t005, t01, t02], along: bits, at: [5, 10], slack: 0.5}  # first highest, at each point
        {variant: v, along: size, first_below: 50, within: [40, 60]}  # where it first falls below 50
        {variant: v, along: lr, peak_inside: 2}           # maximum inside the range, ≥ 2 above both ends
        {better: simclr, than: random_net, by: 5, along: size, at: 80}   # at one point, or the mean
        {metric: transform_acc/rotation/h, exceeds: transform_acc/rotation/z, by: 10}  # two metrics, same runs
        {against_paper: 3, target: first_digit, cells: [{variant: v, size: 20}]}  # ± 3 of the paper

    ``versus: <variant>`` (with the curve kinds: drop_*, rise_at_least, monotone, first_below,
    peak_inside) follows the selected variant minus that one (e.g. SimCLR's edge over an
    untrained network). ``slack`` (points, default 0)
    lets each step or each pair go the wrong way by that much. ``order`` and ``better`` name
    variants themselves, so their selectors may not; without ``along`` they compare the mean
    over the cells (grid point, target and seed) that every named variant has finished.
    ``exceeds: <metric>`` compares two metrics of the same runs (e.g. h keeps more of the rotation
    than g(h)): each run's two values are paired, and ``metric`` − ``exceeds`` must be ≥ ``by``
    (default 0) after averaging over seeds: at ``at`` (one value of ``along``), at every point of
    ``along`` without ``at``, or, without ``along``, on the mean over the cells (grid point,
    target and seed) that have both.
    ``against_paper`` reads the paper's value of each cell from the study's ``reference``: a cell
    names the reference's row labels and its column key (the selectors apply to every cell).
    A point the check needs with no finished run makes the verdict "not enough runs".
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    metric: str = "linear_acc"
    along: str | None = None
    versus: str | None = Field(None, description="a variant whose curve is subtracted")
    drop_at_least: float | None = None
    drop_at_most: float | None = None
    rise_at_least: float | None = None
    monotone: Literal["decreasing", "increasing"] | None = None
    order: list[str] | None = Field(None, min_length=2, description="variants, the highest first")
    first_below: float | None = Field(None, description="a threshold; see within")
    peak_inside: float | None = Field(None, ge=0, description="margin above both ends")
    better: str | None = Field(None, description="a variant; see than and by")
    exceeds: str | None = Field(None, description="a metric of the same runs that metric must exceed; see by")
    against_paper: float | None = Field(None, ge=0, description="tolerance in points")
    slack: float | None = Field(None, ge=0, description="points each step or pair may go the wrong way")
    at: Any = Field(None, description="order: a value of along or a list; better, exceeds: one value")
    within: tuple[float, float] | None = Field(None, description="[low, high] values of along")
    than: str | None = None
    by: float | None = Field(None, description="better, exceeds: the least difference, default 0")
    cells: list[dict[str, Any]] | None = Field(None, min_length=1, description="the paper's cells to compare")

    @model_validator(mode="after")
    def _one_comparison(self) -> Check:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            got = f" (got {', '.join(given)})" if given else ""
            raise ValueError(f"give exactly one of {', '.join(KINDS)}{got}")
        kind = given[0]
        for option, (goes_with, needed_by) in _OPTIONS.items():
            if getattr(self, option) is None and kind in needed_by:
                raise ValueError(f"{kind} needs {option}")
            if getattr(self, option) is not None and kind not in goes_with:
                raise ValueError(f"{option} goes with {', '.join(goes_with)}, not {kind}")
        if self.versus is not None and "variant" not in self.selectors():
            raise ValueError("versus compares against the selected variant: give variant too")
        if kind in ("order", "better") and "variant" in self.selectors():
            raise ValueError(f"{kind} names the variants it compares: drop the variant selector")
        if self.at is not None and self.along is None:
            raise ValueError("at is a value of along: give along too")
        if kind == "better" and isinstance(self.at, list):
            raise ValueError("better compares at one value of along (or the mean, without at): at is not a list")
        if kind == "better" and self.better == self.than:
            raise ValueError("better and than name the same variant")
        if kind == "exceeds" and isinstance(self.at, list):
            raise ValueError("exceeds compares at one value of along (or at every point, without at): at is not a list")
        if kind == "exceeds" and self.exceeds == self.metric:
            raise ValueError(f"exceeds names the same metric as metric ({self.metric}): give another metric")
        if self.within is not None and self.within[0] > self.within[1]:
            raise ValueError("within is [low, high] with low ≤ high")
        return self

    @property
    def kind(self) -> str:
        """The comparison given: one of ``KINDS``."""
        return next(k for k in KINDS if getattr(self, k) is not None)

    def points(self) -> list[Any] | None:
        """``at`` as a list (``None`` when not given)."""
        if self.at is None:
            return None
        return list(self.at) if isinstance(self.at, list) else [self.at]

    def named_variants(self) -> list[tuple[str, str]]:
        """Every variant the check names, each with its key under ``check`` (``order[1]``, ``than``)."""
        named = [("variant", self.selectors().get("variant")), ("versus", self.versus)]
        named += [(f"order[{i}]", name) for i, name in enumerate(self.order or [])]
        named += [("better", self.better), ("than", self.than)]
        named += [(f"cells[{i}].variant", cell.get("variant")) for i, cell in enumerate(self.cells or [])]
        return [(key, name) for key, name in named if name is not None]

    def selectors(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Finding(Spec):
    claim: str
    check: Check
