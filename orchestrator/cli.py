"""``python -m orchestrator run|report STUDY.yaml``: the command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from mlflow.exceptions import MlflowException
from rich.console import Console

from orchestrator.errors import StudyError
from orchestrator.spec import PAPER, load_study
from orchestrator.tracking import DEFAULT_TRACKING_URI, BrokenStore, Tracker


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
        sub.add_argument("study", type=Path, help="a study file, e.g. studies/feature_suppression.yaml")
        sub.add_argument("--scale", default=PAPER, help="paper (default), small or smoke")
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
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for noisy in ("mlflow", "alembic"):  # schema-migration chatter on a new store
        logging.getLogger(noisy).setLevel(logging.WARNING)
    console = make_console()
    try:
        study = load_study(args.study, scale=args.scale, overrides=args.overrides)
        if args.verb == "report":
            from dashboards.report import print_report
            from orchestrator.runner import report_study

            uri = Tracker(args.tracking_uri).uri  # a new store is created under its lock
            print_report(report_study(study, uri, args.reports), console)
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
        )
    except StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenStore as error:
        print(f"error: --tracking-uri {error}", file=sys.stderr)
        return 2
    except MlflowException as error:
        print(f"error: --tracking-uri {args.tracking_uri}: {error.message.splitlines()[0]}", file=sys.stderr)
        return 2
    except ConnectionError as error:
        print(f"error: --address {getattr(args, 'address', None)}: {error}".splitlines()[0], file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the parent run is marked KILLED; run again to finish the missing trials", file=sys.stderr)
        return 130
    if summary.interrupted:
        return 130
    return 1 if summary.failed or summary.failed_before else 0


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

    cells = expand(study)
    console.print(f"{study.name} @ {study.scale}: {len(cells)} cells, {len(unique(cells))} distinct trials")
    for trial in cells:
        console.print(f"  {trial.hash}  {trial.name}")
    return 0
