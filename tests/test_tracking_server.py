"""A whole study logged through an MLflow tracking server backed by PostgreSQL (`.ci/postgres.sh`).

Skipped, with the reason, only where PostgreSQL cannot be installed or started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import tiny_study
from mlflow import MlflowClient

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
POSTGRES = ROOT / ".ci" / "postgres.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


@pytest.fixture
def postgres() -> Iterator[str]:
    """The DSN of a new PostgreSQL cluster on a free port of 127.0.0.1, stopped and removed afterwards."""
    installed = subprocess.run([str(POSTGRES), "install"], capture_output=True, text=True, timeout=600)
    if installed.returncode != 0:
        pytest.skip(f"PostgreSQL cannot be installed: {last_line(installed.stderr)}")
    folder = tempfile.mkdtemp(prefix="pg-", dir="/tmp")  # reachable by the postgres user when we are root
    try:
        started = subprocess.run([str(POSTGRES), "start", folder], capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            pytest.skip(f"PostgreSQL cannot start: {last_line(started.stderr)}")
        yield started.stdout.strip()
    finally:
        subprocess.run([str(POSTGRES), "stop", folder], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tracking_server(postgres: str, tmp_path: Path) -> Iterator[str]:
    """``mlflow server`` on PostgreSQL with proxied artifacts in a temporary folder; its URL."""
    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [str(mlflow_cli), "server", "--backend-store-uri", postgres, "--artifacts-destination",
         str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
            if server.poll() is not None or time.time() > deadline:
                pytest.fail(f"mlflow server did not come up: {last_line((tmp_path / 'server.log').read_text())}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # uvicorn's workers, should any outlive it
        log.close()


def test_a_study_logs_runs_and_artifacts_through_a_postgres_backed_server(tracking_server, write_study, tmp_path):
    path = write_study(tiny_study())  # smoke: 2 trials
    command = [sys.executable, "-m", "orchestrator", "run", str(path), "--scale", "smoke", "--set", "train.epochs=1",
               "--tracking-uri", tracking_server, "--data-root", str(tmp_path / "data"),
               "--reports", str(tmp_path / "reports")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    client = MlflowClient(tracking_server)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is not None and experiment.artifact_location.startswith("mlflow-artifacts:")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if "trial_hash" in r.data.tags]
    parents = [r for r in runs if "trial_hash" not in r.data.tags]
    assert len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert sorted(r.data.params["loss.temperature"] for r in children) == ["0.2", "0.5"]
    assert all(0 <= r.data.metrics["linear_acc/first_digit"] <= 100 for r in children)

    # Artifacts travel through the server into its --artifacts-destination, not into a local folder.
    downloads = tmp_path / "downloads"
    report = Path(client.download_artifacts(parents[0].info.run_id, "report/report.md", str(downloads)))
    assert report.read_text().startswith("#") and "t02" in report.read_text()
    config = json.loads(Path(client.download_artifacts(children[0].info.run_id, "trial_config.json",
                                                       str(downloads))).read_text())
    assert config["loss"]["name"] == "nt_xent" and config["train"]["epochs"] == 1
    stored = list((tmp_path / "artifacts").rglob("report.md"))
    assert len(stored) == 1 and stored[0].read_bytes() == report.read_bytes()
    assert not (tmp_path / "mlruns").exists()
