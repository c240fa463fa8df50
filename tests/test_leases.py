"""Nothing lost, nothing run twice, without Ray: stale runs, claims, the store's creation, resume."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_BASE
from mlflow import MlflowClient

from orchestrator.cli import main, parser
from orchestrator.leases import KILLED_TAG, Claims, close_stale_runs, owner_alive
from orchestrator.store import BrokenStore
from orchestrator.tracking import open_store
from workers import tune_adapter
from workers.config import TrialConfig
from workers.tune_adapter import HEARTBEAT_TAG, OWNER_TAG, owner, process_start


def dead_owner() -> str:
    """The owner tag of a process of this host that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:1"


def live_other_owner() -> str:
    """The owner tag of a living process that is not this one (pytest's parent)."""
    return f"{socket.gethostname()}:{os.getppid()}:{process_start(os.getppid())}"


def test_owner_alive_tells_dead_living_and_foreign_processes():
    assert owner_alive(owner()) is True
    assert owner_alive(dead_owner()) is False
    assert owner_alive(f"{socket.gethostname()}:{os.getpid()}:0") is False, "a reused pid is another process"
    assert owner_alive("some-other-host:1:1") is None  # only the heartbeat can tell


def test_a_killed_process_not_yet_reaped_is_not_alive():
    child = subprocess.Popen(["sleep", "60"])
    tag = f"{socket.gethostname()}:{child.pid}:{process_start(child.pid)}"
    try:
        assert owner_alive(tag) is True
        child.kill()
        deadline = time.time() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":  # not reaped yet
            assert time.time() < deadline, "the killed child never became a zombie"
            time.sleep(0.01)
        assert owner_alive(tag) is False
    finally:
        child.kill()
        child.wait()


def test_stale_runs_are_closed_as_killed_and_live_ones_left_open(tmp_path):
    client = open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("tiny")
    old = str(int(time.time() * 1000) - 11 * 60_000)
    runs = {
        "dead": {OWNER_TAG: dead_owner(), HEARTBEAT_TAG: str(int(time.time() * 1000))},
        "silent": {OWNER_TAG: "some-other-host:1:1", HEARTBEAT_TAG: old},
        "alive": {OWNER_TAG: owner(), HEARTBEAT_TAG: old},  # its process lives, but its heartbeat is old
        "fresh": {OWNER_TAG: "some-other-host:1:1", HEARTBEAT_TAG: str(int(time.time() * 1000))},
    }
    ids = {name: client.create_run(experiment, tags=tags, run_name=name).info.run_id for name, tags in runs.items()}
    closed = close_stale_runs(client, experiment, lease_seconds=600)
    assert set(closed) == {ids["dead"], ids["silent"], ids["alive"]}
    for name in ("dead", "silent", "alive"):
        run = client.get_run(ids[name])
        assert run.info.status == "KILLED" and run.data.tags[KILLED_TAG].startswith("stale: ")
    assert "is gone" in client.get_run(ids["dead"]).data.tags[KILLED_TAG]
    assert client.get_run(ids["fresh"]).info.status == "RUNNING"


def test_a_claim_is_exclusive_and_taken_over_from_a_dead_owner(tmp_path):
    first, second = Claims(tmp_path, lease_seconds=600), Claims(tmp_path, lease_seconds=600)
    second.me = live_other_owner()  # as if another invocation, alive, on this host
    assert second.claim("abc") is None
    assert first.claim("abc") == second.me, "a living holder keeps its trial"
    (tmp_path / "dead").write_text(dead_owner())
    assert first.claim("dead") is None and (tmp_path / "dead").read_text() == first.me
    (tmp_path / "expired").write_text("some-other-host:1:1")
    os.utime(tmp_path / "expired", (time.time() - 700, time.time() - 700))
    assert first.claim("expired") is None
    first.release()
    assert not (tmp_path / "dead").exists() and (tmp_path / "abc").exists()


def _claim_all(folder, hashes, queue, done):
    claims = Claims(folder, lease_seconds=600)
    queue.put([h for h in hashes if claims.claim(h) is None])
    done.wait(60)  # alive until every claimer is through: a dead claimer's claims are free to take


def test_concurrent_claimers_never_get_the_same_trial(tmp_path):
    hashes = [f"h{i:03d}" for i in range(200)]
    context = multiprocessing.get_context("fork")
    queue, done = context.Queue(), context.Event()
    workers = [context.Process(target=_claim_all, args=(tmp_path, hashes, queue, done)) for _ in range(3)]
    for worker in workers:
        worker.start()
    won = [queue.get(timeout=60) for _ in workers]
    done.set()
    for worker in workers:
        worker.join()
    claimed = [h for hashes_won in won for h in hashes_won]
    assert sorted(claimed) == hashes, "every trial claimed exactly once"


def _open(uri, queue):
    try:
        open_store(uri).create_experiment(f"e{os.getpid()}")
        queue.put("ok")
    except Exception as error:  # reported to the test, which fails on it
        queue.put(repr(error))


def test_two_processes_create_one_new_store_at_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [context.Process(target=_open, args=(uri, queue)) for _ in range(2)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join()
    assert results == ["ok", "ok"]
    assert len(MlflowClient(uri).search_experiments()) == 3  # Default and one each


def test_a_broken_store_is_one_line_and_exit_2(tmp_path, write_study, capsys):
    from conftest import tiny_study

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BrokenStore) as error:
        open_store(f"sqlite:///{broken}")
    assert "\n" not in str(error.value)
    path = write_study(tiny_study())
    assert main(["run", str(path), "--scale", "smoke", "--tracking-uri", f"sqlite:///{broken}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --tracking-uri sqlite:///") and len(err.splitlines()) == 1


def test_run_has_rerun_failed_and_force_flags():
    args = parser().parse_args(["run", "s.yaml", "--rerun-failed"])
    assert args.rerun_failed and not args.force
    assert parser().parse_args(["run", "s.yaml", "--force"]).force
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "s.yaml", "--force", "--rerun-failed"])


class _Stop(BaseException):
    """Stands for the process going away mid-trial."""


class _FakeTune:
    def __init__(self, stop_after_epoch: int | None = None) -> None:
        self.stop_after_epoch, self.reports = stop_after_epoch, []

    def report(self, metrics):
        self.reports.append(metrics)
        if metrics.get("epoch") == self.stop_after_epoch and tune_adapter.FINISHED_MARK not in metrics:
            raise _Stop


def test_an_interrupted_trial_resumes_in_its_run_and_logs_each_epoch_once(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = open_store(uri)
    experiment = client.create_experiment("tiny")
    parent = client.create_run(experiment).info.run_id
    config = TrialConfig.model_validate({**TINY_BASE, "train": {"batch_size": 64, "epochs": 3}})
    folder = tmp_path / "state" / "checkpoints" / "abc"
    request = {"hash": "abc", "name": "t", "config": config.model_dump(mode="json"), "tags": {"trial_hash": "abc"},
               "tracking_uri": uri, "experiment_id": experiment, "parent_run_id": parent,
               "data_root": str(tmp_path / "data"), "cpus": 1, "checkpoint_dir": str(folder), "checkpoint_every": 1}

    first = _FakeTune(stop_after_epoch=2)
    monkeypatch.setattr(tune_adapter, "tune", first)
    with pytest.raises(_Stop):
        tune_adapter.trainable({"request": request})
    runs = client.search_runs([experiment], "tags.trial_hash = 'abc'")
    assert len(runs) == 1 and runs[0].info.status == "KILLED"
    run_id = runs[0].info.run_id
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2]

    second = _FakeTune()
    monkeypatch.setattr(tune_adapter, "tune", second)
    tune_adapter.trainable({"request": request})
    assert [r["epoch"] for r in second.reports] == [3, 3], "only the epoch left runs"
    runs = client.search_runs([experiment], "tags.trial_hash = 'abc'")
    assert len(runs) == 1, "continued in the same run"
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["resumed_from_epoch"] == "2"
    for metric in ("train/loss", "train/lr"):
        assert [m.step for m in client.get_metric_history(run_id, metric)] == [1, 2, 3], metric
    assert "linear_acc/first_digit" in run.data.metrics
    assert not folder.exists(), "a finished trial's checkpoint is spent"


def test_failed_trials_wait_for_rerun_failed_and_force_runs_everything(tmp_path, write_study):
    from conftest import tiny_study

    from orchestrator.expansion import expand, unique
    from orchestrator.preparation import pending_trials
    from orchestrator.spec import load_study

    study = tiny_study(scales={"small": {}, "smoke": {"sweep.seeds": [0]}})  # 4 trials
    trials = unique(expand(load_study(write_study(study), scale="smoke")))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = open_store(uri)
    experiment = client.create_experiment("tiny")
    for trial, status in zip(trials, ["FINISHED", "FAILED", "KILLED"], strict=False):
        run_id = client.create_run(experiment, tags={"trial_hash": trial.hash}).info.run_id
        client.set_terminated(run_id, status)
    names = lambda found: [t.name for t in found]  # noqa: E731
    pending, failed = pending_trials(trials, uri, "tiny", rerun_failed=False, force=False)
    assert names(pending) == names(trials[2:]) and names(failed) == [trials[1].name]
    pending, failed = pending_trials(trials, uri, "tiny", rerun_failed=True, force=False)
    assert names(pending) == names(trials[1:]) and failed == []
    assert names(pending_trials(trials, uri, "tiny", rerun_failed=False, force=True)[0]) == names(trials)
