"""``python -m orchestrator run|report|plan STUDY.yaml`` and ``python -m orchestrator ui``: the command line."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from rich.console import Console

from orchestrator.errors import BadOption, StudyError
from orchestrator.spec import PAPER, load_study
from orchestrator.store import DEFAULT_TRACKING_URI, BrokenStore


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m orchestrator",
        description="Run a contrastive-learning study through Ray Tune into MLflow, and report it against the paper.",
    )
    verbs = main.add_subparsers(dest="verb", required=True)
    for verb, text in (
        ("run", "run the study's missing trials through Ray Tune, then print its table"),
        ("report", "rebuild the study's table, plots and findings from MLflow"),
    ):
        sub = verbs.add_parser(verb, help=text, description=text)
        sub.add_argument("study", type=Path, nargs="?" if verb == "report" else None,
                         help="a study file, e.g. studies/feature_suppression.yaml")
        sub.add_argument("--scale", default=PAPER, help="paper (default), small or smoke" if verb == "run" else
                         "paper, small or smoke (default: every scale the study has runs of, else paper)")
        sub.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a key, e.g. train.epochs=5 or sweep.seeds=[0,1] (repeatable)")
        sub.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI, help="MLflow store (default: %(default)s)")
        sub.add_argument("--reports", type=Path, default=Path("reports"), help="report folder (default: reports)")
        if verb == "run":
            sub.add_argument("--data-root", type=Path, default=Path("data"),
                             help="where datasets are found or downloaded (default: ./data)")
            sub.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
            sub.add_argument("--dry-run", action="store_true", help="list the trials and stop")
            again = sub.add_mutually_exclusive_group()
            again.add_argument("--rerun-failed", action="store_true",
                               help="run again the trials whose latest run FAILED (left alone by default)")
            again.add_argument("--force", action="store_true",
                               help="run every trial again from scratch, finished ones included")
        if verb == "report":
            sub.add_argument("--all", action="store_true",
                             help="every study file under --studies that has runs, and the reports' index")
            sub.add_argument("--studies", type=Path, default=Path("studies"),
                             help="where --all finds study files (default: studies)")
            sub.set_defaults(scale=None)
    _plan_and_ui_parsers(verbs)
    return main


def _plan_and_ui_parsers(verbs) -> None:
    text = "list the study's trials with their status in the store and estimate the time left (never starts Ray)"
    plan = verbs.add_parser("plan", help=text, description=text)
    plan.add_argument("study", type=Path, help="a study file, e.g. studies/feature_suppression.yaml")
    plan.add_argument("--scale", default=PAPER, help="paper (default), small or smoke")
    plan.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a key, as for run (repeatable)")
    plan.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI, help="MLflow store (default: %(default)s)")
    plan.add_argument("--concurrency", type=int, default=None, metavar="N",
                      help="trials at once for the estimate (default: execution.max_concurrent_trials, "
                           "else this machine's CPUs ÷ cpus_per_trial)")
    text = "serve the MLflow UI of the store on 127.0.0.1 and print the URL of the study's runs"
    ui = verbs.add_parser("ui", help=text, description=text)
    ui.add_argument("study", type=Path, nargs="?", help="a study file: open its runs (default: the store's only "
                                                        "experiment with runs, else the list)")
    ui.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI, help="MLflow store (default: %(default)s)")
    ui.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default: %(default)s)")


def typed_command(argv: list[str] | None = None) -> str:
    """The command as the user typed it: ``python -m orchestrator run ...``, not the path of ``__main__.py``."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", "orchestrator", *args])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for noisy in ("mlflow", "alembic"):  # schema-migration chatter on a new store
        logging.getLogger(noisy).setLevel(logging.WARNING)
    console = make_console()
    try:
        if args.verb == "report":
            return _report(args, console)
        if args.verb == "ui":
            from orchestrator.ui import serve

            name = load_study(args.study).name if args.study else None
            return serve(args.tracking_uri, name, args.port, console)
        study = load_study(args.study, scale=args.scale, overrides=args.overrides)
        if args.verb == "plan":
            from orchestrator.plan import plan_study, print_plan, print_search_plan

            if study.spec.search is not None:
                print_search_plan(study, args.tracking_uri, args.concurrency, console)
            else:
                print_plan(plan_study(study, args.tracking_uri, args.concurrency), console)
            return 0
        if args.dry_run:
            return _dry_run(study, console)
        from orchestrator.runner import run_study

        summary = run_study(
            study,
            tracking_uri=args.tracking_uri,
            data_root=args.data_root,
            address=args.address,
            reports_root=args.reports,
            console=console,
            rerun_failed=args.rerun_failed,
            force=args.force,
            command=typed_command(argv),
        )
    except StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenStore as error:
        print(f"error: --tracking-uri {error}", file=sys.stderr)
        return 2
    except BadOption as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ConnectionError as error:
        print(f"error: --address {getattr(args, 'address', None)}: {error}".splitlines()[0], file=sys.stderr)
        return 2
    except Exception as error:
        if not _is_mlflow_error(error):
            raise
        print(f"error: --tracking-uri {args.tracking_uri}: {error.message.splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the parent run is marked KILLED; run again to finish the missing trials", file=sys.stderr)
        return 130
    if summary.interrupted:
        return 130
    return 1 if summary.failed or summary.failed_before else 0


def _is_mlflow_error(error: Exception) -> bool:
    """Whether ``error`` is MLflow's, without importing MLflow here (``run`` imports it beside Ray's start)."""
    exceptions = sys.modules.get("mlflow.exceptions")  # not imported: not MLflow's
    return exceptions is not None and isinstance(error, exceptions.MlflowException)


def _report(args: argparse.Namespace, console: Console) -> int:
    """``report STUDY.yaml`` / ``report --all``: rebuild reports from MLflow, each logged to its latest parent run.

    Without ``--scale``, every scale a study has runs of is reported (a study without runs: at paper
    scale, or with ``--all`` not at all). Under ``--all`` a bad study file is one line and the rest go on.
    """
    from dashboards.html import write_index
    from dashboards.publish import latest_parent_run, log_report, study_scales
    from dashboards.report import print_report
    from orchestrator.study_report import report_study
    from orchestrator.tracking import Tracker

    if (args.study is None) != args.all:
        print("error: report needs a study file or --all (one of them)", file=sys.stderr)
        return 2
    if args.all and args.overrides:
        print("error: --set changes one study's trials: give a study file, not --all", file=sys.stderr)
        return 2
    uri = Tracker(args.tracking_uri).uri  # a new store is created under its lock
    paths = sorted(args.studies.rglob("*.yaml")) if args.all else [args.study]
    if not paths:
        print(f"error: --studies {args.studies}: no study files (*.yaml) there", file=sys.stderr)
        return 2
    broken = 0
    for path in paths:
        try:
            name = load_study(path, scale=args.scale or PAPER, overrides=args.overrides).name
            have = study_scales(uri, name)  # under --all, only the scales with runs
            scales = [args.scale] if args.scale else have or [PAPER]
            scales = [scale for scale in scales if scale in have] if args.all else scales
            for scale in scales:
                study = load_study(path, scale=scale, overrides=args.overrides)
                report = report_study(study, uri, args.reports)
                parent = latest_parent_run(uri, study.name, scale)
                if parent:
                    log_report(uri, parent, report)
                if not args.all:
                    print_report(report, console)
                else:
                    reproduced = sum(v.status == "reproduced" for v in report.verdicts)
                    console.print(f"{study.name} @ {scale}: {report.counts['finished']} of {report.counts['trials']} "
                                  f"trials finished, {reproduced} of {len(report.verdicts)} findings reproduced: "
                                  f"{report.folder / 'index.html'}")
                console.print(f"  logged to parent run {parent} (report/, description)" if parent else
                              f"  no parent run of {study.name} at {scale}: the report is not logged to MLflow",
                              style="dim")
        except StudyError as error:
            if not args.all:
                raise
            print(f"error: {error}", file=sys.stderr)
            broken += 1
    if args.all:
        console.print(f"index: {write_index(args.reports)}")
    return 2 if broken else 0


def make_console() -> Console:
    """A console for people; in a pipe or a CI log, wide enough that tables never fold.

    Off a terminal rich falls back to 80 columns and wraps every table cell onto several lines;
    ``COLUMNS`` still wins where it is set.
    """
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=200)
    return console


def _dry_run(study, console: Console) -> int:
    from orchestrator.expansion import expand, unique

    if study.spec.search is not None:
        search = study.spec.search
        console.print(f"{study.name} @ {study.scale}: a search of {search.num_samples} samples over "
                      f"{', '.join(search.space)} ({search.mode} {search.metric}); `plan` shows where it stands")
        return 0
    cells = expand(study)
    console.print(f"{study.name} @ {study.scale}: {len(cells)} cells, {len(unique(cells))} distinct trials")
    for trial in cells:
        console.print(f"  {trial.hash}  {trial.name}")
    return 0
