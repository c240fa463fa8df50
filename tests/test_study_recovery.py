"""A study after a kill -9, beside a concurrent invocation, and with --force, through a real Ray Tune."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import mlflow
import pytest
from conftest import tiny_study
from rich.console import Console

from orchestrator.expansion import expand, unique
from orchestrator.leases import KILLED_TAG, state_folder
from orchestrator.runner import run_study
from orchestrator.spec import load_study
from orchestrator.tracking import open_store
from workers.tune_adapter import HEARTBEAT_TAG, OWNER_TAG, process_start

pytestmark = pytest.mark.slow


def test_killed_runs_are_closed_claimed_trials_left_alone_and_each_trial_finishes_once(
    ray_cluster, write_study, tmp_path
):
    path = write_study(tiny_study())  # smoke: 2 trials
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    study = load_study(path, scale="smoke")
    first, second = unique(expand(study))

    def run(**flags):
        return run_study(load_study(path, scale="smoke"), tracking_uri=uri, data_root=tmp_path / "data",
                         storage_path=tmp_path / "ray", reports_root=tmp_path / "reports",
                         console=Console(width=120, record=True), **flags)

    # What a kill -9 of the orchestrator mid-trial leaves: a RUNNING parent and child of a dead process.
    client = open_store(uri)
    experiment = client.create_experiment("tiny")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = {OWNER_TAG: f"{socket.gethostname()}:{gone.pid}:1", HEARTBEAT_TAG: "0"}
    dead_parent = client.create_run(experiment, tags={**dead, "study": "tiny"}).info.run_id
    dead_child = client.create_run(experiment, tags={
        **dead, "mlflow.parentRunId": dead_parent, "trial_hash": first.hash}).info.run_id
    # A living invocation (this test's parent process, as far as the claim says) holds the second trial.
    claim = state_folder(uri) / "claims" / experiment / second.hash
    claim.parent.mkdir(parents=True)
    claim.write_text(f"{socket.gethostname()}:{os.getppid()}:{process_start(os.getppid())}")

    # An invocation whose process exits only while this one runs (a kill -9 just before it): closed at the end.
    exiting = subprocess.Popen(["sleep", "3"])
    late = client.create_run(experiment, tags={
        OWNER_TAG: f"{socket.gethostname()}:{exiting.pid}:{process_start(exiting.pid)}",
        HEARTBEAT_TAG: str(int(time.time() * 1000)), "study": "tiny"}).info.run_id

    summary = run()
    assert set(summary.closed_stale) == {dead_parent, dead_child, late}
    assert client.get_run(late).info.status == "KILLED"
    exiting.wait()
    assert list(summary.elsewhere) == [second.name] and summary.ran == 1
    assert client.get_run(dead_child).info.status == "KILLED"
    assert "is gone" in client.get_run(dead_child).data.tags[KILLED_TAG]
    assert claim.exists(), "another invocation's claim is not released by this one"

    claim.unlink()  # that invocation ended without training it
    again = run()
    assert (again.ran, again.skipped, again.elsewhere) == (1, 1, {})

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tiny"])
    assert "RUNNING" not in set(runs.status)
    children = runs[runs["tags.trial_hash"].notna()]
    finished = children[children.status == "FINISHED"]
    assert sorted(finished["tags.trial_hash"]) == sorted([first.hash, second.hash]), "one FINISHED run per trial"
    assert not list((state_folder(uri) / "claims" / experiment).glob("[!.]*")), "every claim released"

    forced = run(force=True)
    assert (forced.ran, forced.skipped) == (2, 0)
