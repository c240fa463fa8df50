"""MLflow on the orchestrator side: one experiment per study, one parent run per invocation.

Trials open their own child runs (``workers.tune_adapter``); finding which trials already
finished is ``dashboards.runs``' job, since reports need the same answer.
"""

from __future__ import annotations

import fcntl
import subprocess
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def absolute_tracking_uri(uri: str) -> str:
    """Make a local SQLite URI absolute: Ray runs trials in other working directories."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


class BrokenStore(Exception):
    """The tracking store cannot be opened (one line: the URI and MLflow's first line)."""


class Tracker:
    def __init__(self, uri: str = DEFAULT_TRACKING_URI) -> None:
        self.uri = absolute_tracking_uri(uri)
        self.client = open_store(self.uri)


    def experiment(self, name: str) -> str:
        """The id of the experiment ``name``, created if it does not exist yet."""
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found else self.client.create_experiment(name)

    def start_parent(self, experiment_id: str, run_name: str, tags: dict[str, str], params: dict[str, str]) -> str:
        run_id = self.client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
        self.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        return run_id

    def finish_parent(
        self, run_id: str, status: str, metrics: dict[str, float], report_dir: Path | None = None
    ) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        if report_dir is not None and report_dir.is_dir():
            self.client.log_artifacts(run_id, str(report_dir), "report")
        self.client.set_terminated(run_id, status)


def open_store(uri: str) -> MlflowClient:
    """A client of the store at ``uri``; a new SQLite store is created and migrated once.

    MLflow creates a SQLite store's schema on first use; two processes doing so at once race in
    its migration and leave the store half-made. The first use therefore happens under an
    exclusive ``flock`` of ``<db>.lock``, so a second invocation waits and then finds it whole.
    """
    database = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else None
    lock = open(database + ".lock", "a") if database and Path(database).parent.is_dir() else None  # noqa: SIM115
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        client = MlflowClient(uri)  # MLflow opens (and creates) the store here
        client.search_experiments(max_results=1)  # creates or migrates the schema, or fails
    except Exception as error:
        first = (str(getattr(error, "message", "")) or str(error) or type(error).__name__).strip().splitlines()
        raise BrokenStore(f"{uri}: {first[-1] if first else type(error).__name__}") from None
    finally:
        if lock is not None:
            lock.close()  # releases the flock
    return client


def git_commit(path: Path) -> str:
    """The commit of the checkout holding ``path`` (with ``-dirty`` if it has changes), or ``unknown``."""
    try:
        folder = path.resolve().parent
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
