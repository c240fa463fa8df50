"""A study's report: the paper's table, its plots and its claims, from the runs in MLflow.

Written to ``reports/<study>/<scale>/``: ``index.html`` (the page to open: findings first, then
the table and plots, each of our cells linked to its MLflow run), ``report.md`` (the same in
Markdown), ``table.csv`` (tidy: ours, std, runs, paper, diff and status per cell),
``results.csv`` (one row per run and target), one PNG per plot (and one of the similarity
histograms, ``report.histograms``) and ``summary.json`` (what
``reports/index.html``, the list of every study's report, is built from).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from dashboards.claims import Finding
from dashboards.findings import NOT_ENOUGH, REPRODUCED, Verdict, check_finding
from dashboards.histograms import plot_similarities, run_similarities
from dashboards.html import DEFAULT_UI, report_page, run_url, ui_base, write_index
from dashboards.plots import paired, plot_against, plot_curves
from dashboards.runs import FINISHED, metric_results
from dashboards.spec import PlotSpec, Reference, ReportSpec
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
    study: str = ""
    scale: str = ""
    reproduces: str = ""
    description: str = ""
    spec: ReportSpec = field(default_factory=ReportSpec)
    links: list[list[tuple[str, str]]] = field(default_factory=list)  # per table row: (seed, run page URL)
    counts: dict[str, int] = field(default_factory=dict)  # cells, trials, finished, running, failed
    ui_base: str = DEFAULT_UI
    ui_guessed: bool = True

    def summary(self, limit: int = 8000) -> str:
        """Markdown for the parent run's description: what it reproduces, every verdict, the table.

        Cut at ``limit`` characters (MLflow's longest tag value), saying where the rest is.
        """
        text = self._summary()
        if len(text) <= limit:
            return text
        cut = "\n\n… (cut here: the whole report is under this run's artifacts, report/index.html)\n"
        return text[: limit - len(cut)] + cut

    def _summary(self) -> str:
        parts = [f"**{self.study} @ {self.scale}** reproduces: {self.reproduces}"]
        if self.verdicts:
            reproduced = sum(v.status == REPRODUCED for v in self.verdicts)
            parts.append(f"Findings: {reproduced} of {len(self.verdicts)} reproduced\n\n" + _verdict_lines(self))
        if self.display is not None:
            parts += [markdown(self.display), f"_{self.caption}_"]
        return "\n\n".join(parts) + "\n"


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
    description: str = "",
    tracking_uri: str | None = None,
    reports_root: Path | None = None,
) -> Report:
    """Build and write the report. ``cells``: one row per sweep cell with its ``trial_hash``.

    ``runs``: the latest run of each trial by hash (``dashboards.runs.trial_runs``; with a
    ``status`` column, running and failed cells show as such, else every row counts as finished).
    ``target_metrics`` are logged once per evaluated target (``linear_acc/<target>``).
    ``tracking_uri`` says where the run pages live (and the runs' saved similarity distributions,
    for ``spec.histograms``); ``reports_root`` (the folder holding every study's reports) gets its
    ``index.html`` rebuilt.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cache: dict[str, pd.DataFrame] = {}

    def results(metric: str) -> pd.DataFrame:
        if metric not in cache:
            cache[metric] = metric_results(cells, runs, metric, targets if metric in target_metrics else None)
        return cache[metric]

    base, guessed = ui_base(tracking_uri)
    report = Report(title=f"{study} @ {scale}: {reproduces}", folder=folder, study=study, scale=scale,
                    reproduces=reproduces, description=description, spec=spec, ui_base=base, ui_guessed=guessed)
    statuses = runs["status"] if "status" in runs.columns else pd.Series(FINISHED, index=runs.index)
    trial_status = cells["trial_hash"].drop_duplicates().map(statuses)
    report.counts = {"cells": len(cells), "trials": len(trial_status),
                     **{k.lower(): int((trial_status == k).sum()) for k in (FINISHED, "RUNNING", "FAILED")}}
    table_columns = spec.table.columns if spec.table else None
    if spec.table:
        frame = results(spec.table.metric)
        report.table = paper_table(frame, spec.table, reference, statuses)
        report.display = display_table(report.table, spec.table, spec.labels)
        report.table.to_csv(folder / "table.csv", index=False)
        report.links = _links(frame, report.table, spec, runs, base)
        finished = cells["trial_hash"].map(statuses).eq(FINISHED)
        columns = f"; columns: {spec.label(spec.table.columns)}" if spec.table.columns else ""
        report.caption = (
            f"{spec.label(spec.table.metric)}{columns}. Each cell: ours, mean ± std over n seeds, "
            f"then (the paper's value, ours − paper); {finished.sum()} of {len(cells)} cells finished; "
            "'not run', 'running', 'failed' where no run of the cell finished; '(—)' no paper value"
        )
        if reference:
            report.caption += f". Paper: {reference.source}" + (f" ({reference.note})" if reference.note else "")
        if scale == "smoke":
            report.caption += ". Smoke scale proves the pipeline, not the science: judge findings at small or paper"
    for index, plot in enumerate(spec.plots):
        path = folder / f"{index}_{_plot_name(plot)}.png"
        if plot.x_metric:
            report.plots.append(plot_against(paired(results(plot.y), results(plot.x_metric)), plot, path, spec))
        else:
            paper = paper_values(reference, plot.y, plot.x, table_columns)
            report.plots.append(plot_curves(results(plot.y), plot, path, paper, spec))
    if spec.histograms:
        name = f"{len(spec.plots)}_similarities_by_{spec.histograms.by}".replace("/", "_").replace(".", "_")
        path = folder / f"{name}.png"
        load = run_similarities(tracking_uri) if tracking_uri else lambda run_id: None
        report.plots.append(plot_similarities(cells, runs, spec.histograms, path, load, spec))
    report.verdicts = [check_finding(finding, results, reference, table_columns) for finding in findings]
    if cache:
        everything = pd.concat([frame.assign(metric=metric) for metric, frame in cache.items()])
        everything.to_csv(folder / "results.csv", index=False)
    (folder / "report.md").write_text(_markdown(report))
    (folder / "index.html").write_text(report_page(report))
    (folder / "summary.json").write_text(json.dumps(_summary_record(report), indent=2) + "\n")
    if reports_root is not None:
        write_index(Path(reports_root))
    return report


def leading_comments(path: Path | str) -> str:
    """The comment block that opens a study file (its description), without the ``#`` marks."""
    lines = []
    for line in Path(path).read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(lines).strip("\n")


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
    console.print(f"report: {report.folder / 'index.html'}" + "".join(f"\nplot:   {p}" for p in report.plots))


def _plot_name(plot: PlotSpec) -> str:
    return f"{plot.y}_vs_{plot.horizontal}".replace("/", "_").replace(".", "_")


def _links(frame: pd.DataFrame, table: pd.DataFrame, spec: ReportSpec, runs: pd.DataFrame, base: str):
    """For each row of the tidy table, ``(seed, run page URL)`` of every run of that cell."""
    if "run_id" not in runs.columns or "experiment_id" not in runs.columns:
        return [[] for _ in range(len(table))]
    keys = spec.table.rows + ([spec.table.columns] if spec.table.columns else [])
    found = frame.drop_duplicates([*keys, "trial_hash"]).join(runs[["run_id", "experiment_id"]], on="trial_hash")
    found = found.dropna(subset=["run_id"])
    labels = found["seed"].astype(str) if "seed" in found.columns else pd.Series("", index=found.index)
    by_cell: dict[tuple, list[tuple[str, str]]] = {}
    # Keys such as ``data.bits`` are no attribute names: rows as plain tuples.
    for cell, label, experiment, run in zip(
        found[keys].itertuples(index=False, name=None), labels, found["experiment_id"], found["run_id"], strict=True
    ):
        by_cell.setdefault(cell, []).append((label, run_url(base, experiment, run)))
    return [by_cell.get(tuple(row), []) for row in table[keys].itertuples(index=False, name=None)]


def _summary_record(report: Report) -> dict:
    reproduced = sum(v.status == REPRODUCED for v in report.verdicts)
    return {"study": report.study, "scale": report.scale, "reproduces": report.reproduces, **report.counts,
            "findings": len(report.verdicts), "reproduced": reproduced}


def _verdict_lines(report: Report) -> str:
    return "\n".join(f"- **{v.status}**: {v.claim}. {v.detail}" for v in report.verdicts)


def _markdown(report: Report) -> str:
    parts = [f"# {report.title}"]
    if report.verdicts:
        parts.append("## Findings\n\n" + _verdict_lines(report))
    if report.display is not None:
        parts += ["## Table", markdown(report.display), f"_{report.caption}_"]
    if report.plots:
        parts.append("## Plots")
    parts += [f"![{path.stem}]({path.name})" for path in report.plots]
    return "\n\n".join(parts) + "\n"
