"""A two-node Ray cluster on this machine (`ray start --head` + `ray start --address`) running a study via --address.

The nodes are stopped by ending the ``ray start --block`` processes this test started (each in its
own session), never with ``ray stop``, which would stop every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from conftest import tiny_study

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
READY = "This command will now block forever"


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Cluster:
    address: str
    temp_dirs: list[Path]
    env: dict[str, str]


def start_node(args: list[str], temp_dir: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``ray start --block ...`` in a session of its own; returns once the node is up."""
    with log.open("w") as out:
        node = subprocess.Popen(
            [str(RAY), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
             "--temp-dir", str(temp_dir), "--object-store-memory", str(100 * 2**20), "--disable-usage-stats", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.time() + 60
    while READY not in log.read_text():
        if node.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"ray start {' '.join(args[:2])} did not come up:\n{log.read_text()[-2000:]}")
        time.sleep(0.3)
    return node


def stop_node(node: subprocess.Popen, temp_dir: Path) -> list[str]:
    """SIGTERM to ``ray start --block`` (it ends its node's processes), then SIGKILL to whatever is left of it.

    Returns the processes that were still alive after the SIGTERM (none when Ray shut down cleanly).
    """
    with contextlib.suppress(ProcessLookupError):
        node.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.wait(timeout=30)
    deadline = time.time() + 10
    while (left := ours(node.pid, temp_dir)) and time.time() < deadline:
        time.sleep(0.3)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid.split()[0]), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)
    node.wait()
    return left


def ours(session: int, temp_dir: Path) -> list[str]:
    """Processes of the node's session, or naming its temp dir: ``"pid command"``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            sid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3])
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if sid == session or str(temp_dir) in command:
            found.append(f"{proc.name} {command[:100]}")
    return found


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[Cluster]:
    token = tmp_path / "ray_token"  # Ray 2.60 authenticates nodes and drivers with a token: our own, not ~/.ray's
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    gcs, head_agent, head_manager, head_objects, agent, manager, objects = free_ports(7)
    # Short folders: Ray's socket paths under them must stay within the 107 bytes a Unix socket name may have.
    head_dir, worker_dir = (Path(tempfile.mkdtemp(prefix=f"ray-{name}-", dir="/tmp")) for name in ("head", "worker"))
    nodes: list[tuple[subprocess.Popen, Path]] = []
    try:
        nodes.append((start_node(
            ["--head", "--port", str(gcs), "--include-dashboard", "false", "--dashboard-agent-listen-port",
             str(head_agent), "--node-manager-port", str(head_manager), "--object-manager-port", str(head_objects)],
            head_dir, env, tmp_path / "head.log"), head_dir))
        nodes.append((start_node(
            ["--address", f"127.0.0.1:{gcs}", "--dashboard-agent-listen-port", str(agent),
             "--node-manager-port", str(manager), "--object-manager-port", str(objects)],
            worker_dir, env, tmp_path / "worker.log"), worker_dir))
        yield Cluster(f"127.0.0.1:{gcs}", [head_dir, worker_dir], env)
    finally:
        left = [p for node, folder in reversed(nodes) for p in stop_node(node, folder)]
        for folder in (head_dir, worker_dir):
            shutil.rmtree(folder, ignore_errors=True)
    assert not left, f"processes outlived their node's ray start: {left}"


def test_a_study_runs_on_a_two_node_cluster_through_address(two_nodes, write_study, tmp_path):
    path = write_study(tiny_study())  # smoke: 2 trials
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "orchestrator", "run", str(path), "--scale", "smoke", "--set", "train.epochs=1",
               "--address", two_nodes.address, "--tracking-uri", uri, "--data-root", str(tmp_path / "data"),
               "--reports", str(tmp_path / "reports")]
    done = subprocess.run(command, cwd=tmp_path, env=two_nodes.env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tiny"])
    children = runs[runs["tags.trial_hash"].notna()]
    assert len(children) == 2 and set(children.status) == {"FINISHED"}
    assert set(runs[runs["tags.trial_hash"].isna()].status) == {"FINISHED"}  # the parent
    assert children["tags.trial_hash"].is_unique
    # One CPU per node and one per trial: the two trials ran at once, one on each node.
    for folder in two_nodes.temp_dirs:
        logs = (folder / "session_latest" / "logs").glob("worker-*.out")
        assert any(":actor_name:ImplicitFunc" in log.read_text(errors="replace") for log in logs), folder.name
