"""MLflow on the orchestrator side: one experiment per study, one parent run per invocation.

Trials open their own child runs (``workers.tune_adapter``); finding which trials already
finished is ``dashboards.runs``' job, since reports need the same answer.

Artifacts of a SQLite store live beside it: an experiment created through :func:`open_store`
keeps its artifacts in ``<folder of the db>/mlruns/<experiment>``. (MLflow's own default is
``./mlruns`` in whatever folder the process happens to run in, so a store in a temporary
folder would leave its artifacts in the project.) Study experiments are marked as model
training (``mlflow.experimentKind``); the UI still needs ``workflowType=machine_learning`` in
its URL to open them on their runs (``orchestrator.ui``).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import re
import subprocess
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from orchestrator.store import (
    DEFAULT_TRACKING_URI,
    BrokenStore,
    absolute_tracking_uri,
    check_store_folder,
    sqlite_path,
)

EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # model training, not GenAI


class Tracker:
    def __init__(self, uri: str = DEFAULT_TRACKING_URI) -> None:
        self.uri = absolute_tracking_uri(uri)
        self.client = open_store(self.uri)

    def experiment(self, name: str) -> str:
        """The id of the experiment ``name``, created if it does not exist yet (marked as model training)."""
        found = self.client.get_experiment_by_name(name)
        if found is None:
            return self.client.create_experiment(name, tags=EXPERIMENT_KIND)
        for key, value in EXPERIMENT_KIND.items():
            if key not in found.tags:  # made before the tag existed: set once
                self.client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id

    def start_parent(self, experiment_id: str, run_name: str, tags: dict[str, str], params: dict[str, str]) -> str:
        run_id = self.client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
        self.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        return run_id

    def finish_parent(self, run_id: str, status: str, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        self.client.set_terminated(run_id, status)


class Store(MlflowClient):
    """An MLflow client whose new experiments keep their artifacts beside a SQLite store (see the module)."""

    def create_experiment(self, name: str, artifact_location: str | None = None, tags: dict | None = None) -> str:
        database = sqlite_path(self.tracking_uri)
        if artifact_location is None and database is not None:
            folder = Path(database).resolve().parent / "mlruns" / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            artifact_location = folder.as_uri()
        return super().create_experiment(name, artifact_location=artifact_location, tags=tags)


def open_store(uri: str) -> Store:
    """A client of the store at ``uri``; a new SQLite store is created and migrated once.

    MLflow creates a SQLite store's schema on first use; two processes doing so at once race in
    its migration and leave the store half-made. The first use therefore happens under an
    exclusive ``flock`` of ``<db>.lock``, so a second invocation waits and then finds it whole.
    """
    check_store_folder(uri)
    database = sqlite_path(uri)
    lock = open(database + ".lock", "a") if database else None  # noqa: SIM115
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        client = Store(uri)  # MLflow opens (and creates) the store here
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


def source_tags(path: Path, command: str) -> dict[str, str]:
    """MLflow's own source tags, so that the UI's Source and User columns say what ran and whose it is.

    ``mlflow.source.name`` is the command as typed (``python -m orchestrator run ...``),
    ``mlflow.source.git.commit`` the checkout's commit (MLflow's tag holds the bare hash; whether the
    checkout had changes is in our ``git_commit`` tag).
    """
    tags = {"mlflow.source.name": command, "mlflow.source.type": "LOCAL"}
    commit = git_commit(path).removesuffix("-dirty")
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    with contextlib.suppress(KeyError, OSError):  # no name for this uid (a bare container)
        tags["mlflow.user"] = getpass.getuser()
    return tags
