"""Findings: each claim of the paper, checked against our runs.

A check selects rows (``variant: simclr_t02, target: first_digit``), averages the metric over
seeds at each value of ``along`` and compares what the claim is about: the two ends of the
curve, its direction, where it first falls below a threshold, its peak, the order of several
variants, one variant against another, one metric against another of the same runs, or our
numbers against the paper's (see :class:`dashboards.claims.Check` for the YAML of each). The
verdict is ``reproduced``, ``not reproduced`` or ``not enough runs`` (a point the check needs
has no finished run), with a detail that gives the numbers behind it.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from dashboards.claims import CURVE_KINDS, Finding
from dashboards.findings.base import NOT_ENOUGH, NOT_REPRODUCED, REPRODUCED, Verdict
from dashboards.findings.compare import against_paper, better, exceeds, order
from dashboards.findings.curves import check_curve
from dashboards.spec import Reference

__all__ = ["NOT_ENOUGH", "NOT_REPRODUCED", "REPRODUCED", "Verdict", "check_finding"]


def check_finding(
    finding: Finding,
    results: Callable[[str], pd.DataFrame],
    reference: Reference | None = None,
    table_columns: str | None = None,
) -> Verdict:
    """Judge one finding on the runs.

    ``results(metric)`` gives the per-run values of a metric (see ``dashboards.runs.metric_results``);
    ``exceeds`` reads two, ``check.metric`` and ``check.exceeds``.
    ``reference`` (the paper's numbers) and ``table_columns`` (the report table's columns key, what
    the reference's columns are values of unless it says) are needed by ``against_paper`` only.
    """
    check = finding.check
    frame = results(check.metric)
    if check.kind in CURVE_KINDS:
        return check_curve(finding.claim, check, frame)
    if check.kind == "order":
        return order(finding.claim, check, frame)
    if check.kind == "better":
        return better(finding.claim, check, frame)
    if check.kind == "exceeds":
        return exceeds(finding.claim, check, frame, results(check.exceeds))
    return against_paper(finding.claim, check, frame, reference, table_columns)
