"""Running trials through Ray Tune: one Tuner per invocation, one Tune trial per pending trial.

Ray starts a local instance when no ``address`` is given; with one, the same code runs on a
cluster. Each trial asks for ``execution.cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs
(fractions share a GPU). A failing trial fails alone: Tune records its error and goes on.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from orchestrator.expansion import Trial
from orchestrator.spec import Execution

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables would fight the progress bars
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

from ray import tune

from workers import tune_adapter


@dataclass(frozen=True)
class Tracking:
    """Where trials log: the MLflow store, the study's experiment, this invocation's parent run."""

    uri: str
    experiment_id: str
    parent_run_id: str
    tags: dict[str, str] = field(default_factory=dict)
    state: Path | None = None  # the study's state folder: checkpoints under checkpoints/<experiment>/<hash>
    heartbeat_seconds: float = 30.0


FINISHED, FAILED, INTERRUPTED = "finished", "failed", "interrupted"


@dataclass(frozen=True)
class Outcome:
    trial: Trial
    status: str  # FINISHED, FAILED (with its reason) or INTERRUPTED (stopped or never started)
    reason: str = ""


def run_trials(
    trials: list[Trial],
    *,
    tracking: Tracking,
    data_root: Path,
    execution: Execution,
    address: str | None = None,
    storage_path: Path | None = None,
    console: Console | None = None,
) -> list[Outcome]:
    """Run ``trials`` (distinct identities) to completion; returns one outcome each."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    # Ray's driver aborts on SIGTERM; treat it as Ctrl-C, which Tune turns into a graceful stop.
    signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT))
    gpus = execution.gpus_per_trial
    if gpus == "auto":
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    resources = {"cpu": execution.cpus_per_trial, "gpu": gpus}
    by_hash = {trial.hash: trial for trial in trials}
    requests = [_request(trial, tracking, data_root, execution) for trial in trials]
    console = console or Console()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        callback = _ProgressCallback(progress, by_hash)
        tuner = tune.Tuner(
            tune.with_resources(tune_adapter.trainable, resources),
            param_space={"request": tune.grid_search(requests)},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=execution.max_concurrent_trials,
                trial_name_creator=lambda t: t.config["request"]["hash"],
                trial_dirname_creator=lambda t: t.config["request"]["hash"],
            ),
            run_config=tune.RunConfig(
                name=f"{tracking.tags.get('study', 'study')}-{tracking.parent_run_id[:8]}",
                storage_path=str((storage_path or Path("~/ray_results")).expanduser().resolve()),
                verbose=0,
                callbacks=[callback],
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        results = tuner.fit()
    outcomes: dict[str, Outcome] = {}
    for result in results:
        if result.config is None:  # a trial stopped before its first report says nothing
            continue
        trial = by_hash[result.config["request"]["hash"]]
        if result.error is not None:
            outcomes[trial.hash] = Outcome(trial, FAILED, _reason(result.error))
        elif tune_adapter.FINISHED_MARK in (result.metrics or {}):
            outcomes[trial.hash] = Outcome(trial, FINISHED)
    # Tune returns normally after Ctrl-C: whatever did not finish or fail was stopped or never started.
    return [outcomes.get(trial.hash, Outcome(trial, INTERRUPTED)) for trial in trials]


def _request(trial: Trial, tracking: Tracking, data_root: Path, execution: Execution) -> dict[str, Any]:
    checkpoints = None if tracking.state is None else tracking.state / "checkpoints" / tracking.experiment_id
    return {
        "hash": trial.hash,
        "name": trial.name,
        "config": trial.config.model_dump(mode="json"),
        "tags": {**tracking.tags, "trial_hash": trial.hash, **{k: str(v) for k, v in trial.labels().items()}},
        "tracking_uri": tracking.uri,
        "experiment_id": tracking.experiment_id,
        "parent_run_id": tracking.parent_run_id,
        "data_root": str(data_root),
        "cpus": execution.cpus_per_trial,
        "checkpoint_dir": None if checkpoints is None else str(checkpoints / trial.hash),
        "checkpoint_every": execution.checkpoint_every,
        "heartbeat_seconds": tracking.heartbeat_seconds,
    }


def _reason(error: BaseException) -> str:
    """The innermost exception's one-line message, not Ray's wrapping of it."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


class _ProgressCallback(tune.Callback):
    """A bar for the whole study and one per running trial (epochs done)."""

    def __init__(self, progress: Progress, trials: dict[str, Trial]) -> None:
        self.progress = progress
        self.trials = trials
        self.overall = progress.add_task("[bold]trials", total=len(trials))
        self.running: dict[str, TaskID] = {}

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks into the experiment state; the live display stays here.
        return {}

    def on_trial_start(self, iteration, trials, trial, **info):
        key = trial.config["request"]["hash"]
        config = self.trials[key].config
        epochs = 0 if "train" in config.method.ignores else config.train.epochs
        self.running[key] = self.progress.add_task(f"  {self.trials[key].name}", total=max(epochs, 1))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        task = self.running.get(trial.config["request"]["hash"])
        if task is not None and "train/loss" in result:
            self.progress.update(task, completed=result["epoch"])

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._done(trial, "")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._done(trial, " [red]failed")

    def _done(self, trial, note: str) -> None:
        key = trial.config["request"]["hash"]
        task = self.running.pop(key, None)
        if task is not None:
            self.progress.remove_task(task)
        self.progress.console.print(f"  {'✗' if note else '✓'} {self.trials[key].name}{note}")
        self.progress.advance(self.overall)
