"""A study's runs in a notebook: from a study file and a store to a DataFrame, its table and its figures.

    from dashboards.studies import load_study_runs, study_figures
    runs = load_study_runs("studies/feature_suppression.yaml", "sqlite:////abs/path/mlflow.db", scale="small")

Only MLflow is read (never the trainer or the orchestrator): the cells are the trials that have a
run, labelled by the tags the orchestrator gives each trial's run (``variant``, each swept key,
``seed``). A cell no run has reached yet is absent, and cells that share one trial (the same
resolved config) show once, under the first cell's labels. Give the store as an absolute URI: a
relative ``sqlite:///mlflow.db`` opened from another folder silently makes a new, empty store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from matplotlib.figure import Figure
from mlflow import MlflowClient

from dashboards.histograms import run_similarities, similarity_figure, similarity_panels
from dashboards.plots import against_figure, curves_figure, paired
from dashboards.runs import metric_results
from dashboards.spec import Reference, ReportSpec
from dashboards.tables import display_table, paper_table, paper_values

RUN_COLUMNS = ["trial_hash", "run_id", "experiment_id", "status", "start_time", "end_time", "overrides"]


def load_study_runs(study_path: Path | str, tracking_uri: str, scale: str = "paper") -> pd.DataFrame:
    """The latest run of every trial of the study at ``scale``, one row each.

    Columns: the cell's labels (``variant``, each swept or searched key, ``seed``, their YAML types restored),
    ``trial_hash``, ``run_id``, ``experiment_id``, ``status``, ``start_time``, ``end_time`` (ms),
    ``overrides`` (the ``--set`` of the invocation that started the run, "" for none) and each
    metric's last value (``linear_acc/first_digit``, ``train/loss``, ...). ``attrs`` holds
    ``study``, ``scale``, ``labels`` (the label columns) and ``tracking_uri``.
    """
    raw = _study_file(study_path)
    labels = ["variant", *_grid_keys(raw), "seed"]
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(raw["study"])
    rows, overrides = [], {}
    if experiment is not None:
        token = None
        while True:
            page = client.search_runs([experiment.experiment_id], filter_string=f"tags.scale = '{scale}'",
                                      max_results=1000, page_token=token)
            for run in page:
                tags, info = run.data.tags, run.info
                if "trial_hash" not in tags:  # an invocation's parent run
                    overrides[info.run_id] = run.data.params.get("overrides", "-")
                    continue
                rows.append({**{k: _typed(tags[k]) for k in labels if k in tags}, "trial_hash": tags["trial_hash"],
                             "run_id": info.run_id, "experiment_id": info.experiment_id, "status": info.status,
                             "start_time": info.start_time, "end_time": info.end_time,
                             "parent": tags.get("mlflow.parentRunId")} | run.data.metrics)
            token = page.token
            if not token:
                break
    frame = pd.DataFrame(rows, columns=None if rows else [*labels, *RUN_COLUMNS, "parent"])
    if rows:
        frame = frame.sort_values("start_time", kind="stable").drop_duplicates("trial_hash", keep="last")
    frame["overrides"] = frame["parent"].map(overrides).fillna("-").replace("-", "")
    present = [k for k in labels if k in frame.columns]
    metrics = sorted(c for c in frame.columns if c not in {*present, *RUN_COLUMNS, "parent"})
    frame = frame[[*present, *RUN_COLUMNS, *metrics]].reset_index(drop=True)
    frame.attrs.update(study=raw["study"], scale=scale, labels=present, tracking_uri=tracking_uri)
    return frame


def results_of(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per run (per target, for a metric logged per target) with the ``value`` of ``metric``.

    The frame the report's plots and tables read (``dashboards.runs.metric_results``): runs that
    have not finished get NaN.
    """
    labels = runs.attrs.get("labels", [])
    prefix = f"{metric}/"
    targets = None if metric in runs.columns else [c[len(prefix):] for c in runs.columns if c.startswith(prefix)]
    return metric_results(runs[[*labels, "trial_hash"]], runs.drop(columns=labels).set_index("trial_hash"), metric,
                          targets)


def study_table(study_path: Path | str, runs: pd.DataFrame) -> pd.DataFrame | None:
    """The study's table (``report.table``) as the report shows it, or None when it has none or no runs."""
    spec, reference = _report_of(study_path)
    if spec.table is None or runs.empty:
        return None
    table = paper_table(results_of(runs, spec.table.metric), spec.table, reference,
                        runs.set_index("trial_hash")["status"])
    return display_table(table, spec.table, spec.labels)


def study_figures(study_path: Path | str, runs: pd.DataFrame, tracking_uri: str | None = None) -> list[Figure]:
    """The figures of the study's report: each of ``report.plots`` (the paper's values dashed where
    the study's ``reference`` gives them) and ``report.histograms`` (read from ``tracking_uri``,
    default the store ``runs`` came from). None when there are no runs."""
    spec, reference = _report_of(study_path)
    if runs.empty:
        return []
    table_columns = spec.table.columns if spec.table else None
    figures = []
    for plot in spec.plots:
        if plot.x_metric:
            figures.append(against_figure(paired(results_of(runs, plot.y), results_of(runs, plot.x_metric)), plot,
                                          spec))
        else:
            paper = paper_values(reference, plot.y, plot.x, table_columns)
            figures.append(curves_figure(results_of(runs, plot.y), plot, paper, spec))
    uri = tracking_uri or runs.attrs.get("tracking_uri")
    if spec.histograms and uri:
        cells = runs[[*runs.attrs.get("labels", []), "trial_hash"]]
        panels = similarity_panels(cells, runs.set_index("trial_hash"), spec.histograms, run_similarities(uri))
        figures.append(similarity_figure(panels, spec.histograms, spec))
    return figures


def _study_file(path: Path | str) -> dict[str, Any]:
    raw = yaml.safe_load(Path(path).read_text())
    if not isinstance(raw, dict) or "study" not in raw:
        raise ValueError(f"{path}: not a study file (no 'study:' key)")
    return raw


def _report_of(path: Path | str) -> tuple[ReportSpec, Reference | None]:
    raw = _study_file(path)
    reference = raw.get("reference")
    return ReportSpec.model_validate(raw.get("report") or {}), (Reference.model_validate(reference)
                                                               if reference else None)


def _grid_keys(raw: dict[str, Any]) -> list[str]:
    """Every swept key of the study file (``sweep.grid``, ``sweep.zip``, ``search.space``), in the base
    or in any scale's overrides."""
    axes = [("sweep", "grid"), ("sweep", "zip"), ("search", "space")]
    keys = [key for section, name in axes for key in ((raw.get(section) or {}).get(name) or {})]
    for overrides in (raw.get("scales") or {}).values():
        for key, value in (overrides or {}).items():
            for section, name in axes:
                prefix = f"{section}.{name}"
                if key.startswith(f"{prefix}."):
                    keys.append(key[len(prefix) + 1:])
                elif key == prefix and isinstance(value, dict):
                    keys += list(value)
                elif key == section and isinstance(value, dict):
                    keys += list(value.get(name) or {})
    return list(dict.fromkeys(keys))


def _typed(text: str) -> Any:
    """A tag's value as the study file wrote it: ``16`` → 16, ``0.5`` → 0.5, ``True`` → True."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, int | float | bool) else text
