"""MLflow runs → pandas. Reads the tracking store only; never imports the trainer."""

from __future__ import annotations

import pandas as pd
from mlflow import MlflowClient

FINISHED, RUNNING, FAILED, KILLED = "FINISHED", "RUNNING", "FAILED", "KILLED"


def finished_trials(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """The latest FINISHED run of every trial in ``experiment``, indexed by ``trial_hash``.

    Columns: ``run_id``, ``end_time`` (ms) and one column per metric (its last value).
    """
    return _latest(_trial_runs(tracking_uri, experiment, "attributes.status = 'FINISHED'"), "end_time")


def trial_runs(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """The latest run of every trial in ``experiment``, whatever its status, indexed by ``trial_hash``.

    The run started last decides: a trial whose latest run is RUNNING (or FAILED, KILLED) shows
    as such even if an older run finished. Columns: ``run_id``, ``experiment_id``, ``status``,
    ``start_time``, ``end_time`` (ms) and one column per metric (its last value).
    """
    return _latest(_trial_runs(tracking_uri, experiment, ""), "start_time")


def _trial_runs(tracking_uri: str, experiment: str, filter_string: str) -> pd.DataFrame:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    rows = []
    if found is not None:
        token = None
        while True:
            page = client.search_runs(
                [found.experiment_id], filter_string=filter_string, max_results=1000, page_token=token
            )
            for run in page:
                trial_hash = run.data.tags.get("trial_hash")
                if trial_hash:
                    info = run.info
                    rows.append(
                        {"trial_hash": trial_hash, "run_id": info.run_id, "experiment_id": info.experiment_id,
                         "status": info.status, "start_time": info.start_time, "end_time": info.end_time}
                        | run.data.metrics
                    )
            token = page.token
            if not token:
                break
    columns = None if rows else ["trial_hash", "run_id", "experiment_id", "status", "start_time", "end_time"]
    return pd.DataFrame(rows, columns=columns)


def _latest(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    frame = frame.sort_values(by, kind="stable").drop_duplicates("trial_hash", keep="last")
    return frame.set_index("trial_hash")


def finished_only(runs: pd.DataFrame) -> pd.DataFrame:
    """The FINISHED rows of ``runs`` (all of them when it has no ``status`` column)."""
    return runs if "status" not in runs.columns else runs[runs["status"] == FINISHED]


def metric_results(
    cells: pd.DataFrame, runs: pd.DataFrame, metric: str, targets: list[str] | None = None
) -> pd.DataFrame:
    """One row per cell (per target, with ``targets``) holding the ``value`` of ``metric``.

    ``cells`` has a ``trial_hash`` column and the cell's coordinates (variant, grid keys, seed).
    A metric logged once per trial (``train/loss``) is read from the column ``metric``; one
    logged per target (``linear_acc/<target>``) needs ``targets`` and gets a ``target`` column.
    Cells whose trial has not finished get NaN: they are missing, not dropped. ``runs`` may hold
    unfinished runs too (a ``status`` column, as from :func:`trial_runs`): only FINISHED ones count.
    """
    merged = cells.join(finished_only(runs), on="trial_hash")
    if targets is None:
        values = merged[metric] if metric in merged.columns else float("nan")
        return merged[list(cells.columns)].assign(value=values)
    columns = {f"{metric}/{target}": target for target in targets}
    for column in columns:
        if column not in merged.columns:
            merged[column] = float("nan")
    long = merged.melt(id_vars=list(cells.columns), value_vars=list(columns), var_name="target", value_name="value")
    long["target"] = long["target"].map(columns)
    return long
