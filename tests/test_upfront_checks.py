"""Bad options refused before anything runs (one line, exit 2); a diverging trial's traceback in the log file;
the parent's source tags and trials_run; nothing written into the folder the command runs in."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_study
from mlflow import MlflowClient

from orchestrator.cli import main
from orchestrator.expansion import expand
from orchestrator.spec import load_study
from orchestrator.store import is_new_store, state_folder
from orchestrator.tracking import Tracker, open_store


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def run_args(path, tmp_path, *extra) -> list[str]:
    return ["run", str(path), "--scale", "smoke", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--data-root", str(tmp_path / "data"), "--reports", str(tmp_path / "reports"), *extra]


def test_reports_pointing_at_a_file_is_refused_before_the_store_is_touched(write_study, tmp_path, capsys):
    path = write_study(tiny_study())
    (tmp_path / "notes.txt").write_text("a file")
    assert main([*run_args(path, tmp_path), "--reports", str(tmp_path / "notes.txt")]) == 2
    assert f"error: --reports: {tmp_path / 'notes.txt'} is a file, not a folder" == one_line_error(capsys)
    assert main([*run_args(path, tmp_path), "--reports", str(tmp_path / "notes.txt" / "sub")]) == 2
    assert "is inside" in one_line_error(capsys)
    assert not (tmp_path / "mlflow.db").exists(), "nothing ran"


def test_a_tracking_folder_that_does_not_exist_is_refused_not_created(write_study, tmp_path, capsys):
    path = write_study(tiny_study())
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    assert main([*run_args(path, tmp_path), "--tracking-uri", f"sqlite:///{missing}"]) == 2
    err = one_line_error(capsys)
    assert err.startswith("error: --tracking-uri sqlite:///") and f"the folder {missing.parent} does not exist" in err
    assert not missing.parent.exists()


def test_negative_gpus_are_a_study_error(write_study, tmp_path, capsys):
    path = write_study(tiny_study())
    assert main([*run_args(path, tmp_path), "--set", "execution.gpus_per_trial=-1"]) == 2
    err = one_line_error(capsys)
    assert "execution.gpus_per_trial" in err and "greater than or equal to 0" in err


def test_artifacts_live_beside_the_store_whatever_folder_the_command_runs_in(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    client = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    experiment = client.create_experiment("made directly")  # as a test or a notebook would
    run = client.create_run(experiment).info.run_id
    client.log_dict(run, {"a": 1}, "a.json")
    assert list(project.iterdir()) == []
    assert (tmp_path / "mlruns" / "made_directly" / run / "artifacts" / "a.json").is_file()
    assert Tracker(f"sqlite:///{tmp_path / 'store.db'}").client.get_experiment(experiment).artifact_location == (
        tmp_path / "mlruns" / "made_directly").as_uri()


def test_a_new_store_is_a_sqlite_file_not_made_yet(tmp_path):
    """On a new store the runner starts Ray while the store's tables are made: it must not mistake an old one."""
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    assert is_new_store(uri)
    (tmp_path / "store.db").touch()  # what sqlite leaves when a process dies before the first table
    assert is_new_store(uri)
    open_store(uri)
    assert not is_new_store(uri)
    assert not is_new_store("sqlite:///:memory:") and not is_new_store("http://127.0.0.1:5000")


@pytest.mark.slow
def test_resources_no_node_has_are_refused_before_any_run(ray_cluster, write_study, tmp_path, capsys):
    path = write_study(tiny_study())
    assert main([*run_args(path, tmp_path), "--set", "execution.cpus_per_trial=64"]) == 2
    err = one_line_error(capsys)
    assert "execution.cpus_per_trial: 64 CPUs per trial, but this machine has 2: no trial could ever start" in err
    assert main([*run_args(path, tmp_path), "--set", "execution.gpus_per_trial=1"]) == 2
    assert "execution.gpus_per_trial: 1 GPUs per trial, but this machine has no GPU" in one_line_error(capsys)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    assert not client.search_runs([experiment.experiment_id]), "no run was opened"
    # The first refusal came while a new store was being made ready beside Ray's start, the second
    # on the existing store: both released the trials they had claimed.
    claims = state_folder(f"sqlite:///{tmp_path / 'mlflow.db'}") / "claims" / experiment.experiment_id
    assert claims.is_dir() and not [p.name for p in claims.iterdir() if p.name != ".lock"]


def test_the_command_line_imports_neither_mlflow_nor_tune_before_ray_starts():
    # run_study starts Ray right after the study is validated; MLflow, the reports and Tune load beside it.
    script = ("import sys, orchestrator.cli, orchestrator.runner; "
              "print(sorted(m for m in ('mlflow', 'ray.tune', 'pandas', 'matplotlib', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_a_diverging_trial_is_one_line_its_traceback_in_the_log(ray_cluster, write_study, tmp_path, capfd,
                                                                 monkeypatch):
    from workers.tune_adapter import process_start

    sweep = {"grid": {"data.second_size": [16]}, "seeds": [0], "variants": {
        "fine": {}, "claimed": {"loss.temperature": 0.5},
        "exploding": {"method": "supervised", "optim": {"name": "sgd", "lr": 1.0e30, "momentum": 0.0}}}}
    path = write_study(tiny_study(sweep=sweep, scales={"small": {}, "smoke": {"train.epochs": 1}}))
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    # A live invocation (this test's parent process) holds one trial: this one does not run it.
    claimed = next(t for t in expand(load_study(path, scale="smoke")) if t.variant == "claimed")
    claim = state_folder(uri) / "claims" / Tracker(uri).experiment("tiny") / claimed.hash
    claim.parent.mkdir(parents=True)
    claim.write_text(f"{socket.gethostname()}:{os.getppid()}:{process_start(os.getppid())}")
    project = tmp_path / "project"  # the folder the command runs in: it must stay empty
    project.mkdir()
    monkeypatch.chdir(project)
    args = run_args(path, tmp_path, "--tracking-uri", uri)
    capfd.readouterr()

    assert main(args) == 1  # a trial failed
    out, err = capfd.readouterr()
    console = out + err
    assert "Traceback" not in console, console[-3000:]
    failure_lines = [line for line in console.splitlines() if line.startswith("failed exploding")]
    assert len(failure_lines) == 1 and failure_lines[0].endswith("TrialDiverged: train/loss is nan in epoch 1")
    log = next(line.split(": ", 1)[1] for line in console.splitlines() if line.startswith("tracebacks: "))
    text = Path(log).read_text()
    assert "Traceback" in text and "TrialDiverged" in text
    assert f"Ray's log (tracebacks of failed trials): {log}" in console
    assert list(project.iterdir()) == [], "nothing written where the command ran"

    client = open_store(uri)
    experiment = client.get_experiment_by_name("tiny")
    parent = next(r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in
                  r.data.tags)
    assert parent.data.metrics["trials_run"] == 2, "fine and exploding ran; the claimed trial did not"
    assert parent.data.tags["mlflow.source.name"] == "python -m orchestrator " + " ".join(args)
    assert parent.data.tags["command"] == parent.data.tags["mlflow.source.name"]
    commit = parent.data.tags["git_commit"].removesuffix("-dirty")
    assert parent.data.tags.get("mlflow.source.git.commit", "unknown") == commit
    assert parent.data.tags["mlflow.source.type"] == "LOCAL"
    # The store's artifacts are beside it, whatever folder the command ran in.
    assert experiment.artifact_location == (tmp_path / "store" / "mlruns" / "tiny").as_uri()
    assert list((tmp_path / "store" / "mlruns" / "tiny").rglob("trial_config.json"))
