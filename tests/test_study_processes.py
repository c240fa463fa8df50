"""Whole invocations as processes: kill -9 mid-study, and two invocations at once on a new store."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from conftest import tiny_study
from mlflow import MlflowClient

from orchestrator.tracking import open_store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_kill_9_then_the_same_command_finishes_each_trial_once_and_resumes(write_study, tmp_path):
    path = write_study(tiny_study())  # smoke: 2 trials
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "orchestrator", "run", str(path), "--scale", "smoke", "--tracking-uri", uri,
               "--data-root", str(tmp_path / "data"), "--reports", str(tmp_path / "reports"),
               "--set", "train.epochs=120", "--set", "execution.max_concurrent_trials=1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        client = None
        deadline = time.time() + 240
        while time.time() < deadline:  # until one trial finished and the other logged an epoch
            time.sleep(0.5)
            if client is None and (tmp_path / "mlflow.db").exists():
                client = open_store(uri)  # under the lock: the orchestrator may be creating it
            experiment = client and client.get_experiment_by_name("tiny")
            if not experiment:
                continue
            children = client.search_runs([experiment.experiment_id], "tags.trial_hash != ''")
            running = [r for r in children if r.info.status == "RUNNING" and r.data.metrics.get("train/loss")]
            if any(r.info.status == "FINISHED" for r in children) and running:
                break
        else:
            pytest.fail("the first invocation never got one trial finished and one mid-way")
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        with_group_gone(first.pid)
    interrupted = running[0].info.run_id

    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "stale runs as KILLED" in second.stdout

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tiny"])
    assert "RUNNING" not in set(runs.status), "no run stays RUNNING"
    children = runs[runs["tags.trial_hash"].notna()]
    finished = children[children.status == "FINISHED"]
    assert len(children) == 2 and finished["tags.trial_hash"].is_unique and len(finished) == 2
    # The dead parent was closed as stale; its in-flight child too, unless its process had not yet
    # exited when this invocation began: either way that child resumed in place (above).
    parents = runs[runs["tags.trial_hash"].isna()]
    dead = parents[parents["tags.closed_because"].fillna("").str.startswith("stale")]
    assert len(dead) == 1 and set(dead.status) == {"KILLED"}
    resumed = MlflowClient(uri).get_run(interrupted)
    assert resumed.info.status == "FINISHED" and int(resumed.data.tags["resumed_from_epoch"]) >= 1
    steps = [m.step for m in MlflowClient(uri).get_metric_history(interrupted, "train/loss")]
    assert steps == list(range(1, 121)), "each epoch logged once"
    assert not list((tmp_path / "mlflow.db.state" / "checkpoints").rglob("checkpoint.pt")), "checkpoints spent"


def with_group_gone(pid: int) -> None:
    """Ends what is left of the killed invocation's session (its Ray processes), which this test started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def test_two_invocations_at_once_on_a_new_store_train_each_trial_once(write_study, tmp_path):
    path = write_study(tiny_study())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # new: both create it at once
    command = [sys.executable, "-m", "orchestrator", "run", str(path), "--scale", "smoke", "--tracking-uri", uri,
               "--data-root", str(tmp_path / "data"), "--reports", str(tmp_path / "reports"),
               "--set", "sweep.grid.data.second_size=[8,16]"]  # 4 trials
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    both = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True) for _ in range(2)]
    try:
        outputs = [process.communicate(timeout=400) for process in both]
    finally:
        for process in both:
            with_group_gone(process.pid)
    for process, (_, err) in zip(both, outputs, strict=True):
        assert process.returncode == 0, err[-2000:]
    to_run = [int(re.search(r"(\d+) to run", out).group(1)) for out, _ in outputs]
    assert sum(to_run) == 4, f"the two invocations shared the 4 trials: {to_run}"

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tiny"])
    assert "RUNNING" not in set(runs.status)
    children = runs[runs["tags.trial_hash"].notna()]
    assert len(children) == 4 and children["tags.trial_hash"].is_unique, "no trial trained twice"
    assert set(children.status) == {"FINISHED"}


@pytest.mark.parametrize("stop", [signal.SIGTERM])
def test_sigterm_mid_epoch_closes_every_run_it_opened(write_study, tmp_path, stop):
    path = write_study(tiny_study())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "orchestrator", "run", str(path), "--scale", "smoke", "--tracking-uri", uri,
               "--data-root", str(tmp_path / "data"), "--reports", str(tmp_path / "reports"),
               "--set", "train.epochs=400"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        client, deadline = None, time.time() + 240
        while time.time() < deadline:  # until a trial is mid-way
            time.sleep(0.5)
            client = client or ((tmp_path / "mlflow.db").exists() and open_store(uri)) or None
            experiment = client and client.get_experiment_by_name("tiny")
            if experiment and any(r.data.metrics.get("train/loss") for r in client.search_runs(
                    [experiment.experiment_id], "tags.trial_hash != '' and attributes.status = 'RUNNING'")):
                break
        else:
            pytest.fail("no trial got mid-way")
        os.kill(process.pid, stop)
        assert process.wait(timeout=120) == 130
    finally:
        with_group_gone(process.pid)
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["tiny"])
    assert len(runs) >= 2 and "RUNNING" not in set(runs.status), "every run it opened is closed"
    assert set(runs.status) <= {"KILLED", "FINISHED"}
