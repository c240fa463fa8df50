"""One study invocation: expand, skip what finished, run the rest through Ray Tune, report.

This is the programmatic face of ``python -m orchestrator run``:

    summary = run_study(load_study("studies/feature_suppression.yaml", scale="smoke"))
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console

from dashboards.report import Report, build_report, leading_comments, print_report
from dashboards.runs import finished_trials, trial_runs
from orchestrator.errors import StudyError
from orchestrator.expansion import Trial, expand, unique
from orchestrator.spec import Study
from orchestrator.tracking import DEFAULT_TRACKING_URI, Tracker, git_commit
from workers.data.sources import DatasetUnavailable, prepare_source
from workers.trainer import TARGET_METRICS


@dataclass
class RunSummary:
    cells: int
    trials: int
    skipped: int  # finished (or, without --rerun-failed, failed) in an earlier invocation
    failed: dict[str, str] = field(default_factory=dict)  # trial name → reason
    interrupted: list[str] = field(default_factory=list)  # trial names
    elsewhere: dict[str, str] = field(default_factory=dict)  # trial name → owner of its claim
    failed_before: list[str] = field(default_factory=list)  # trial names, not run again
    closed_stale: dict[str, str] = field(default_factory=dict)  # run id → why it was closed
    ran: int = 0  # trials that finished or failed in this invocation
    parent_run_id: str | None = None
    report: Report | None = None


def run_study(
    study: Study,
    *,
    tracking_uri: str = DEFAULT_TRACKING_URI,
    data_root: Path | str = "data",
    address: str | None = None,
    storage_path: Path | None = None,
    reports_root: Path | str = "reports",
    console: Console | None = None,
    rerun_failed: bool = False,
    force: bool = False,
) -> RunSummary:
    """Run every trial of ``study`` that has not finished before, then build its report.

    Trials whose latest run FAILED are left alone unless ``rerun_failed``; ``force`` runs every
    trial again from scratch. Stale runs are closed first and trials are claimed before they run
    (``orchestrator.leases``), so concurrent invocations never train one trial twice.
    """
    from orchestrator.execution import FAILED, FINISHED, INTERRUPTED, Tracking, run_trials  # imports Ray
    from orchestrator.leases import Claims, close_open_children, close_stale_runs, state_folder
    from workers.tune_adapter import OWNER_TAG, Heartbeat, owner

    console = console or Console()
    data_root = Path(data_root).resolve()
    tracker = Tracker(tracking_uri)
    execution = study.spec.execution
    lease = execution.lease_minutes * 60
    cells = expand(study)
    trials = unique(cells)
    experiment_id = tracker.experiment(study.name)
    closed = close_stale_runs(tracker.client, experiment_id, lease)
    state = state_folder(tracker.uri)
    claims = Claims(state / "claims" / experiment_id, lease)
    try:
        pending, failed_before = _pending(trials, tracker.uri, study.name, rerun_failed=rerun_failed, force=force)
        elsewhere = {}
        for trial in pending:
            holder = claims.claim(trial.hash)
            if holder is not None:
                elsewhere[trial.name] = holder
        # What finished while we claimed (another invocation's last trials) is not run again.
        done = set() if force else set(finished_trials(tracker.uri, study.name).index)
        mine = [trial for trial in pending if trial.hash in claims.held and trial.hash not in done]
        claims.release([trial.hash for trial in pending if trial.hash in claims.held and trial.hash in done])
        if force:
            for trial in mine:
                shutil.rmtree(state / "checkpoints" / experiment_id / trial.hash, ignore_errors=True)
        summary = RunSummary(
            cells=len(cells), trials=len(trials), skipped=len(trials) - len(pending), elsewhere=elsewhere,
            failed_before=[trial.name for trial in failed_before], closed_stale=closed,
        )
        skipped_failed = f", {len(failed_before)} failed earlier (--rerun-failed runs them)" if failed_before else ""
        console.print(
            f"[bold]{study.name}[/] @ {study.scale}: {len(cells)} cells → {len(trials)} distinct trials, "
            f"{summary.skipped - len(failed_before)} finished earlier{skipped_failed}, {len(mine)} to run"
        )
        if closed:
            console.print(f"closed {len(closed)} stale runs as KILLED (tag closed_because); their trials run again")
        if elsewhere:
            console.print(f"[yellow]{len(elsewhere)} trials are being trained by another invocation[/]: left to it")
        _prepare_data(study, mine, data_root)
        tags = {"study": study.name, "scale": study.scale}
        parent = tracker.start_parent(
            experiment_id,
            run_name=f"{study.name}@{study.scale}",
            tags={
                **tags,
                "study_file": str(study.path),
                "git_commit": git_commit(study.path),
                "command": " ".join(sys.argv),
                OWNER_TAG: owner(),
            },
            params={"scale": study.scale, "overrides": " ".join(study.overrides) or "-", "trials": str(len(trials))},
        )
        summary.parent_run_id = parent
        status = "FAILED"
        heartbeat = Heartbeat(tracker.client, [parent], seconds=min(30.0, lease / 4), also=claims.touch)
        try:
            with heartbeat:
                if mine:
                    outcomes = run_trials(
                        mine,
                        tracking=Tracking(tracker.uri, experiment_id, parent, tags, state=state,
                                          heartbeat_seconds=min(30.0, lease / 4)),
                        data_root=data_root,
                        execution=execution,
                        address=address,
                        storage_path=storage_path or state / "ray",  # Tune's state beside the store
                        console=console,
                    )
                    summary.failed = {o.trial.name: o.reason for o in outcomes if o.status == FAILED}
                    summary.interrupted = [o.trial.name for o in outcomes if o.status == INTERRUPTED]
                    summary.ran = sum(o.status in (FINISHED, FAILED) for o in outcomes)
            summary.report = report_study(study, tracker.uri, reports_root, cells)
            status = "KILLED" if summary.interrupted else "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            # Every way a study stops closes every run it opened: a trial Tune stopped mid-epoch
            # never reached the adapter's KILLED branch.
            close_open_children(tracker.client, experiment_id, parent, f"its invocation ended {status}")
            folder = summary.report.folder if summary.report else None
            metrics = {
                "trials_run": summary.ran,
                "trials_skipped": summary.skipped,
                "trials_failed": len(summary.failed),
                "trials_interrupted": len(summary.interrupted),
            }
            if summary.report:  # the run page's description answers "did it reproduce?"
                tracker.client.set_tag(parent, "mlflow.note.content", summary.report.summary())
            tracker.finish_parent(parent, status, metrics, folder)
    finally:
        claims.release()
    print_report(summary.report, console)
    for name, reason in summary.failed.items():
        console.print(f"[red]failed[/] {name}: {reason}")
    if summary.interrupted:
        left = len(summary.interrupted)
        console.print(f"[yellow]interrupted[/]: {left} trials did not finish; run the command again to finish them")
    return summary


def _pending(
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


def report_study(
    study: Study, tracking_uri: str, reports_root: Path | str = "reports", cells: list[Trial] | None = None
) -> Report:
    """The study's tables, plots and findings from whatever runs have finished."""
    cells = cells if cells is not None else expand(study)
    frame = pd.DataFrame([{**trial.labels(), "trial_hash": trial.hash} for trial in cells])
    linear = study.base.eval.linear
    return build_report(
        study=study.name,
        scale=study.scale,
        reproduces=study.spec.reproduces,
        cells=frame,
        runs=trial_runs(tracking_uri, study.name),
        targets=(linear.targets if linear and linear.targets else list(study.base.data.targets)),
        target_metrics=set(TARGET_METRICS),
        spec=study.spec.report,
        reference=study.spec.reference,
        findings=study.spec.findings,
        folder=Path(reports_root) / study.name / study.scale,
        description=leading_comments(study.path),
        tracking_uri=tracking_uri,
        reports_root=Path(reports_root),
    )


def _prepare_data(study: Study, trials: list[Trial], data_root: Path) -> None:
    """Download (or find) every dataset the pending trials read, before any trial starts."""
    sources = dict.fromkeys(source for trial in trials for source in trial.config.data.sources())
    for source in sources:
        try:
            prepare_source(source, data_root)
        except DatasetUnavailable as error:
            raise StudyError(str(study.path), str(error), key="data.source") from None
