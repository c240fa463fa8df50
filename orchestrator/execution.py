"""Running trials through Ray Tune: one Tuner per invocation, one Tune trial per pending trial.

Ray starts a local instance when no ``address`` is given; with one, the same code runs on a
cluster. Each trial asks for ``execution.cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs
(fractions share a GPU); ``orchestrator.cluster.connect`` refuses, before anything runs, what no
node of the cluster can ever give. Tune reuses a worker process for the next trial (``reuse_actors``), so a
sweep of short trials does not pay a process start and torch's import each. A failing trial
fails alone: Tune records its error and goes on. Ray's own log (Tune's tracebacks included)
goes to a file whose path the run prints; the console shows the progress and one line per
failed trial.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.cluster import start_ray  # first: it sets Ray's environment before Ray's import

# isort: split
from ray import tune
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator.expansion import Trial
from orchestrator.progress import ProgressCallback, StudyProgress
from orchestrator.spec import Execution
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


FINISHED, FAILED, INTERRUPTED, STOPPED = "finished", "failed", "interrupted", "stopped early"


@dataclass(frozen=True)
class Outcome:
    trial: Trial
    status: str  # FINISHED, FAILED (with its reason), STOPPED (by a scheduler) or INTERRUPTED (or never started)
    reason: str = ""
    started: bool = False  # it began training in this invocation
    metrics: dict[str, Any] = field(default_factory=dict)  # its last report to Tune


def run_trials(
    trials: list[Trial],
    *,
    tracking: Tracking,
    data_root: Path,
    execution: Execution,
    address: str | None = None,
    storage_path: Path | None = None,
    console: Console | None = None,
    log_file: Path | None = None,
    skipped: int = 0,
) -> list[Outcome]:
    """Run ``trials`` (distinct identities) to completion; returns one outcome each.

    ``skipped``: the study's trials not run now (finished earlier), for the progress display.
    """
    by_hash = {trial.hash: trial for trial in trials}
    requests = [request(trial, tracking, data_root, execution) for trial in trials]

    def trial_of(config: dict) -> Trial:
        return by_hash[config["request"]["hash"]]

    results, callback = fit(
        tune_adapter.trainable,
        param_space={"request": tune.grid_search(requests)},
        trial_of=trial_of,
        total=len(trials), tracking=tracking, execution=execution, address=address,
        storage_path=storage_path, console=console, log_file=log_file, skipped=skipped,
    )
    outcomes = {o.trial.hash: o for o in outcomes_of(results, trial_of, callback)}
    # Tune returns normally after Ctrl-C: whatever did not finish or fail was stopped or never started.
    return [outcomes.get(t.hash, Outcome(t, INTERRUPTED, started=t.hash in callback.started)) for t in trials]


def fit(
    trainable: Callable[[dict], None],
    *,
    param_space: dict[str, Any],
    trial_of: Callable[[dict], Trial],
    total: int,
    tracking: Tracking,
    execution: Execution,
    address: str | None = None,
    storage_path: Path | None = None,
    console: Console | None = None,
    log_file: Path | None = None,
    skipped: int = 0,
    **tune_config: Any,
):
    """One Tuner over ``param_space``; returns Tune's results and its callback (which trials started, ended).

    ``trial_of`` maps a Tune trial's config to the trial it trains; ``tune_config`` goes to
    ``tune.TuneConfig`` (``num_samples``, ``search_alg``, ``scheduler``...).
    """
    import ray

    start_ray(address)
    # Ray's driver aborts on SIGTERM; treat it as Ctrl-C, which Tune turns into a graceful stop.
    signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT))
    gpus = execution.gpus_per_trial
    if gpus == "auto":
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    console = console or Console()
    if log_file is not None:
        console.print(f"Ray's log (tracebacks of failed trials): {log_file}", style="dim")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"), console=console, transient=False,
    ) as progress, ray_log_to(log_file):
        resources = ray.cluster_resources()  # how many trials run at once, for the ETA
        fits = int(resources.get("CPU", 1) // execution.cpus_per_trial) or 1
        if gpus:
            fits = min(fits, int(resources.get("GPU", 0) // gpus) or 1)
        concurrency = min(execution.max_concurrent_trials or fits, fits, max(total, 1))
        state = StudyProgress(total=total, skipped=skipped, concurrency=concurrency)
        callback = ProgressCallback(progress, trial_of, state)
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": execution.cpus_per_trial, "gpu": gpus}),
            param_space=param_space,
            tune_config=tune.TuneConfig(
                max_concurrent_trials=execution.max_concurrent_trials,
                # A worker process trains one trial after another: no process start, no second
                # import of torch, and its dataset cache (workers/data/cache.py) serves the next trial.
                reuse_actors=True,
                trial_name_creator=lambda t: trial_of(t.config).hash,
                trial_dirname_creator=lambda t: f"{trial_of(t.config).hash}-{t.trial_id}",
                **tune_config,
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
    return results, callback


def outcomes_of(results, trial_of: Callable[[dict], Trial], callback: ProgressCallback) -> list[Outcome]:
    """One outcome per Tune result that says which trial it was (a trial stopped before its first report does not)."""
    outcomes, started = [], callback.started
    for result in results:
        if result.config is None:
            continue
        trial = trial_of(result.config)
        metrics = dict(result.metrics or {})
        was_started = trial.hash in started
        if result.error is not None:
            outcomes.append(Outcome(trial, FAILED, _reason(result.error), was_started, metrics))
        elif tune_adapter.FINISHED_MARK in metrics:
            outcomes.append(Outcome(trial, FINISHED, started=was_started, metrics=metrics))
        elif trial.hash in callback.completed:  # ended without its last report: a scheduler's stop
            outcomes.append(Outcome(trial, STOPPED, started=was_started, metrics=metrics))
        else:  # stopped by Ctrl-C or SIGTERM
            outcomes.append(Outcome(trial, INTERRUPTED, started=was_started, metrics=metrics))
    return outcomes


def request(trial: Trial, tracking: Tracking, data_root: Path, execution: Execution) -> dict[str, Any]:
    """What ``workers.tune_adapter.trainable`` needs to train ``trial`` and track it."""
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


@contextmanager
def ray_log_to(path: Path | None) -> Iterator[None]:
    """Ray's log records (Tune's tracebacks of failed trials among them) go to ``path``, not the console."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logger = logging.getLogger("ray")
    saved = logger.handlers[:], logger.level
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.handlers, level = saved
        logger.setLevel(level)
        handler.close()


def _reason(error: BaseException) -> str:
    """The innermost exception's one-line message, not Ray's wrapping of it."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__
