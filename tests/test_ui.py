"""``ui``: a real MLflow server on 127.0.0.1 whose printed URL names the study's runs in the ML view."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import tiny_study

from orchestrator.cli import main
from orchestrator.tracking import Tracker
from orchestrator.ui import notebook_snippet, runs_url

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_url_opens_the_runs_table_in_the_machine_learning_view():
    assert runs_url(5000, "7") == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    assert runs_url(5001, None) == "http://127.0.0.1:5001/#/experiments?workflowType=machine_learning"


def test_the_notebook_snippet_reads_the_same_store_from_any_folder(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    tracker.client.create_run(tracker.experiment("tiny"), run_name="one")
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    namespace: dict = {}
    exec(notebook_snippet(tracker.uri, "tiny"), namespace)
    assert list(namespace["runs"]["tags.mlflow.runName"]) == ["one"]
    assert not list(elsewhere.iterdir()), "no new store made where the notebook runs"


def test_no_store_and_a_taken_port_are_one_line(write_study, tmp_path, capsys):
    path = write_study(tiny_study())
    assert main(["ui", str(path), "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no store there yet" in capsys.readouterr().err
    Tracker(f"sqlite:///{tmp_path / 'm.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        assert main(["ui", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --port: {port} is taken on 127.0.0.1: give another, e.g. --port {port + 1}"


@pytest.mark.slow
def test_ui_serves_the_store_and_prints_the_url_of_the_studys_runs(write_study, tmp_path):
    path = write_study(tiny_study())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    tracker.experiment("other")
    experiment = tracker.experiment("tiny")
    tracker.client.create_run(experiment, run_name="tiny@smoke")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "orchestrator", "ui", str(path), "--tracking-uri", uri,
                                "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.time() + 240
        while url is None and time.time() < deadline and process.poll() is None:
            line = process.stdout.readline()
            found = re.search(r"http://127\.0\.0\.1:\d+/\S+", line)
            url = found.group(0) if found else None
        assert url == f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs?workflowType=machine_learning"

        def get(path: str, body: dict | None = None):
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.read().decode()

        page = get("/")
        assert "<title>MLflow</title>" in page
        # The route and the parameter of the URL are the installed UI's own.
        bundle = get("/" + re.search(r'src="(?:\./)?([^"]*static/js/main\.[0-9a-f]+\.js)"', page).group(1))
        assert '"/experiments/:experimentId/runs"' in bundle and 'MACHINE_LEARNING="machine_learning"' in bundle
        assert 'get("workflowType")' in bundle
        # The experiment the URL names is the study's, with its run.
        found = json.loads(get(f"/ajax-api/2.0/mlflow/experiments/get?experiment_id={experiment}"))
        assert found["experiment"]["name"] == "tiny"
        runs = json.loads(get("/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [experiment]}))
        assert [r["info"]["run_name"] for r in runs["runs"]] == ["tiny@smoke"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with socket.socket() as probe:  # the server is gone with the command (closed connections may linger)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
