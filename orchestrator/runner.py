"""One study invocation: expand, skip what finished, run the rest through Ray Tune, report.

This is the programmatic face of ``python -m orchestrator run``:

    summary = run_study(load_study("studies/feature_suppression.yaml", scale="smoke"))
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from orchestrator.cluster import connect  # imports Ray (with its settings), not Tune
from orchestrator.errors import BadOption
from orchestrator.expansion import expand, unique
from orchestrator.spec import Study
from orchestrator.store import DEFAULT_TRACKING_URI, absolute_tracking_uri, check_store_folder, is_new_store

if TYPE_CHECKING:
    from orchestrator.leases import Claims
    from orchestrator.preparation import Ready, RunSummary
    from orchestrator.tracking import Tracker


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
    console = console or Console()
    data_root = Path(data_root).resolve()
    check_reports_folder(Path(reports_root))
    execution = study.spec.execution
    store = absolute_tracking_uri(tracking_uri)
    check_store_folder(store)
    cells = expand(study)
    trials = unique(cells)
    if is_new_store(store):
        # Nothing ran in a new store, so every trial will: Ray starts in the main thread (~3 s, mostly
        # waiting for its raylet) while a thread imports MLflow and creates and migrates the store
        # (~3 s).
        with ThreadPoolExecutor(1) as pool:
            opening = pool.submit(_open_store, store)
            connect(address, execution, str(study.path))  # on an error the pool still waits for the store
            # Tune and the preparation's modules load (~1.5 s) while the thread still makes the store.
            import orchestrator.execution
            import orchestrator.preparation  # noqa: F401
            tracker = opening.result()
        ready = _get_ready(study, tracker, cells, trials, data_root, console, rerun_failed, force)
    else:
        tracker = _open_store(store)
        ready = _get_ready(study, tracker, cells, trials, data_root, console, rerun_failed, force)
        if ready.to_run:  # what the cluster can never give is refused before any run opens
            _connect(address, execution, study, ready.claims)
    experiment_id, state, claims = ready.experiment_id, ready.state, ready.claims
    search, mine, summary, to_run = ready.search, ready.mine, ready.summary, ready.to_run
    # The rest of the run's imports, loaded by now (MLflow, Tune); the reports' come after the trials.
    from orchestrator.execution import FAILED, INTERRUPTED, Tracking, run_trials  # imports Ray's Tune
    from orchestrator.leases import close_open_children, close_stale_runs
    from orchestrator.tracking import git_commit, source_tags
    from workers.tune_adapter import OWNER_TAG, Heartbeat, owner

    lease = execution.lease_minutes * 60
    try:
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
            # The reports' modules (matplotlib with them, ~0.5 s) load once the trials are done.
            from dashboards.publish import log_report
            from dashboards.report import print_report
            from orchestrator.study_report import report_study

            summary.report = report_study(study, tracker.uri, reports_root, cells)
            status = "KILLED" if summary.interrupted else "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            # Every way a study stops closes every run it opened: a trial Tune stopped mid-epoch
            # never reached the adapter's KILLED branch.
            close_open_children(tracker.client, experiment_id, parent, f"its invocation ended {status}")
            # A run whose process was still exiting when this invocation began (a kill -9 just before
            # it) is recognised as stale by now: no stale run outlives the study.
            late = close_stale_runs(tracker.client, experiment_id, lease)
            if late:
                summary.closed_stale |= late
                console.print(f"closed {len(late)} more stale runs as KILLED (their processes had not yet exited)")
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


def _open_store(store: str) -> Tracker:
    from orchestrator.tracking import Tracker  # MLflow's import, ~1 s

    return Tracker(store)


def _get_ready(*args) -> Ready:
    from orchestrator.preparation import get_ready  # Tune's import, the runs' tables: ~1 s

    return get_ready(*args)


def _connect(address: str | None, execution, study: Study, claims: Claims) -> None:
    """Ray started (or joined) and able to hold one trial; else the invocation's claims are released."""
    try:
        connect(address, execution, str(study.path))
    except BaseException:
        claims.release()
        raise


def check_reports_folder(root: Path) -> None:
    """``--reports`` must be a folder that exists or can be made: checked before any trial runs."""
    existing = next(folder for folder in [root.absolute(), *root.absolute().parents] if folder.exists())
    if not existing.is_dir():
        where = "is a file" if existing == root.absolute() else f"is inside {existing}, a file"
        raise BadOption("--reports", f"{root} {where}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadOption("--reports", f"{root}: {existing} is not writable")


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
