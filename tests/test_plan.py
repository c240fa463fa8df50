"""``plan``: each trial's status in a real MLflow store, the time-left estimate by hand, and no Ray."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_study

from orchestrator.cli import main
from orchestrator.expansion import expand
from orchestrator.plan import FAILED, FINISHED, PENDING, RUNNING, plan_study
from orchestrator.spec import load_study
from orchestrator.tracking import Tracker

ROOT = Path(__file__).resolve().parents[1]


def store_with_history(uri: str, trials) -> None:
    """Runs as a study leaves them: finished, running (alive and stale), failed, killed, none."""
    tracker = Tracker(uri)
    client, experiment = tracker.client, tracker.experiment("tiny")
    now = str(int(time.time() * 1000))

    def run(trial, status, seconds=None, epochs_logged=0, owner="elsewhere:1:1", heartbeat=now):
        run_id = client.create_run(experiment, tags={"trial_hash": trial.hash, "owner": owner,
                                                      "heartbeat": heartbeat}).info.run_id
        for epoch in range(1, epochs_logged + 1):
            client.log_metric(run_id, "train/loss", 1.0, step=epoch)
        if seconds is not None:
            client.log_metric(run_id, "train/seconds", seconds)
        if status != "RUNNING":
            client.set_terminated(run_id, status)

    run(trials[0], "FINISHED", 10.0)
    run(trials[1], "FAILED")
    run(trials[1], "FINISHED", 20.0)  # a later success wins over an earlier failure
    run(trials[2], "RUNNING", epochs_logged=1)  # 1 of 2 epochs, heartbeat fresh
    run(trials[3], "FAILED")
    run(trials[4], "FINISHED", 40.0)
    run(trials[5], "KILLED")
    run(trials[6], "RUNNING", heartbeat="0")  # no heartbeat for ages: stale, trained again
    # trials[7]: never run


def test_statuses_and_time_left_from_the_store(write_study, tmp_path):
    import ray

    study = load_study(write_study(tiny_study()))  # 2 variants × 2 sizes × 2 seeds, 2 epochs each
    trials = expand(study)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store_with_history(uri, trials)
    plan = plan_study(study, uri, concurrency=3)
    assert [row.status for row in plan.rows] == [FINISHED, FINISHED, RUNNING, FAILED, FINISHED, PENDING,
                                                 RUNNING, PENDING]
    assert [row.stale for row in plan.rows] == [False] * 6 + [True, False]
    assert plan.rows[2].done == 0.5
    # By hand: t02 finished in 10 and 20 s (mean 15), t05 in 40 s. Left: half of a t02 trial (7.5 s),
    # the killed, the stale and the unrun t05 trials (3 × 40 s) = 127.5 s of work, 3 at once.
    assert plan.seconds_per_trial() == {"": pytest.approx(70 / 3), "t02": 15.0, "t05": 40.0}
    assert plan.seconds_left() == pytest.approx(127.5 / 3)
    assert not ray.is_initialized()


def test_plan_command_prints_the_table_and_the_estimate(write_study, tmp_path, capsys):
    path = write_study(tiny_study())
    trials = expand(load_study(path))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store_with_history(uri, trials)
    assert main(["plan", str(path), "--tracking-uri", uri, "--concurrency", "3"]) == 0
    out = capsys.readouterr().out
    assert "tiny @ paper: 8 cells → 8 distinct trials" in out
    lines = {trial.hash: next(line for line in out.splitlines() if trial.hash in line) for trial in trials}
    assert "finished" in lines[trials[0].hash] and "t02" in lines[trials[0].hash]
    assert "running (50%)" in lines[trials[2].hash] and "running, stale" in lines[trials[6].hash]
    assert "failed" in lines[trials[3].hash] and "pending" in lines[trials[7].hash]
    assert "3 finished, 2 running, 1 failed, 2 pending" in out
    assert "time left ≈ 42 s" in out and "÷ 3 at once (--concurrency)" in out


def test_concurrency_comes_from_the_study_else_this_machine(write_study, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    capped = load_study(write_study(tiny_study()), overrides=["execution.max_concurrent_trials=2"])
    assert plan_study(capped, uri).concurrency == 2
    halves = load_study(write_study(tiny_study()), overrides=["execution.cpus_per_trial=0.5"])
    assert plan_study(halves, uri).concurrency == 2 * (os.cpu_count() or 1)


def test_a_new_store_is_all_pending_and_not_created(write_study, tmp_path, capsys):
    path = write_study(tiny_study())
    database = tmp_path / "new.db"
    assert main(["plan", str(path), "--scale", "smoke", "--tracking-uri", f"sqlite:///{database}"]) == 0
    out = capsys.readouterr().out
    assert "0 finished, 0 running, 0 failed, 2 pending" in out
    assert "time left: unknown until a trial finishes (2 trials to go)" in out
    assert not database.exists(), "plan only reads"


def test_a_store_folder_that_does_not_exist_is_one_line(write_study, tmp_path, capsys):
    path = write_study(tiny_study())
    missing = tmp_path / "no" / "such" / "x.db"
    assert main(["plan", str(path), "--tracking-uri", f"sqlite:///{missing}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"the folder {missing.parent} does not exist" in err
    assert not missing.parent.exists()


def test_plan_never_imports_ray(write_study, tmp_path):
    path = write_study(tiny_study())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    Tracker(uri).experiment("tiny")
    script = (f"import sys; from orchestrator.cli import main; code = main(['plan', {str(path)!r}, "
              f"'--tracking-uri', {uri!r}]); print('ray imported:', 'ray' in sys.modules); sys.exit(code)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ray imported: False" in done.stdout
    assert not (tmp_path / "mlruns").exists() and not list(tmp_path.glob("ray*"))
