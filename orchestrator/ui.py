"""``python -m orchestrator ui [STUDY.yaml]``: the MLflow UI of the study's store, on 127.0.0.1.

MLflow 3 opens an experiment on its GenAI overview (traces, "no data") unless the page is asked
for the machine-learning view; the URL printed here asks for it, on the experiment's runs table:

    http://127.0.0.1:5000/#/experiments/<experiment id>/runs?workflowType=machine_learning

(the UI's routes are ``/experiments/:experimentId/:tabName`` with ``runs`` a tab, and its
``workflowType`` query parameter is ``genai`` or ``machine_learning``: read from MLflow 3.17's
UI bundle, checked in a browser: without the parameter the same experiment opens on the GenAI
overview, even though ``run`` tags its experiments ``mlflow.experimentKind=custom_model_development``).
The server is ``mlflow server`` with the store as its backend, bound to 127.0.0.1 only; Ctrl-C
stops it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rich.console import Console

from orchestrator.errors import BadOption
from orchestrator.store import absolute_tracking_uri, check_store_folder, sqlite_path
from orchestrator.tracking import Tracker

HOST = "127.0.0.1"
WORKFLOW = "workflowType=machine_learning"
START_SECONDS = 120.0


def runs_url(port: int, experiment_id: str | None, host: str = HOST) -> str:
    """The UI's runs table of ``experiment_id`` (the experiments list without one), in the ML view."""
    if experiment_id is None:
        return f"http://{host}:{port}/#/experiments?{WORKFLOW}"
    return f"http://{host}:{port}/#/experiments/{experiment_id}/runs?{WORKFLOW}"


def notebook_snippet(tracking_uri: str, experiment: str | None) -> str:
    """Python that reads the same runs in a notebook, whatever folder the notebook runs in."""
    names = f'experiment_names=["{experiment}"]' if experiment else "search_all_experiments=True"
    return (f'import mlflow\nmlflow.set_tracking_uri("{tracking_uri}")\n'
            f"runs = mlflow.search_runs({names})")


def serve(tracking_uri: str, study: str | None, port: int, console: Console) -> int:
    """Runs the UI until Ctrl-C; returns the exit code. ``study`` names the experiment to open."""
    uri = absolute_tracking_uri(tracking_uri)
    check_store_folder(uri)
    database = sqlite_path(uri)
    if database is not None and not Path(database).is_file():
        raise BadOption("--tracking-uri", f"{uri}: no store there yet (run a study first, or give its store)")
    if _taken(port):
        raise BadOption("--port", f"{port} is taken on {HOST}: give another, e.g. --port {port + 1}")
    tracker = Tracker(uri)
    experiment = _experiment_to_open(tracker, study)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", HOST,
               "--port", str(port), "--workers", "1"]
    log = Path(tempfile.gettempdir()) / f"mlflow-ui-{port}.log"
    with open(log, "w") as output:  # the server's own chatter (access log, warnings)
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        if not _wait_until_up(server, port):
            lines = log.read_text().strip().splitlines()
            console.print(f"[red]error[/]: mlflow server did not start: {lines[-1] if lines else 'no answer'} "
                          f"(its log: {log})")
            return 1
        experiment_id = experiment.experiment_id if experiment else None
        where = f"runs of {experiment.name}" if experiment else "experiments"
        console.print(f"MLflow UI of {uri}, {where}:\n  {runs_url(port, experiment_id)}")
        console.print("In a notebook:\n  " + notebook_snippet(uri, experiment.name if experiment else None)
                      .replace("\n", "\n  "))
        console.print(f"Ctrl-C stops the server (its log: {log}).", style="dim")
        server.wait()
        return server.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def _experiment_to_open(tracker: Tracker, study: str | None):
    """The study's experiment; without a study, the store's only experiment with runs, else None (the list)."""
    client = tracker.client
    if study is not None:
        found = client.get_experiment_by_name(study)
        if found is None:
            raise BadOption("study", f"{study}: no runs in {tracker.uri} yet")
        return found
    with_runs = [e for e in client.search_experiments() if client.search_runs([e.experiment_id], max_results=1)]
    return with_runs[0] if len(with_runs) == 1 else None


def _taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: lingering closes are fine
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _wait_until_up(server: subprocess.Popen, port: int) -> bool:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=5) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False
