"""Nothing lost, nothing run twice: stale runs, trial claims and the study's state folder.

*Stale runs.* Every open run (parent and child) carries ``owner`` (``host:pid:start``) and
``heartbeat`` (epoch ms) tags, refreshed while its process lives (``workers.tune_adapter``).
At its start an invocation closes, as KILLED with a ``closed_because`` tag, every RUNNING run of
the study's experiment whose owner is a process of this host that no longer exists, or whose
heartbeat (its start, for runs without one) is older than the lease (``execution.lease_minutes``).
Their trials are then pending again.

*Claims.* Before a trial is handed to Ray Tune, the invocation claims its hash: it creates
``<state>/claims/<experiment>/<hash>`` with ``O_CREAT | O_EXCL`` under an exclusive ``flock`` of
``<claims>/.lock``, holding its owner. A claim whose owner died on this host, or whose file was not touched
(the heartbeat refreshes its mtime) within the lease, is taken over; any other claim means
another invocation is training that trial, and this one leaves it alone.

*State folder.* Claims and checkpoints live next to a SQLite store (``<db>.state/``), or in
``./.sweep-state`` for a tracking server: a path the workers share.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from mlflow import MlflowClient

from orchestrator.store import state_folder  # noqa: F401 - the state folder's rule, imported from here too
from workers.tune_adapter import CLOSED_TAG, HEARTBEAT_TAG, OWNER_TAG, owner, process_start

KILLED_TAG = CLOSED_TAG


def owner_alive(tag: str | None) -> bool | None:
    """Whether the process named by an ``owner`` tag lives: None when it cannot be told (another host)."""
    try:
        host, pid, started = (tag or "").split(":")
        pid_number = int(pid)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _exited(pid_number):  # killed, not yet reaped by its parent
        return False
    return not started or process_start(pid_number) == started  # a reused pid is another process


def _exited(pid: int) -> bool:
    """Whether process ``pid`` has exited and only its entry is left (a zombie; False where /proc is absent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")  # field 3 of proc(5), the state


def stale_reason(tags: dict[str, str], start_ms: int, lease_seconds: float, now_ms: int | None = None) -> str | None:
    """Why an open run is stale, or None while it may still be alive."""
    if owner_alive(tags.get(OWNER_TAG)) is False:
        return f"its process {tags[OWNER_TAG]} is gone"
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    try:
        last = int(tags.get(HEARTBEAT_TAG, start_ms))
    except ValueError:
        last = start_ms
    if now_ms - last > lease_seconds * 1000:
        return f"no heartbeat for {(now_ms - last) / 60000:.1f} min (lease {lease_seconds / 60:g} min)"
    return None


def close_stale_runs(client: MlflowClient, experiment_id: str, lease_seconds: float) -> dict[str, str]:
    """Closes the stale RUNNING runs of the experiment as KILLED; returns run id → reason."""
    closed: dict[str, str] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000, page_token=token)
        for run in page:
            reason = stale_reason(run.data.tags, run.info.start_time, lease_seconds)
            if reason is not None:
                client.set_tag(run.info.run_id, KILLED_TAG, f"stale: {reason}")
                client.set_terminated(run.info.run_id, "KILLED")
                closed[run.info.run_id] = reason
        token = page.token
        if not token:
            return closed


def close_open_children(client: MlflowClient, experiment_id: str, parent_run_id: str, why: str) -> int:
    """Closes as KILLED every child of ``parent_run_id`` still RUNNING (its trial was stopped)."""
    runs = client.search_runs(
        [experiment_id],
        f"attributes.status = 'RUNNING' and tags.mlflow.parentRunId = '{parent_run_id}'",
        max_results=1000,
    )
    for run in runs:
        client.set_tag(run.info.run_id, KILLED_TAG, why)
        client.set_terminated(run.info.run_id, "KILLED")
    return len(runs)


class Claims:
    """The trial hashes this invocation holds, as files in ``folder`` (see the module docstring)."""

    def __init__(self, folder: Path, lease_seconds: float) -> None:
        self.folder, self.lease_seconds = folder, lease_seconds
        self.me = owner()
        self.held: list[str] = []
        folder.mkdir(parents=True, exist_ok=True)

    def claim(self, trial_hash: str) -> str | None:
        """Claims ``trial_hash``; returns None on success, else the owner that holds it."""
        path = self.folder / trial_hash
        with self._locked():  # reading a dead claim and replacing it is one step
            holder = self._holder(path)
            if holder is not None and not self._expired(path, holder):
                return holder
            path.unlink(missing_ok=True)
            try:
                descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:  # a claimer that does not lock (none of ours)
                return self._holder(path) or "another invocation"
            with os.fdopen(descriptor, "w") as file:
                file.write(self.me)
        self.held.append(trial_hash)
        return None

    @contextmanager
    def _locked(self):
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def touch(self) -> None:
        """The claims' heartbeat: a fresh mtime on every held claim."""
        for trial_hash in self.held:
            with suppress(OSError):
                os.utime(self.folder / trial_hash)

    def release(self, hashes: list[str] | None = None) -> None:
        """Gives up the claims on ``hashes`` (all held claims by default)."""
        hashes = list(self.held) if hashes is None else hashes
        with self._locked():
            for trial_hash in hashes:
                path = self.folder / trial_hash
                if self._holder(path) == self.me:
                    path.unlink(missing_ok=True)
        self.held = [h for h in self.held if h not in hashes]

    def _holder(self, path: Path) -> str | None:
        try:
            return path.read_text() or "unknown"
        except FileNotFoundError:
            return None

    def _expired(self, path: Path, holder: str) -> bool:
        if holder == self.me:
            return True
        alive = owner_alive(holder)
        if alive is not None:
            return not alive
        try:
            return time.time() - path.stat().st_mtime > self.lease_seconds
        except FileNotFoundError:
            return True
