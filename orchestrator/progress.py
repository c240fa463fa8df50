"""The study's progress display: a bar for the study, one per running trial, and a status line.

The study's bar reads, after its count and elapsed time,

    running 2 · failed 1 · skipped 4 · ETA 0:03:10

``skipped``: trials finished (or failed) in an earlier invocation, not run now. The ETA is the
work left divided by the trials that run at once:

    ETA = (pending · t̄ + Σ_running max(t̄ − elapsed, 0)) / min(concurrency, pending + running)

with t̄ the mean wall time of the trials that finished in this invocation (none yet: no ETA) and
concurrency the trials that can run at once (``max_concurrent_trials``, or what the cluster holds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ray import tune
from rich.progress import Progress, TaskID

from orchestrator.expansion import Trial
from workers import tune_adapter


def clock(seconds: float) -> str:
    """``h:mm:ss``, as rich's elapsed column writes it."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass
class StudyProgress:
    """Counts of one invocation's trials, and the wall times of those that finished."""

    total: int  # trials this invocation runs
    skipped: int = 0
    concurrency: int = 1  # trials that run at once
    started_at: dict[str, float] = field(default_factory=dict)  # running trial → when it started
    durations: list[float] = field(default_factory=list)  # of the trials that finished
    failed: int = 0
    ended: int = 0  # finished, failed or stopped by a scheduler

    def eta(self, now: float) -> float | None:
        """Seconds until the last trial ends (the formula above); None before a trial finished."""
        if not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        pending = max(self.total - self.ended - len(self.started_at), 0)
        left = pending * mean + sum(max(mean - (now - start), 0.0) for start in self.started_at.values())
        return left / max(min(self.concurrency, pending + len(self.started_at)), 1)

    def line(self, now: float) -> str:
        eta = self.eta(now)
        parts = [f"running {len(self.started_at)}", f"failed {self.failed}", f"skipped {self.skipped}",
                 f"ETA {'-:--:--' if eta is None else clock(eta)}"]
        return " · ".join(parts)


class ProgressCallback(tune.Callback):
    """Draws the display from Tune's events; notes which trials started and ended."""

    def __init__(self, progress: Progress, trial_of: Callable[[dict], Trial], state: StudyProgress) -> None:
        self.progress = progress
        self.trial_of = trial_of
        self.state = state
        self.overall = progress.add_task("[bold]trials", total=state.total, status=state.line(time.monotonic()))
        self.running: dict[str, TaskID] = {}
        self.started: set[str] = set()  # hashes of the trials that began training
        self.completed: set[str] = set()  # ... and of those that ended without an error (or a stop by Ctrl-C)

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks into the experiment state; the live display stays here.
        return {}

    def on_step_end(self, iteration, trials, **info):
        self._refresh()  # the ETA counts down between events

    def on_trial_start(self, iteration, trials, trial, **info):
        ours = self.trial_of(trial.config)
        self.started.add(ours.hash)
        self.state.started_at[trial.trial_id] = time.monotonic()
        epochs = 0 if "train" in ours.config.method.ignores else ours.config.train.epochs
        self.running[trial.trial_id] = self.progress.add_task(f"  {ours.name}", total=max(epochs, 1), status="")
        self._refresh()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        task = self.running.get(trial.trial_id)
        if task is not None and "train/loss" in result:
            self.progress.update(task, completed=result["epoch"])

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.completed.add(self.trial_of(trial.config).hash)
        start = self.state.started_at.get(trial.trial_id)
        if start is not None and tune_adapter.FINISHED_MARK in (trial.last_result or {}):
            self.state.durations.append(time.monotonic() - start)  # not a scheduler's early stop
        self._done(trial, "")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.state.failed += 1
        self._done(trial, " [red]failed")

    def _done(self, trial, note: str) -> None:
        self.state.started_at.pop(trial.trial_id, None)
        self.state.ended += 1
        task = self.running.pop(trial.trial_id, None)
        if task is not None:
            self.progress.remove_task(task)
        self.progress.console.print(f"  {'✗' if note else '✓'} {self.trial_of(trial.config).name}{note}")
        self.progress.advance(self.overall)
        self._refresh()

    def _refresh(self) -> None:
        self.progress.update(self.overall, status=self.state.line(time.monotonic()))
