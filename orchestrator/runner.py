"""One study invocation: expand, skip what finished, run the rest through Ray Tune, report.

This is the programmatic face of ``python -m orchestrator run``:

    summary = run_study(load_study("studies/feature_suppression.yaml", scale="smoke"))
"""

from __future__ import annotations

import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console

from dashboards.publish import log_report
from dashboards.report import Report, build_report, leading_comments, print_report
from dashboards.runs import finished_trials, trial_runs
from orchestrator.errors import BadOption, StudyError
from orchestrator.expansion import Trial, expand, unique
from orchestrator.spec import Study
from orchestrator.tracking import (
    DEFAULT_TRACKING_URI,
    Tracker,
    absolute_tracking_uri,
    check_store_folder,
    git_commit,
    is_new_store,
    source_tags,
)
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
    ran: int = 0  # trials that began training in this invocation (finished, failed or stopped mid-way)
    log_file: Path | None = None  # Ray's log of this invocation: tracebacks of failed trials
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
    command: str | None = None,
) -> RunSummary:
    """Run every trial of ``study`` that has not finished before, then build its report.

    Trials whose latest run FAILED are left alone unless ``rerun_failed``; ``force`` runs every
    trial again from scratch. Stale runs are closed first and trials are claimed before they run
    (``orchestrator.leases``), so concurrent invocations never train one trial twice. ``command`` is
    the command as typed, for the parent run's ``mlflow.source.name`` (default: this process's arguments).
    """
    from orchestrator.execution import FAILED, INTERRUPTED, Tracking, connect, run_trials  # imports Ray
    from orchestrator.leases import Claims, close_open_children, close_stale_runs, state_folder
    from workers.tune_adapter import OWNER_TAG, Heartbeat, owner

    console = console or Console()
    data_root = Path(data_root).resolve()
    check_reports_folder(Path(reports_root))
    execution = study.spec.execution
    store = absolute_tracking_uri(tracking_uri)
    check_store_folder(store)
    if is_new_store(store):
        # Nothing ran in a new store, so every trial will: Ray starts (~2 s, mostly waiting for its
        # raylet) while MLflow creates and migrates the store's tables in a thread (~1.5 s).
        with ThreadPoolExecutor(1) as pool:
            opening = pool.submit(Tracker, store)
            connect(address, execution, str(study.path))  # on an error the pool still waits for the store
            tracker = opening.result()
    else:
        tracker = Tracker(store)
    lease = execution.lease_minutes * 60
    cells = expand(study)
    trials = unique(cells)
    experiment_id = tracker.experiment(study.name)
    closed = close_stale_runs(tracker.client, experiment_id, lease)
    state = state_folder(tracker.uri)
    claims = Claims(state / "claims" / experiment_id, lease)
    search = None
    try:
        if study.spec.search is not None:
            from orchestrator.optuna_search import SearchState

            search = SearchState.of(study, state)
            mine, summary = [], RunSummary(cells=0, trials=search.left, skipped=0, closed_stale=closed)
            console.print(
                f"[bold]{study.name}[/] @ {study.scale}: search {search.name}: {search.done} of "
                f"{study.spec.search.num_samples} samples done, {search.left} to run (Optuna journal: {search.journal})"
            )
        else:
            mine, summary = _claim_pending(study, cells, trials, tracker, claims, console, rerun_failed, force)
            summary.closed_stale = closed
            if force:
                for trial in mine:
                    shutil.rmtree(state / "checkpoints" / experiment_id / trial.hash, ignore_errors=True)
        to_run = search.left if search else len(mine)
        if closed:
            console.print(f"closed {len(closed)} stale runs as KILLED (tag closed_because); their trials run again")
        if to_run:  # what the cluster can never give is refused before any run opens
            connect(address, execution, str(study.path))
        _prepare_data(study, [t.config for t in mine] or ([study.base] if to_run else []), data_root)
        command = command or " ".join(["python", *sys.argv])
        # The trials' runs carry the source tags too: the UI's Source column is filled on every row.
        tags = {"study": study.name, "scale": study.scale, **source_tags(study.path, command),
                **({"search": search.name} if search else {})}
        parent = tracker.start_parent(
            experiment_id,
            run_name=f"{study.name}@{study.scale}",
            tags={
                **tags,
                "study_file": str(study.path),
                "git_commit": git_commit(study.path),
                "command": command,
                OWNER_TAG: owner(),
            },
            params={"scale": study.scale, "overrides": " ".join(study.overrides) or "-",
                    "trials": str(study.spec.search.num_samples if search else len(trials))},
        )
        summary.parent_run_id = parent
        summary.log_file = state / "logs" / f"{study.name}-{parent}.log" if to_run else None
        status = "FAILED"
        heartbeat = Heartbeat(tracker.client, [parent], seconds=min(30.0, lease / 4), also=claims.touch)
        try:
            with heartbeat:
                if to_run:
                    tracking = Tracking(tracker.uri, experiment_id, parent, tags, state=state,
                                        heartbeat_seconds=min(30.0, lease / 4))
                    where = {"data_root": data_root, "execution": execution, "address": address,
                             "storage_path": storage_path or state / "ray",  # Tune's state beside the store
                             "console": console, "log_file": summary.log_file}
                    if search:
                        from orchestrator.optuna_search import run_search

                        outcomes = run_search(study, search, tracking=tracking, **where)
                    else:
                        outcomes = run_trials(mine, tracking=tracking, skipped=summary.skipped, **where)
                    summary.failed = {o.trial.name: o.reason for o in outcomes if o.status == FAILED}
                    summary.interrupted = [o.trial.name for o in outcomes if o.status == INTERRUPTED]
                    summary.ran = sum(o.started for o in outcomes)
            summary.report = report_study(study, tracker.uri, reports_root, cells)
            status = "KILLED" if summary.interrupted else "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            # Every way a study stops closes every run it opened: a trial Tune stopped mid-epoch
            # never reached the adapter's KILLED branch.
            close_open_children(tracker.client, experiment_id, parent, f"its invocation ended {status}")
            metrics = {
                "trials_run": summary.ran,
                "trials_skipped": summary.skipped,
                "trials_failed": len(summary.failed),
                "trials_interrupted": len(summary.interrupted),
            }
            if summary.report:  # report/ with plots MLflow's viewer shows; the description answers "did it reproduce?"
                log_report(tracker.uri, parent, summary.report)
            if search:
                metrics |= _log_best(tracker, parent, study, state, console)
            tracker.finish_parent(parent, status, metrics)
    finally:
        claims.release()
    print_report(summary.report, console)
    for name, reason in summary.failed.items():
        console.print(f"[red]failed[/] {name}: {reason}")
    if summary.failed:
        console.print(f"tracebacks: {summary.log_file}", style="dim")
    if summary.interrupted:
        left = len(summary.interrupted)
        console.print(f"[yellow]interrupted[/]: {left} trials did not finish; run the command again to finish them")
    return summary


def check_reports_folder(root: Path) -> None:
    """``--reports`` must be a folder that exists or can be made: checked before any trial runs."""
    existing = next(folder for folder in [root.absolute(), *root.absolute().parents] if folder.exists())
    if not existing.is_dir():
        where = "is a file" if existing == root.absolute() else f"is inside {existing}, a file"
        raise BadOption("--reports", f"{root} {where}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadOption("--reports", f"{root}: {existing} is not writable")


def _claim_pending(study, cells, trials, tracker, claims, console, rerun_failed, force) -> tuple[list, RunSummary]:
    """The grid's trials this invocation trains: not finished (nor failed, without ``rerun_failed``), claimed."""
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


def _log_best(tracker: Tracker, parent: str, study: Study, state: Path, console: Console) -> dict[str, float]:
    """The search's best trial so far (every invocation's): printed, and on the parent run."""
    from orchestrator.optuna_search import SearchState

    search = study.spec.search
    best = SearchState.of(study, state).best(search.mode)
    if best is None:
        return {}
    values = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                       for key, value in best.params.items())
    console.print(f"best so far: {search.metric} = {best.value:.4g} at {values} (Optuna trial #{best.number})")
    tracker.client.set_tag(parent, "best_params", values)
    return {f"best/{search.metric}": float(best.value)}


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
    if study.spec.search is not None:
        frame = searched_cells(tracking_uri, study)
    else:
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


def searched_cells(tracking_uri: str, study: Study) -> pd.DataFrame:
    """The cells of a search: one per sampled trial in the store, its sampled values as coordinates."""
    search = study.spec.search
    name = search.optuna_name(study.name, study.base.identity())
    columns = ["variant", *search.space, "seed", "trial_hash"]
    client = Tracker(tracking_uri).client
    experiment = client.get_experiment_by_name(study.name)
    rows, token = [], None
    while experiment is not None:
        page = client.search_runs([experiment.experiment_id], f"tags.search = '{name}' and tags.trial_hash != ''",
                                  max_results=1000, page_token=token)
        for run in page:
            tags = run.data.tags
            if all(key in tags for key in columns):  # tags hold str(value): read them back as YAML
                rows.append({key: yaml.safe_load(tags[key]) if key in search.space else tags[key] for key in columns})
        token = page.token
        if not token:
            break
    frame = pd.DataFrame(rows, columns=columns).drop_duplicates("trial_hash")
    return frame.astype({"seed": int})


def _prepare_data(study: Study, configs: list, data_root: Path) -> None:
    """Download (or find) every dataset the pending trials read, before any trial starts."""
    sources = dict.fromkeys(source for config in configs for source in config.data.sources())
    for source in sources:
        try:
            prepare_source(source, data_root)
        except DatasetUnavailable as error:
            raise StudyError(str(study.path), str(error), key="data.source") from None
