"""Claims that compare: variants with each other (``order``, ``better``), two metrics of the same runs
(``exceeds``) and our numbers with the paper's."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pandas as pd

from dashboards.claims import Check
from dashboards.findings.base import (
    NOT_ENOUGH,
    Verdict,
    curve,
    judged,
    listing,
    number,
    select,
    shared_means,
    signed,
    value_at,
)
from dashboards.spec import Reference


def order(claim: str, check: Check, frame: pd.DataFrame) -> Verdict:
    """The claim "a ≥ b ≥ c": the variants of ``order``, first the highest, at each point of ``at``.

    Without ``at``: at every point of ``along``; without ``along``: their means over shared cells.
    Each variant may fall below the next by at most ``slack``.
    """
    names, slack = check.order, check.slack or 0.0
    if check.along is None:
        means, count = shared_means(frame, check.selectors(), names)
        if count == 0:
            return Verdict(claim, NOT_ENOUGH, f"no cell that {', '.join(names)} have all finished")
        table = {f"over the {_cells(count)} all finished": means}
    else:
        curves = {name: curve(frame, {**check.selectors(), "variant": name}, check.along) for name in names}
        at = check.points() or sorted({point for means in curves.values() for point in means.index})
        table = {f"at {check.along}={point}": pd.Series({n: value_at(curves[n], point) for n in names}) for point in at}
        missing = [f"{n} {where}" for where, means in table.items() for n in names if math.isnan(means[n])]
        if not table or missing:
            return Verdict(claim, NOT_ENOUGH, f"no finished run of {'; '.join(missing) or listing(names)}")
    worst, shown = (-math.inf, ""), []
    for where, means in table.items():
        shown.append(f"{where}: " + ", ".join(f"{n} {number(means[n])}" for n in names))
        for higher, lower in itertools.pairwise(names):
            gap = float(means[lower] - means[higher])  # > 0: the wrong way round
            if gap > worst[0]:
                worst = (gap, f"{higher} − {lower} {where}: {signed(-gap)}")
    needs = "each ≥ the next" + (f" − {slack:g}" if slack else "")
    detail = f"{check.metric} {'; '.join(shown)}; closest pair {worst[1]} (needs {needs})"
    return judged(claim, worst[0] <= slack, detail)


def better(claim: str, check: Check, frame: pd.DataFrame) -> Verdict:
    """The claim "A beats B (by at least ``by``)": at ``at`` of ``along``, or on average.

    On average: over the points of ``along`` both variants have (each needs a finished run),
    or, without ``along``, over the cells (grid point, target, seed) both have finished.
    """
    a, b, by = check.better, check.than, check.by or 0.0
    if check.along is None:
        means, count = shared_means(frame, check.selectors(), [a, b])
        if count == 0:
            return Verdict(claim, NOT_ENOUGH, f"no cell that both {a} and {b} have finished")
        ours, theirs, where = float(means[a]), float(means[b]), f"mean over the {_cells(count)} both finished"
    else:
        curve_a, curve_b = (curve(frame, {**check.selectors(), "variant": v}, check.along) for v in (a, b))
        if check.at is not None:
            shared = [check.at]
            where = f"at {check.along}={check.at}"
        else:
            shared = [point for point in curve_a.index if point in set(curve_b.index)]
            where = f"mean over {check.along}={listing(shared)}"
        missing = [f"{v} at {check.along}={p}" for p in shared for v, c in ((a, curve_a), (b, curve_b))
                   if math.isnan(value_at(c, p))]
        if not shared or missing:
            return Verdict(claim, NOT_ENOUGH, f"no finished run of {'; '.join(missing) or f'{a} and {b}'}")
        ours = sum(value_at(curve_a, p) for p in shared) / len(shared)
        theirs = sum(value_at(curve_b, p) for p in shared) / len(shared)
    detail = (
        f"{check.metric} {where}: {a} {number(ours)} vs {b} {number(theirs)} "
        f"(difference {signed(ours - theirs)}; needs ≥ {by:g})"
    )
    return judged(claim, ours - theirs >= by, detail)


def exceeds(claim: str, check: Check, frame: pd.DataFrame, other: pd.DataFrame) -> Verdict:
    """The claim "A holds more than B" for two metrics of the same runs (h keeps more of the rotation than g(h)).

    ``frame`` holds ``metric`` (A), ``other`` holds ``exceeds`` (B), one row per run as from
    ``dashboards.runs.metric_results``. Runs are paired (same trial, and target when both have
    one) and only those with both values count; with Ā, B̄ their means over seeds the claim is
    Ā − B̄ ≥ ``by`` (default 0): at ``at`` of ``along``; at every point of ``along`` without
    ``at`` (the smallest difference decides); without ``along``, over the cells (grid point,
    target, seed) that have both.
    """
    a, b, by = check.metric, check.exceeds, check.by or 0.0
    rows = select(_paired(frame, other), check.selectors())
    pairs = rows.dropna(subset=["value", _OTHER])
    needs = f"needs ≥ {by:g}"
    if check.along is None:
        if pairs.empty:
            return Verdict(claim, NOT_ENOUGH, f"no finished run with both {a} and {b}")
        ours, theirs = float(pairs["value"].mean()), float(pairs[_OTHER].mean())
        where = f"mean over the {_cells(len(pairs))} with both"
        detail = f"{a} {number(ours)} vs {b} {number(theirs)}, {where} (difference {signed(ours - theirs)}; {needs})"
        return judged(claim, ours - theirs >= by, detail)
    along = check.along
    means = pairs.groupby(along)[["value", _OTHER]].mean()
    at = check.points() or rows.groupby(along).size().index.tolist()
    missing = [point for point in at if not (means.index == point).any()]
    if not at or missing:
        where = f" at {along}={listing(missing)}" if missing else f" along {along}"
        return Verdict(claim, NOT_ENOUGH, f"no finished run with both {a} and {b}{where}")
    values = {point: means[means.index == point].iloc[0] for point in at}
    worst = min(at, key=lambda point: values[point]["value"] - values[point][_OTHER])
    ours, theirs = float(values[worst]["value"]), float(values[worst][_OTHER])
    if len(at) == 1:
        where = f"at {along}={worst}"
        detail = f"{a} {number(ours)} vs {b} {number(theirs)} {where} (difference {signed(ours - theirs)}; {needs})"
    else:
        shown = ", ".join(f"{p}: {number(v['value'])} vs {number(v[_OTHER])}" for p, v in values.items())
        smallest = f"smallest difference {signed(ours - theirs)} at {along}={worst}"
        detail = f"{a} vs {b} along {along}: {shown}; {smallest} ({needs} at each point)"
    return judged(claim, ours - theirs >= by, detail)


def against_paper(
    claim: str, check: Check, frame: pd.DataFrame, reference: Reference | None, table_columns: str | None
) -> Verdict:
    """The claim "we get the paper's numbers": at each of ``cells``, within ± ``against_paper`` points.

    A cell names the paper's row labels and its column (``reference.column_key`` or the table's
    columns key); the check's selectors apply to every cell. Our value is the mean over seeds.
    """
    if reference is None or check.metric not in reference.metrics():
        held = f"holds {', '.join(sorted(reference.metrics()))}" if reference else "is missing"
        raise ValueError(f"against_paper compares {check.metric} with the study's reference, which {held}")
    compared: list[tuple[str, float, float]] = []
    unrun, unknown = [], []
    for cell in check.cells:
        where = _cell_name(cell)
        full = {**check.selectors(), **cell}
        paper = reference.paper_value(full, table_columns, check.metric)
        ours = float(select(frame, full)["value"].mean())
        if math.isnan(ours):
            unrun.append(where)
        if paper is None:
            unknown.append(where)
        compared.append((where, ours, math.nan if paper is None else paper))
    if unrun or unknown:
        parts = [f"no finished run at {'; '.join(unrun)}"] if unrun else []
        parts += [f"the paper gives no value at {'; '.join(unknown)}"] if unknown else []
        return Verdict(claim, NOT_ENOUGH, "; ".join(parts))
    shown = "; ".join(
        f"at {where}: {number(ours)} vs paper {number(paper)} ({signed(ours - paper)})"
        for where, ours, paper in compared
    )
    worst = max(abs(ours - paper) for _, ours, paper in compared)
    detail = f"{check.metric} {shown}; largest gap {number(worst)} (needs within ± {check.against_paper:g})"
    return judged(claim, worst <= check.against_paper, detail)


_OTHER = "value of exceeds"


def _paired(frame: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s rows with ``other``'s value of the same run (and target, when both have one) beside them."""
    on = ["trial_hash"] + (["target"] if "target" in frame.columns and "target" in other.columns else [])
    beside = other[[*on, "value"]].drop_duplicates(on).rename(columns={"value": _OTHER})
    return frame.merge(beside, on=on, how="left")


def _cell_name(cell: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in cell.items())


def _cells(count: int) -> str:
    return f"{count} cell{'' if count == 1 else 's'}"
