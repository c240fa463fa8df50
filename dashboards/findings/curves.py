"""Claims about the shape of one curve: how far it falls or rises, its direction, where it crosses, its peak.

Each check follows the metric, averaged over seeds, along one result column (``along``) for the
selected rows; with ``versus`` the curve is the selected variant minus that variant.
"""

from __future__ import annotations

import math

import pandas as pd

from dashboards.claims import Check
from dashboards.findings.base import NOT_ENOUGH, Verdict, curve, judged, no_run, number, points, signed, unfinished


def check_curve(claim: str, check: Check, frame: pd.DataFrame) -> Verdict:
    """Dispatch one of the curve kinds (``drop_at_least`` ... ``peak_inside``) on ``frame``."""
    means, label = _curve_of(check, frame)
    if check.monotone is not None:
        return monotone(claim, check, means, label)
    if check.first_below is not None:
        return first_below(claim, check, means, label)
    if check.peak_inside is not None:
        return peak_inside(claim, check, means, label)
    return ends(claim, check, means, label)


def ends(claim: str, check: Check, means: pd.Series, label: str) -> Verdict:
    """The claim "it falls (or rises) by so much": compare the first and the last point.

    ``drop_at_least: d``: first − last ≥ d; ``drop_at_most: d``: first − last ≤ d;
    ``rise_at_least: d``: last − first ≥ d.
    """
    if len(means) < 2 or math.isnan(means.iloc[0]) or math.isnan(means.iloc[-1]):
        return Verdict(claim, NOT_ENOUGH, f"needs finished runs at both ends of {check.along}")
    first, last = float(means.iloc[0]), float(means.iloc[-1])
    drop = first - last
    if check.drop_at_least is not None:
        ok, needs = drop >= check.drop_at_least, f"drop ≥ {check.drop_at_least:g}"
    elif check.drop_at_most is not None:
        ok, needs = drop <= check.drop_at_most, f"drop ≤ {check.drop_at_most:g}"
    else:
        ok, needs = -drop >= check.rise_at_least, f"rise ≥ {check.rise_at_least:g}"
    ends = f"{label}: {number(first)} at {check.along}={means.index[0]} → {number(last)} at {means.index[-1]}"
    return judged(claim, ok, f"{ends} (change {signed(last - first)}; needs {needs})")


def monotone(claim: str, check: Check, means: pd.Series, label: str) -> Verdict:
    """The claim "it keeps falling (rising) along ...": no step goes the wrong way by more than ``slack``."""
    if len(means) < 2:
        return Verdict(claim, NOT_ENOUGH, f"needs runs at two or more points of {check.along}")
    if missing := unfinished(means):
        return Verdict(claim, NOT_ENOUGH, no_run(check.along, missing))
    slack = check.slack or 0.0
    falling = check.monotone == "decreasing"
    steps = [
        (before, after, float(means[after] - means[before]))
        for before, after in zip(means.index[:-1], means.index[1:], strict=True)
    ]
    # How far each step goes the wrong way (negative: the right way).
    before, after, change = max(steps, key=lambda step: step[2] if falling else -step[2])
    wrong = change if falling else -change
    needs = f"no step {'up' if falling else 'down'} by more than {slack:g}"
    worst = f"worst step {before}→{after}: {signed(change)}"
    detail = f"{label} along {check.along}: {points(means)}; {worst} (needs {needs})"
    return judged(claim, wrong <= slack, detail)


def first_below(claim: str, check: Check, means: pd.Series, label: str) -> Verdict:
    """The claim "it breaks down at about x": the first point below the threshold lies in ``within``.

    Needs every point up to that first one; a curve that never falls below is not reproduced.
    """
    threshold, (low, high) = check.first_below, check.within
    needs = f"needs the first point below {threshold:g} in [{low:g}, {high:g}]"
    previous = None
    for point, value in means.items():
        if math.isnan(value):
            unknown = no_run(check.along, [point]) + f", before the curve is below {threshold:g}"
            return Verdict(claim, NOT_ENOUGH, unknown)
        if value < threshold:
            after = " (the first point)" if previous is None else f" (after {number(means[previous])} at {previous})"
            detail = f"{label} first below {threshold:g} at {check.along}={point}: {number(value)}{after}; {needs}"
            return judged(claim, low <= point <= high, detail)
        previous = point
    if previous is None:
        return Verdict(claim, NOT_ENOUGH, f"no runs along {check.along}")
    lowest = means.idxmin()
    lowest_text = f"lowest {number(means[lowest])} at {check.along}={lowest}"
    detail = f"{label} never falls below {threshold:g}: {lowest_text}; {needs}"
    return judged(claim, False, detail)


def peak_inside(claim: str, check: Check, means: pd.Series, label: str) -> Verdict:
    """The claim "there is a sweet spot": the maximum lies strictly inside the range of ``along``
    and is at least ``peak_inside`` points above both end points."""
    if len(means) < 3:
        return Verdict(claim, NOT_ENOUGH, f"needs runs at three or more points of {check.along}")
    if missing := unfinished(means):
        return Verdict(claim, NOT_ENOUGH, no_run(check.along, missing))
    peak = means.idxmax()
    top, first, last = float(means[peak]), float(means.iloc[0]), float(means.iloc[-1])
    inside = peak not in (means.index[0], means.index[-1])
    above = top - max(first, last)
    where = "" if inside else " (an end)"
    detail = (
        f"{label} peaks at {check.along}={peak}{where}: {number(top)}; ends {number(first)} at {means.index[0]}, "
        f"{number(last)} at {means.index[-1]} (peak − higher end {signed(above)}; "
        f"needs a peak inside, ≥ {check.peak_inside:g} above both ends)"
    )
    return judged(claim, inside and above >= check.peak_inside, detail)


def _curve_of(check: Check, frame: pd.DataFrame) -> tuple[pd.Series, str]:
    """The selected curve (minus the ``versus`` variant's) and how the detail names it."""
    selectors = check.selectors()
    means = curve(frame, selectors, check.along)
    if check.versus is None:
        return means, check.metric
    means = means - curve(frame, {**selectors, "variant": check.versus}, check.along)
    return means, f"{check.metric} of {selectors['variant']} − {check.versus}"
