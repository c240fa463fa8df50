"""The one module of ``workers`` that knows Ray Tune and MLflow.

``trainable`` is a Ray Tune function trainable. Its config holds one ``request``: the trial's
resolved config and identity, and where to track it. It opens the trial's MLflow child run
under the study invocation's parent run, logs every resolved parameter and the config as an
artifact, streams per-epoch metrics to both MLflow and Tune, logs the files the trial's
measurements wrote (``run_trial(artifact_dir=...)``, a temporary folder per trial) as the
run's artifacts, and closes the run FINISHED;
FAILED with the reason in the ``failure`` tag; or KILLED when Tune stops it.

Leases: every open run carries an ``owner`` tag (``host:pid:process-start``) and a ``heartbeat``
tag (epoch milliseconds) refreshed every ``HEARTBEAT_SECONDS`` by a background thread and after
every epoch, so that the next invocation can tell a run whose process died (kill -9) from one
still training (``orchestrator.leases``).

Resume: with ``checkpoint_dir`` in the request, the trainer checkpoints there every
``checkpoint_every`` epochs. The folder also records the MLflow run the trial logs to
(``run.json``); an interrupted trial is continued in that *same* child run, reopened
(``RUNNING`` again, tag ``resumed_from_epoch``), from its last checkpoint, and epochs the run
already holds are not logged again. The folder is removed once the trial finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from ray import tune

from workers.checkpoint import load_checkpoint
from workers.config import TrialConfig
from workers.trainer import run_trial

MLFLOW_BATCH = 100  # MLflow accepts at most 100 params per log_batch call
FINISHED_MARK = "mlflow_run_id"  # in a trial's last report only: it ran to the end
OWNER_TAG, HEARTBEAT_TAG = "owner", "heartbeat"
CLOSED_TAG = "closed_because"  # why the orchestrator closed a run its process left open
HEARTBEAT_SECONDS = 30.0
RUN_FILE = "run.json"  # in a trial's checkpoint folder: the MLflow run it logs to


def owner() -> str:
    """``host:pid:start``: this process, told apart from a later one that reuses its pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{process_start(os.getpid())}"


def process_start(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ('' where /proc is absent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after the command


class Heartbeat:
    """Refreshes the ``heartbeat`` tag of some runs (and calls ``also``) every ``seconds``, in a thread."""

    def __init__(self, client: MlflowClient, run_ids: list[str], seconds: float = HEARTBEAT_SECONDS, also=None):
        self.client, self.run_ids, self.seconds, self.also = client, list(run_ids), seconds, also
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def beat(self) -> None:
        now = str(int(time.time() * 1000))
        for run_id in self.run_ids:
            # A busy store must not kill the trial: the next beat tries again.
            with contextlib.suppress(Exception):
                self.client.set_tag(run_id, HEARTBEAT_TAG, now)
        if self.also is not None:
            self.also()

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            self.beat()


def trainable(config: dict[str, Any]) -> None:
    request = config["request"]
    trial = TrialConfig.model_validate(request["config"])
    torch.set_num_threads(max(1, int(request.get("cpus", 1))))
    client = MlflowClient(request["tracking_uri"])
    folder = Path(request["checkpoint_dir"]) if request.get("checkpoint_dir") else None
    run_id, logged = _open_run(client, request, folder)
    if not logged:  # a new run: its parameters and config
        params = [Param(key, str(value)) for key, value in flatten(trial.resolved()).items()]
        for start in range(0, len(params), MLFLOW_BATCH):
            client.log_batch(run_id, params=params[start : start + MLFLOW_BATCH])
        client.log_dict(run_id, trial.resolved(), "trial_config.json")

    per_epoch: set[str] = set()

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        per_epoch.update(metrics)
        if epoch > logged:  # a resumed run already holds the epochs it logged before
            _log_metrics(client, run_id, metrics, epoch)
        heartbeat.beat()
        tune.report({"epoch": epoch, **metrics})

    heartbeat = Heartbeat(client, [run_id], request.get("heartbeat_seconds", HEARTBEAT_SECONDS))
    # The measurements' files (e.g. similarities.npz): one fresh folder per trial, logged to its run.
    with tempfile.TemporaryDirectory(prefix="trial-artifacts-") as artifacts:
        try:
            with heartbeat:
                final = run_trial(
                    trial, data_root=request["data_root"], on_epoch=on_epoch,
                    checkpoint_dir=folder, checkpoint_every=int(request.get("checkpoint_every", 1)),
                    artifact_dir=artifacts,
                )
            if any(Path(artifacts).iterdir()):
                client.log_artifacts(run_id, artifacts)
        except Exception as error:
            client.set_tag(run_id, "failure", f"{type(error).__name__}: {error}"[:5000])
            client.set_terminated(run_id, "FAILED")
            raise
        except BaseException:  # Tune stopping the trial (Ctrl-C, SIGTERM)
            client.set_terminated(run_id, "KILLED")
            raise
    _log_metrics(client, run_id, {k: v for k, v in final.items() if k not in per_epoch}, trial.train.epochs)
    # Closed before the last report: a Ctrl-C while Tune holds that report cannot leave it open.
    client.set_terminated(run_id, "FINISHED")
    if folder is not None:  # spent: the trial is in MLflow now
        shutil.rmtree(folder, ignore_errors=True)
    if torch.cuda.is_available():  # this worker may train the next trial (reuse_actors): free its cache
        torch.cuda.empty_cache()
    tune.report({"epoch": trial.train.epochs, **final, FINISHED_MARK: run_id})


def _open_run(client: MlflowClient, request: dict[str, Any], folder: Path | None) -> tuple[str, int]:
    """The trial's child run and the last epoch it already logged (0 for a new run).

    The run of an interrupted trial whose checkpoint survives is reopened, so that its metric
    history stays in one run; otherwise a new child run is created under this invocation's parent.
    """
    tags = {OWNER_TAG: owner(), HEARTBEAT_TAG: str(int(time.time() * 1000))}
    previous = _resumable_run(client, folder)
    if previous is not None:
        run_id, saved_epoch = previous
        client.update_run(run_id, status="RUNNING")
        history = client.get_metric_history(run_id, "train/loss")
        logged = max([m.step for m in history], default=0)
        for stale in ("failure", CLOSED_TAG):  # the run's last ending, not its final one
            with contextlib.suppress(Exception):
                client.delete_tag(run_id, stale)
        for key, value in {**tags, "resumed_from_epoch": str(saved_epoch),
                           "resumed_by": request["parent_run_id"]}.items():
            client.set_tag(run_id, key, value)
        return run_id, logged
    run_id = client.create_run(
        request["experiment_id"],
        run_name=request["name"],
        tags={"mlflow.parentRunId": request["parent_run_id"], **request["tags"], **tags},
    ).info.run_id
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RUN_FILE).write_text(json.dumps({"run_id": run_id}))
    return run_id, 0


def _resumable_run(client: MlflowClient, folder: Path | None) -> tuple[str, int] | None:
    if folder is None or not (folder / RUN_FILE).is_file():
        return None
    try:
        saved = load_checkpoint(folder)
        run_id = json.loads((folder / RUN_FILE).read_text())["run_id"]
        run = client.get_run(run_id)
    except Exception:  # no checkpoint yet, a deleted run, an unreadable file: start afresh
        saved, run = None, None
    if saved is None or run is None or run.info.lifecycle_stage != "active" or run.info.status == "FINISHED":
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return run.info.run_id, int(saved["epoch"])


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{path}.")
        else:
            flat[path] = value
    return flat


def _log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float], step: int) -> None:
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(key, float(value), now, step) for key, value in metrics.items()])
