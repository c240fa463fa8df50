"""``python -m orchestrator plan STUDY.yaml``: the study's trials, what the store holds of them, the time left.

It reads the study file and the tracking store and nothing else: it never starts (or imports)
Ray, never creates a store, and runs no trial. Each distinct trial is

- ``finished``: it has a FINISHED run (``run`` skips it);
- ``running``: its latest run is RUNNING (``running, stale`` when its process is gone: the next
  ``run`` closes it and trains the trial again);
- ``failed``: its latest run FAILED (``run`` leaves it alone without ``--rerun-failed``);
- ``pending``: no run, or its latest was KILLED (``run`` trains it).

The time left is an estimate from the finished trials' ``train/seconds`` (training time, not
counting data loading and evaluation)::

    work = Σ over pending trials of s(variant) + Σ over running trials of s(variant) · (1 − epochs done / epochs)
    time left ≈ work / concurrency

where ``s(variant)`` is the mean ``train/seconds`` of the variant's finished trials (of every
finished trial where the variant has none), and ``concurrency`` is
``execution.max_concurrent_trials`` or, without it, this machine's CPUs ÷ ``cpus_per_trial``
(``--concurrency`` gives it for a cluster).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from orchestrator.expansion import Trial, expand, unique
from orchestrator.spec import Study
from orchestrator.store import absolute_tracking_uri, check_store_folder, sqlite_path, state_folder
from orchestrator.tracking import open_store

FINISHED, RUNNING, FAILED, PENDING = "finished", "running", "failed", "pending"
SECONDS = "train/seconds"


@dataclass(frozen=True)
class Row:
    trial: Trial
    status: str  # FINISHED, RUNNING, FAILED or PENDING
    seconds: float | None = None  # train/seconds of its finished run
    done: float = 0.0  # the fraction of its epochs a running trial has logged
    stale: bool = False  # a RUNNING run whose process is gone


@dataclass(frozen=True)
class Plan:
    study: Study
    cells: int
    rows: list[Row]
    concurrency: int
    how_concurrency: str

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)

    def seconds_per_trial(self) -> dict[str, float]:
        """Mean ``train/seconds`` of the finished trials of each variant, and of all of them under ``""``."""
        done = [(row.trial.variant, row.seconds) for row in self.rows if row.seconds is not None]
        if not done:
            return {}
        frame = pd.DataFrame(done, columns=["variant", "seconds"])
        return {"": float(frame.seconds.mean()), **frame.groupby("variant").seconds.mean().to_dict()}

    def seconds_left(self) -> float | None:
        """The estimate of the module docstring, or None before any trial finished."""
        means = self.seconds_per_trial()
        if not means:
            return None
        work = 0.0
        for row in self.rows:
            if row.status == PENDING or (row.status == RUNNING and row.stale):
                work += means.get(row.trial.variant, means[""])
            elif row.status == RUNNING:
                work += means.get(row.trial.variant, means[""]) * (1 - row.done)
        return work / self.concurrency


def plan_study(study: Study, tracking_uri: str, concurrency: int | None = None) -> Plan:
    """Every distinct trial of ``study`` with its status in the store at ``tracking_uri`` (read only)."""
    cells = expand(study)
    trials = unique(cells)
    statuses, finished_seconds, progress, stale = _store_state(study, trials, tracking_uri)
    rows = []
    for trial in trials:
        status = statuses.get(trial.hash, PENDING)
        rows.append(Row(trial, status, finished_seconds.get(trial.hash), progress.get(trial.hash, 0.0),
                        trial.hash in stale))
    if concurrency is not None:
        how = "--concurrency"
    else:
        concurrency, how = _concurrency(study)
    return Plan(study, len(cells), rows, max(1, concurrency), how)


def _concurrency(study: Study) -> tuple[int, str]:
    execution = study.spec.execution
    if execution.max_concurrent_trials:
        return execution.max_concurrent_trials, "execution.max_concurrent_trials"
    cpus = os.cpu_count() or 1
    at_once = max(1, math.floor(cpus / execution.cpus_per_trial))
    return at_once, f"this machine's {cpus} CPUs ÷ cpus_per_trial={execution.cpus_per_trial:g}"


def _store_state(
    study: Study, trials: list[Trial], tracking_uri: str
) -> tuple[dict[str, str], dict[str, float], dict[str, float], set[str]]:
    """(status by hash, train/seconds of finished hashes, fraction done of running hashes, stale hashes)."""
    from dashboards.runs import finished_trials, trial_runs

    uri = absolute_tracking_uri(tracking_uri)
    database = sqlite_path(uri)
    if database is not None and not Path(database).exists():
        check_store_folder(uri)  # a folder that does not exist is an error; a missing file, an empty store
        return {}, {}, {}, set()
    client = open_store(uri)
    if client.get_experiment_by_name(study.name) is None:
        return {}, {}, {}, set()
    finished = finished_trials(uri, study.name)
    latest = trial_runs(uri, study.name)
    statuses: dict[str, str] = {}
    seconds: dict[str, float] = {}
    progress: dict[str, float] = {}
    stale: set[str] = set()
    by_hash = {trial.hash: trial for trial in trials}
    for trial_hash, run in latest.iterrows():
        if trial_hash in by_hash and run["status"] in ("RUNNING", "FAILED"):
            statuses[trial_hash] = RUNNING if run["status"] == "RUNNING" else FAILED
    for trial_hash in finished.index.intersection(list(by_hash)):
        statuses[trial_hash] = FINISHED
        value = finished.at[trial_hash, SECONDS] if SECONDS in finished.columns else None
        if value is not None and not pd.isna(value):
            seconds[trial_hash] = float(value)
    running = [h for h, status in statuses.items() if status == RUNNING]
    if running:
        # Only now: the lease rules live beside the trainable, whose module imports Ray (not starts it).
        from orchestrator.leases import stale_reason

        lease = study.spec.execution.lease_minutes * 60
        for trial_hash in running:
            run = client.get_run(latest.at[trial_hash, "run_id"])
            if stale_reason(run.data.tags, run.info.start_time, lease) is not None:
                stale.add(trial_hash)
            epochs = by_hash[trial_hash].config.train.epochs
            history = client.get_metric_history(run.info.run_id, "train/loss")
            progress[trial_hash] = min(1.0, max((m.step for m in history), default=0) / epochs) if epochs else 0.0
    return statuses, seconds, progress, stale


def print_search_plan(study: Study, tracking_uri: str, concurrency: int | None, console: Console) -> None:
    """A search's plan: its space, how many samples are done and left, and the time left (as for a grid)."""
    from orchestrator.search_journal import SearchState

    search = study.spec.search
    uri = absolute_tracking_uri(tracking_uri)
    check_store_folder(uri)
    state = SearchState.of(study, state_folder(uri))
    space = ", ".join(f"{key} ~ {d.kind} {d.corners()}" for key, d in search.space.items())
    console.print(f"{study.name} @ {study.scale}: search {state.name} ({search.mode} {search.metric}) over {space}")
    console.print(f"{state.done} of {search.num_samples} samples done, {state.left} to run "
                  f"(Optuna journal: {state.journal})")
    seconds = []
    database = sqlite_path(uri)
    if state.left and (database is None or Path(database).exists()):
        client = open_store(uri)
        experiment = client.get_experiment_by_name(study.name)
        runs = [] if experiment is None else client.search_runs(
            [experiment.experiment_id], f"tags.search = '{state.name}' and attributes.status = 'FINISHED'",
            max_results=1000)
        seconds = [run.data.metrics[SECONDS] for run in runs if SECONDS in run.data.metrics]
    if not state.left:
        console.print("time left: none")
    elif not seconds:
        console.print(f"time left: unknown until a sample finishes ({state.left} to go)")
    else:
        at_once, how = (concurrency, "--concurrency") if concurrency else _concurrency(study)
        left = state.left * sum(seconds) / len(seconds) / max(1, at_once)
        console.print(f"time left ≈ {_duration(left)}: {state.left} samples × the mean train/seconds of "
                      f"{len(seconds)} finished ones ÷ {at_once} at once ({how})")


def print_plan(plan: Plan, console: Console) -> None:
    study = plan.study
    axes = study.spec.sweep.axes()
    table = Table(title=f"{study.name} @ {study.scale}: {plan.cells} cells → {len(plan.rows)} distinct trials",
                  title_justify="left")
    for column in ["variant", *axes, "seed", "hash", "status"]:
        table.add_column(column, justify="right" if column in axes or column == "seed" else "left")
    colours = {FINISHED: "green", RUNNING: "yellow", FAILED: "red", PENDING: "white"}
    for row in plan.rows:
        point = dict(row.trial.point)
        status = row.status
        if row.status == RUNNING:
            status = "running, stale" if row.stale else f"running ({row.done:.0%})"
        table.add_row(row.trial.variant, *(str(point.get(axis, "")) for axis in axes), str(row.trial.seed),
                      row.trial.hash, f"[{colours[row.status]}]{status}[/]")
    console.print(table)
    counts = ", ".join(f"{plan.count(status)} {status}" for status in (FINISHED, RUNNING, FAILED, PENDING))
    console.print(counts + (" (failed trials run again with --rerun-failed)" if plan.count(FAILED) else ""))
    console.print(_estimate(plan))


def _estimate(plan: Plan) -> str:
    left = plan.count(PENDING) + plan.count(RUNNING)
    if left == 0:
        return "time left: none (nothing pending or running)"
    seconds = plan.seconds_left()
    if seconds is None:
        return f"time left: unknown until a trial finishes ({left} trials to go)"
    finished = sum(row.seconds is not None for row in plan.rows)
    return (
        f"time left ≈ {_duration(seconds)}: {plan.count(PENDING)} pending and {plan.count(RUNNING)} running trials "
        f"× the mean train/seconds of {finished} finished trials (per variant where it has some; "
        f"running ones by the epochs they have left) ÷ {plan.concurrency} at once ({plan.how_concurrency})"
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
