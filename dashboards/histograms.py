"""Positive vs hardest-negative similarity distributions (Wang & Liu 2021), as histograms.

A trial may save ``similarities.npz`` at the root of its run's artifacts, computed on the test
split with l2-normalised features f:

- ``positive``: float32 [N], s⁺_i = f(x_i)ᵀ f(x_i⁺), each test anchor's similarity to its positive;
- ``negatives``: float32 [N, 10], the ten largest s⁻_ij = f(x_i)ᵀ f(x_j), j ≠ i, per anchor.

A small temperature τ makes the loss hardness-aware: the hardest negatives are pushed away, so
the "top-10 negatives" histogram moves left of the positives'. One panel per value of ``by``
(Wang & Liu's panels per τ), the runs of a panel pooled; each histogram sums to 1 (a share of
the pairs it counts), so the N positives and the 10·N negatives compare on one axis.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient

from dashboards.plots import finish, plt, save
from dashboards.runs import finished_only
from dashboards.spec import HistogramSpec, ReportSpec

SIMILARITIES = "similarities.npz"
POSITIVE, NEGATIVES = "positive", "negatives"


@dataclass
class Similarities:
    positive: np.ndarray  # [N]
    negatives: np.ndarray  # [N, K]


@dataclass
class Panel:
    """One group of cells: its ``row`` and ``by`` values, how many trials it has and has finished,
    and the pooled similarities of those that saved them (``None`` when none did)."""

    row: Any
    by: Any
    trials: int
    finished: int
    saved: int = 0
    similarities: Similarities | None = None


def read_similarities(path: Path | str) -> Similarities:
    """The arrays of a ``similarities.npz``; ValueError when one is missing or the shapes disagree."""
    with np.load(path) as data:
        if POSITIVE not in data or NEGATIVES not in data:
            raise ValueError(f"{path}: needs arrays {POSITIVE!r} and {NEGATIVES!r}, has {', '.join(data.files)}")
        positive, negatives = np.asarray(data[POSITIVE]).ravel(), np.asarray(data[NEGATIVES])
    if negatives.ndim != 2 or len(negatives) != len(positive):
        raise ValueError(f"{path}: negatives must be [N, K] with N = {len(positive)} positives, got {negatives.shape}")
    return Similarities(positive, negatives)


def run_similarities(tracking_uri: str) -> Callable[[str], Similarities | None]:
    """A loader: run id → the run's saved similarities, or ``None`` when it saved none."""
    client = MlflowClient(tracking_uri)

    def load(run_id: str) -> Similarities | None:
        names = {artifact.path for artifact in client.list_artifacts(run_id)}
        if SIMILARITIES not in names:
            return None
        with tempfile.TemporaryDirectory() as folder:
            return read_similarities(client.download_artifacts(run_id, SIMILARITIES, folder))

    return load


def similarity_panels(
    cells: pd.DataFrame, runs: pd.DataFrame, spec: HistogramSpec, load: Callable[[str], Similarities | None]
) -> list[Panel]:
    """One :class:`Panel` per (``rows`` value, ``by`` value), in the order the cells first have them.

    ``cells``: one row per sweep cell with its coordinates and ``trial_hash``; ``runs``: the latest
    run of each trial by hash (FINISHED ones are read). Cells sharing a trial count it once.
    """
    for key, value in spec.where.items():
        cells = cells[cells[key] == value]
    finished = finished_only(runs) if "run_id" in runs.columns else runs.iloc[0:0].assign(run_id="")
    keys = [spec.rows, spec.by] if spec.rows else [spec.by]
    panels = []
    for group, members in cells.groupby(keys, sort=False):
        group = group if isinstance(group, tuple) else (group,)
        hashes = list(dict.fromkeys(members["trial_hash"]))
        done = [h for h in hashes if h in finished.index]
        found = [s for s in (load(finished.loc[h, "run_id"]) for h in done) if s is not None]
        panel = Panel(row=group[0] if spec.rows else None, by=group[-1], trials=len(hashes), finished=len(done),
                      saved=len(found))
        if found:
            panel.similarities = Similarities(np.concatenate([s.positive for s in found]),
                                              np.concatenate([s.negatives for s in found]))
        panels.append(panel)
    return panels


def shares(values: np.ndarray, spec: HistogramSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(share of the values in each bin, bin edges)``; values beyond ``spec.range`` go in its end bins."""
    low, high = spec.range
    edges = np.linspace(low, high, spec.bins + 1)
    counts, _ = np.histogram(np.clip(values.ravel(), low, high), edges)
    return counts / max(counts.sum(), 1), edges


def similarity_figure(panels: list[Panel], spec: HistogramSpec, report: ReportSpec | None = None) -> Figure:
    """Overlaid histograms of positive and top-K-negative similarities, one panel per group."""
    report = report or ReportSpec()
    rows = list(dict.fromkeys(panel.row for panel in panels)) or [None]
    columns = list(dict.fromkeys(panel.by for panel in panels)) or [None]
    figure, axes = plt.subplots(len(rows), len(columns), figsize=(3.6 * len(columns), 3.0 * len(rows) + 0.6),
                                sharex=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis in axes.flat:  # a panel no cell has stays blank
        axis.set_axis_off()
    for panel in panels:
        axis = axes[rows.index(panel.row)][columns.index(panel.by)]
        axis.set_axis_on()
        title = f"{report.label(spec.by)}: {report.label(panel.by)}"
        if spec.rows:
            title = f"{report.label(panel.row)}, {title}"
        axis.set_title(f"{title} (runs: {panel.saved})", fontsize="medium")
        if panel.similarities is None:
            why = f"{panel.finished} of {panel.trials} trials finished,\nnone saved {SIMILARITIES}"
            axis.text(0.5, 0.5, why, ha="center", va="center", wrap=True, color="dimgray", fontsize="small",
                      transform=axis.transAxes)
            continue
        s = panel.similarities
        k = s.negatives.shape[1]
        for colour, name, values in ((colours[0], "positive", s.positive), (colours[3], f"top-{k} negatives",
                                                                                s.negatives)):
            heights, edges = shares(values, spec)
            axis.stairs(heights, edges, fill=True, alpha=0.45, color=colour,
                        label=f"{name} (mean {float(np.mean(values)):.2f})")
        axis.legend(fontsize="x-small", loc="upper left")
    for row in axes:
        for axis in row:
            axis.set_xlim(*spec.range)
            axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("cosine similarity")
    for row in axes:
        row[0].set_ylabel("share of pairs")
    title = spec.title or f"Similarity to the positive and to the hardest negatives, by {report.label(spec.by)}"
    legend = "test images; the runs of each panel pooled; each histogram sums to 1"
    return finish(figure, title, legend)


def plot_similarities(
    cells: pd.DataFrame, runs: pd.DataFrame, spec: HistogramSpec, path: Path,
    load: Callable[[str], Similarities | None], report: ReportSpec | None = None,
) -> Path:
    """Write the histograms of :func:`similarity_figure` for the study's runs to ``path``."""
    return save(similarity_figure(similarity_panels(cells, runs, spec, load), spec, report), path)
