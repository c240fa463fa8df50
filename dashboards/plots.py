"""Plots as PNG: a metric along a swept key (curves), or against another measured metric (points).

Curves: our mean over seeds with ±1 std error bars, one line per ``hue``, one panel per
``facet``; the paper's values, where the study has them for that line, a dashed line of the same
colour. A metric with a chance level (``report.chance``) gets a dotted grey line labelled "chance".
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from dashboards.spec import PlotSpec, ReportSpec

_PLAIN = ReportSpec()


def plot_curves(
    results: pd.DataFrame, spec: PlotSpec, path: Path, paper: pd.DataFrame | None = None,
    report: ReportSpec | None = None,
) -> Path:
    """Write the plot of ``spec.y`` along ``spec.x`` to ``path`` (see :func:`curves_figure`)."""
    return save(curves_figure(results, spec, paper, report), path)


def curves_figure(
    results: pd.DataFrame, spec: PlotSpec, paper: pd.DataFrame | None = None, report: ReportSpec | None = None
) -> Figure:
    """The plot of ``spec.y`` along ``spec.x``: mean ± std over seeds per line, the paper's values dashed.

    ``results`` has one ``value`` per run (``dashboards.runs.metric_results``); ``paper`` has the
    ``results`` keys and a ``paper`` column; ``report`` gives labels and chance levels.
    """
    report = report or _PLAIN
    figure, panels = _panels(results, spec)
    drew_paper = False
    for axis, (facet, panel) in panels:
        for colour, hue, line in _lines(panel, spec):
            stats = line.groupby(spec.x)["value"].agg(["mean", "std"]).sort_index()
            axis.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), fmt="o-", color=colour,
                          capsize=3, label=report.label(hue) if hue is not None else report.label(spec.y))
            if paper is not None:
                reference = _select(_select(paper, spec.hue, hue), spec.facet, facet).dropna(subset=["paper"])
                if len(reference):
                    reference = reference.sort_values(spec.x)
                    axis.plot(reference[spec.x], reference["paper"], "x--", color=colour, alpha=0.8)
                    drew_paper = True
        _decorate(axis, spec, report, facet)
    legend = "solid: ours, mean ± std over seeds; " + ("dashed: the paper" if drew_paper else "no paper values to show")
    return finish(figure, spec.title or f"{report.label(spec.y)} vs {report.label(spec.x)}", legend)


def plot_against(results: pd.DataFrame, spec: PlotSpec, path: Path, report: ReportSpec | None = None) -> Path:
    """Write the plot of ``spec.y`` against ``spec.x_metric`` to ``path`` (see :func:`against_figure`)."""
    return save(against_figure(results, spec, report), path)


def against_figure(results: pd.DataFrame, spec: PlotSpec, report: ReportSpec | None = None) -> Figure:
    """The plot of ``spec.y`` against the measured ``spec.x_metric``: one point per trial.

    ``results`` has one row per run (and target) with ``value`` (the y metric) and ``x_value``
    (the x metric). Each point is labelled with its value of ``spec.annotate``, or of the one
    swept key there is besides variant and seed.
    """
    report = report or _PLAIN
    annotate = spec.annotate or _swept_key(results, spec)
    figure, panels = _panels(results, spec)
    for axis, (facet, panel) in panels:
        for colour, hue, points in _lines(panel, spec):
            points = points.dropna(subset=["value", "x_value"])
            if points.empty:  # e.g. a target this metric is not measured on: no legend entry for it either
                continue
            axis.plot(points["x_value"], points["value"], "o", color=colour,
                      label=report.label(hue) if hue is not None else report.label(spec.y))
            if annotate:
                for label, x, y in zip(points[annotate], points["x_value"], points["value"], strict=True):
                    axis.annotate(str(label), (x, y), textcoords="offset points", xytext=(4, 4),
                                  fontsize="x-small", color=colour)
        _decorate(axis, spec, report, facet)
    legend = "one point per trial" + (f", labelled with {report.label(annotate)}" if annotate else "")
    return finish(figure, spec.title or f"{report.label(spec.y)} vs {report.label(spec.x_metric)}", legend)


def paired(ys: pd.DataFrame, xs: pd.DataFrame) -> pd.DataFrame:
    """The y metric's rows with ``x_value``: the x metric of the same run (and target, when both have one).

    For :func:`against_figure`; ``ys`` and ``xs`` as from ``dashboards.runs.metric_results``.
    """
    on = ["trial_hash"] + (["target"] if "target" in ys.columns and "target" in xs.columns else [])
    return ys.merge(xs[[*on, "value"]].rename(columns={"value": "x_value"}), on=on, how="left")


def _panels(results: pd.DataFrame, spec: PlotSpec):
    facets = list(dict.fromkeys(results[spec.facet])) if spec.facet else [None]
    figure, axes = plt.subplots(1, len(facets), figsize=(4.8 * len(facets), 4), sharey=True, squeeze=False)
    panels = [(facet, results if facet is None else results[results[spec.facet] == facet]) for facet in facets]
    return figure, list(zip(axes[0], panels, strict=True))


def _lines(panel: pd.DataFrame, spec: PlotSpec):
    """``(colour, hue value, rows)`` for each line of a panel, colours in the order hues first appear."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    hues = list(dict.fromkeys(panel[spec.hue])) if spec.hue else [None]
    for index, hue in enumerate(hues):
        yield colours[index % len(colours)], hue, panel if hue is None else panel[panel[spec.hue] == hue]


def _decorate(axis, spec: PlotSpec, report: ReportSpec, facet) -> None:
    level = report.chance_level(spec.y, facet if spec.facet == "target" else None)
    if level is not None:
        axis.axhline(level, linestyle=":", color="grey", label="chance")
    axis.set_xlabel(spec.xlabel or report.label(spec.horizontal))
    axis.set_ylabel(spec.ylabel or report.label(spec.y))
    if facet is not None:
        axis.set_title(f"{report.label(spec.facet)}: {report.label(facet)}")
    axis.grid(alpha=0.3)
    axis.legend(title=report.label(spec.hue) if spec.hue else None, fontsize="small")


def finish(figure: Figure, title: str, legend: str) -> Figure:
    """Title the figure, say under it how to read it, lay it out; closed to pyplot (a notebook shows it
    when displayed, not twice)."""
    width = int(figure.get_figwidth() * 11)  # characters of the title's font that fit the figure
    figure.suptitle(textwrap.fill(title, width))
    figure.text(0.5, 0.01, legend, ha="center", fontsize="small", color="dimgray")
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    plt.close(figure)
    return figure


def save(figure: Figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def _swept_key(results: pd.DataFrame, spec: PlotSpec) -> str | None:
    """The one column that varies besides variant, seed, target, hue and facet; None unless exactly one."""
    fixed = {"variant", "seed", "target", "trial_hash", "value", "x_value", spec.hue, spec.facet}
    keys = [column for column in results.columns if column not in fixed and results[column].nunique() > 1]
    return keys[0] if len(keys) == 1 else None


def _select(frame: pd.DataFrame, key: str | None, value) -> pd.DataFrame:
    """Rows of ``frame`` for one line or panel; none when the paper's rows do not say which."""
    if key is None:
        return frame
    if key not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame[key] == value]
