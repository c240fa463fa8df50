"""A study's report: the paper's table, its curves and its claims, from the runs in MLflow.

Written to ``reports/<study>/<scale>/``: ``report.md`` (everything, for people), ``table.csv``
(tidy: ours, std, runs, paper per cell), ``results.csv`` (one row per run and target) and
one PNG per plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from dashboards.findings import NOT_ENOUGH, REPRODUCED, Verdict, check_finding
from dashboards.plots import plot_curves
from dashboards.runs import metric_results
from dashboards.spec import Finding, Reference, ReportSpec
from dashboards.tables import display_table, markdown, paper_table, paper_values


@dataclass
class Report:
    title: str
    folder: Path
    table: pd.DataFrame | None = None  # tidy, see tables.paper_table
    display: pd.DataFrame | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    caption: str = ""


def build_report(
    *,
    study: str,
    scale: str,
    reproduces: str,
    cells: pd.DataFrame,
    runs: pd.DataFrame,
    targets: list[str],
    target_metrics: set[str],
    spec: ReportSpec,
    reference: Reference | None,
    findings: list[Finding],
    folder: Path,
) -> Report:
    """Build and write the report. ``cells``: one row per sweep cell with its ``trial_hash``.

    ``target_metrics`` are logged once per evaluated target (``linear_acc/<target>``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    cache: dict[str, pd.DataFrame] = {}

    def results(metric: str) -> pd.DataFrame:
        if metric not in cache:
            cache[metric] = metric_results(cells, runs, metric, targets if metric in target_metrics else None)
        return cache[metric]

    report = Report(title=f"{study} @ {scale}: {reproduces}", folder=folder)
    table_columns = spec.table.columns if spec.table else None
    if spec.table:
        report.table = paper_table(results(spec.table.metric), spec.table, reference)
        report.display = display_table(report.table, spec.table)
        report.table.to_csv(folder / "table.csv", index=False)
        finished = cells["trial_hash"].isin(runs.index)
        report.caption = (
            f"{spec.table.metric}: ours (mean ± std over seeds) and (paper); {finished.sum()} of {len(cells)} "
            "cells finished; '·' not run yet, '—' no paper value"
        )
        if reference:
            report.caption += f". Paper: {reference.source}" + (f" ({reference.note})" if reference.note else "")
        if scale == "smoke":
            report.caption += ". Smoke scale proves the pipeline, not the science: judge findings at small or paper"
    for index, plot in enumerate(spec.plots):
        paper = paper_values(reference, plot.y, plot.x, table_columns)
        name = f"{plot.y}_vs_{plot.x}".replace("/", "_").replace(".", "_")
        report.plots.append(plot_curves(results(plot.y), plot, folder / f"{index}_{name}.png", paper))
    report.verdicts = [check_finding(finding, results, reference, table_columns) for finding in findings]
    if cache:
        everything = pd.concat([frame.assign(metric=metric) for metric, frame in cache.items()])
        everything.to_csv(folder / "results.csv", index=False)
    (folder / "report.md").write_text(_markdown(report))
    return report


def print_report(report: Report, console: Console) -> None:
    if report.display is not None:
        console.print(report.title, style="bold")
        table = Table(show_lines=False)
        for name in report.display.index.names:
            table.add_column(str(name), style="bold")
        for column in report.display.columns:
            table.add_column(str(column), justify="right")
        for index, row in report.display.iterrows():
            labels = list(index) if isinstance(index, tuple) else [index]
            table.add_row(*[str(v) for v in labels], *[str(v) for v in row.tolist()])
        console.print(table)
        console.print(report.caption, style="dim")
    for verdict in report.verdicts:
        colour = {REPRODUCED: "green", NOT_ENOUGH: "yellow"}.get(verdict.status, "red")
        console.print(f"[{colour}]{verdict.status:>16}[/] {verdict.claim}\n{'':>17}{verdict.detail}")
    console.print(f"report: {report.folder / 'report.md'}" + "".join(f"\nplot:   {p}" for p in report.plots))


def _markdown(report: Report) -> str:
    parts = [f"# {report.title}"]
    if report.display is not None:
        parts += [markdown(report.display), f"_{report.caption}_"]
    if report.verdicts:
        parts.append("## Findings\n\n" + "\n".join(
            f"- **{v.status}**: {v.claim}. {v.detail}" for v in report.verdicts
        ))
    parts += [f"![{path.stem}]({path.name})" for path in report.plots]
    return "\n\n".join(parts) + "\n"
