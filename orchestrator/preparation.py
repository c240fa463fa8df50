"""A study invocation made ready to run: stale runs closed, pending trials claimed, their data ready."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from dashboards.runs import finished_trials, trial_runs
from orchestrator.errors import StudyError
from orchestrator.expansion import Trial
from orchestrator.spec import Study
from orchestrator.store import state_folder
from orchestrator.tracking import Tracker
from workers.data.sources import DatasetUnavailable, prepare_source

if TYPE_CHECKING:
    from dashboards.report import Report
    from orchestrator.leases import Claims
    from orchestrator.optuna_search import SearchState


@dataclass
class RunSummary:
    """What one invocation of a study found and did (``run_study`` returns it)."""

    cells: int
    trials: int
    skipped: int  # finished (or, without --rerun-failed, failed) in an earlier invocation
    failed: dict[str, str] = field(default_factory=dict)  # trial name → reason
    interrupted: list[str] = field(default_factory=list)  # trial names
    elsewhere: dict[str, str] = field(default_factory=dict)  # trial name → owner of its claim
    failed_before: list[str] = field(default_factory=list)  # trial names, not run again
    closed_stale: dict[str, str] = field(default_factory=dict)  # run id → why it was closed
    ran: int = 0  # trials that began training in this invocation (finished, failed or stopped mid-way)
    log_file: Path | None = None  # Ray's log of this invocation: tracebacks of failed trials
    parent_run_id: str | None = None
    report: Report | None = None


@dataclass
class Ready:
    """A study invocation's experiment, claims and data, ready for its trials to run."""

    experiment_id: str
    state: Path  # the store's folder of claims, checkpoints, Tune's state
    claims: Claims
    search: SearchState | None
    mine: list[Trial]  # the grid's trials this invocation runs (a search samples its own)
    summary: RunSummary

    @property
    def to_run(self) -> int:
        return self.search.left if self.search else len(self.mine)


def get_ready(
    study: Study, tracker: Tracker, cells: list[Trial], trials: list[Trial], data_root: Path, console: Console,
    rerun_failed: bool, force: bool,
) -> Ready:
    """Closes the store's stale runs, claims the pending trials and makes their data ready."""
    from orchestrator.leases import Claims, close_stale_runs

    lease = study.spec.execution.lease_minutes * 60
    experiment_id = tracker.experiment(study.name)
    closed = close_stale_runs(tracker.client, experiment_id, lease)
    state = state_folder(tracker.uri)
    claims = Claims(state / "claims" / experiment_id, lease)
    try:
        search = None
        if study.spec.search is not None:
            from orchestrator.optuna_search import SearchState

            search = SearchState.of(study, state)
            mine, summary = [], RunSummary(cells=0, trials=search.left, skipped=0)
            console.print(
                f"[bold]{study.name}[/] @ {study.scale}: search {search.name}: {search.done} of "
                f"{study.spec.search.num_samples} samples done, {search.left} to run (Optuna journal: {search.journal})"
            )
        else:
            mine, summary = claim_pending(study, cells, trials, tracker, claims, console, rerun_failed, force)
            if force:
                for trial in mine:
                    shutil.rmtree(state / "checkpoints" / experiment_id / trial.hash, ignore_errors=True)
        summary.closed_stale = closed
        if closed:
            console.print(f"closed {len(closed)} stale runs as KILLED (tag closed_because); their trials run again")
        ready = Ready(experiment_id, state, claims, search, mine, summary)
        prepare_data(study, [t.config for t in mine] or ([study.base] if ready.to_run else []), data_root)
        return ready
    except BaseException:
        claims.release()
        raise


def claim_pending(
    study: Study, cells: list[Trial], trials: list[Trial], tracker: Tracker, claims: Claims, console: Console,
    rerun_failed: bool, force: bool,
) -> tuple[list[Trial], RunSummary]:
    """The grid's trials this invocation trains: not finished (nor failed, without ``rerun_failed``), claimed."""
    pending, failed_before = pending_trials(trials, tracker.uri, study.name, rerun_failed=rerun_failed, force=force)
    elsewhere = {}
    for trial in pending:
        holder = claims.claim(trial.hash)
        if holder is not None:
            elsewhere[trial.name] = holder
    # What finished while we claimed (another invocation's last trials) is not run again.
    done = set() if force else set(finished_trials(tracker.uri, study.name).index)
    mine = [trial for trial in pending if trial.hash in claims.held and trial.hash not in done]
    claims.release([trial.hash for trial in pending if trial.hash in claims.held and trial.hash in done])
    summary = RunSummary(
        cells=len(cells), trials=len(trials), skipped=len(trials) - len(pending), elsewhere=elsewhere,
        failed_before=[trial.name for trial in failed_before],
    )
    skipped_failed = f", {len(failed_before)} failed earlier (--rerun-failed runs them)" if failed_before else ""
    console.print(
        f"[bold]{study.name}[/] @ {study.scale}: {len(cells)} cells → {len(trials)} distinct trials, "
        f"{summary.skipped - len(failed_before)} finished earlier{skipped_failed}, {len(mine)} to run"
    )
    if elsewhere:
        console.print(f"[yellow]{len(elsewhere)} trials are being trained by another invocation[/]: left to it")
    return mine, summary


def pending_trials(
    trials: list[Trial], tracking_uri: str, experiment: str, *, rerun_failed: bool, force: bool
) -> tuple[list[Trial], list[Trial]]:
    """The trials to run and those left alone because their latest run FAILED."""
    if force:
        return list(trials), []
    done = set(finished_trials(tracking_uri, experiment).index)
    latest = trial_runs(tracking_uri, experiment)["status"]
    failed = [t for t in trials if t.hash not in done and latest.get(t.hash) == "FAILED"]
    skip = done if rerun_failed else done | {t.hash for t in failed}
    return [t for t in trials if t.hash not in skip], ([] if rerun_failed else failed)


def prepare_data(study: Study, configs: list, data_root: Path) -> None:
    """Download (or find) every dataset the pending trials read, before any trial starts."""
    sources = dict.fromkeys(source for config in configs for source in config.data.sources())
    for source in sources:
        try:
            prepare_source(source, data_root)
        except DatasetUnavailable as error:
            raise StudyError(str(study.path), str(error), key="data.source") from None
