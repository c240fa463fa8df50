"""Ray itself: a local instance started for this process, or a cluster joined at ``address``.

Apart from ``orchestrator.execution`` (Tune), so that a study can start Ray before Tune's import:
``orchestrator.runner`` starts it while the store is made ready.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
from pathlib import Path

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables would fight the progress bars
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import ray

from orchestrator.errors import StudyError
from orchestrator.spec import Execution

# A reused worker (reuse_actors) waits this long for the trial a scheduler stopped on it to close
# its MLflow run (KILLED) before the next trial starts there; Tune's default, 2 s, is too short
# for SQLite on a busy machine, and the next trial would then fail.
WORKER_ENV = {"TUNE_FUNCTION_THREAD_TIMEOUT_S": "60"}


def start_ray(address: str | None) -> Path | None:
    """Joins the Ray cluster at ``address``, or starts a local Ray for this process (once).

    Returns the session folder of a local Ray this call started (``None`` otherwise).
    A local Ray's session folder (``/tmp/ray/session_*``: its logs, sockets and object spill)
    is spent once the process ends: it is shut down and removed at exit, so invocations do
    not pile sessions up. A kill -9 leaves it behind; Ray never reuses it.
    """
    if ray.is_initialized():
        return None
    if address is None:  # a local Ray's workers inherit this process's environment
        for name, value in WORKER_ENV.items():
            os.environ.setdefault(name, value)
    context = ray.init(
        # "local": a new instance, never a cluster that `ray start` or RAY_ADDRESS left on this machine
        address=address or "local",
        include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
        # A cluster's workers get them through a runtime environment, which costs every worker
        # process ~1 s to set up: a local Ray skips it.
        runtime_env=None if address is None else {"env_vars": WORKER_ENV},
    )
    if address is not None:
        return None
    session = Path(context.address_info["session_dir"])
    atexit.register(_remove_session, session)
    return session


def _remove_session(session: Path) -> None:
    ray.shutdown(wait_for_processes=True)  # its processes gone before their folder goes
    shutil.rmtree(session, ignore_errors=True)


def connect(address: str | None, execution: Execution, file: str) -> None:
    """Starts (or joins) Ray and checks that some node can hold one trial; else one :class:`StudyError`."""
    start_ray(address)
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    cpus = max((node.get("CPU", 0) for node in nodes), default=0)
    gpus = max((node.get("GPU", 0) for node in nodes), default=0)
    where = "this machine" if address is None else f"the largest node of the cluster at {address}"
    if execution.cpus_per_trial > cpus:
        message = f"{execution.cpus_per_trial:g} CPUs per trial, but {where} has {cpus:g}: no trial could ever start"
        raise StudyError(file, message, key="execution.cpus_per_trial")
    wanted = execution.gpus_per_trial
    if wanted != "auto" and wanted > gpus:
        has = f"has {gpus:g} GPUs" if gpus else "has no GPU"
        message = f"{wanted:g} GPUs per trial, but {where} {has}: no trial could ever start"
        raise StudyError(file, message, key="execution.gpus_per_trial")
