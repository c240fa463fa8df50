"""A two-trial study through a real local Ray Tune into a temporary MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from conftest import tiny_study
from rich.console import Console

from orchestrator.runner import run_study
from orchestrator.spec import load_study

pytestmark = pytest.mark.slow


def run(path, tmp_path, scale="smoke"):
    return run_study(
        load_study(path, scale=scale),
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        data_root=tmp_path / "data",
        storage_path=tmp_path / "ray",
        reports_root=tmp_path / "reports",
        console=Console(width=120, record=True),
    )


def runs_of(tmp_path, experiment):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=[experiment])


def test_two_trials_land_in_mlflow_and_rerun_skips_them(ray_cluster, write_study, tmp_path):
    path = write_study(tiny_study())  # smoke: 2 variants × 1 size × 1 seed
    summary = run(path, tmp_path)
    assert (summary.cells, summary.trials, summary.skipped, summary.failed) == (2, 2, 0, {})

    runs = runs_of(tmp_path, "tiny")
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(parents) == 1 and parents.status.item() == "FINISHED"
    assert len(children) == 2 and set(children.status) == {"FINISHED"}
    assert set(children["tags.mlflow.parentRunId"]) == {summary.parent_run_id}
    assert sorted(children["params.loss.temperature"]) == ["0.2", "0.5"]
    assert set(children["params.data.second_size"]) == {"16"}
    for target in ("first_digit", "second_digit"):
        assert children[f"metrics.linear_acc/{target}"].between(0, 100).all()

    client = mlflow.MlflowClient()
    child = children.iloc[0]
    history = client.get_metric_history(child.run_id, "train/loss")
    assert [m.step for m in history] == [1, 2]  # one point per epoch
    config = json.loads(Path(client.download_artifacts(child.run_id, "trial_config.json")).read_text())
    assert config["loss"]["name"] == "nt_xent" and config["data"]["second_size"] == 16
    assert (tmp_path / "reports" / "tiny" / "smoke" / "report.md").is_file()

    again = run(path, tmp_path)
    assert (again.skipped, again.ran) == (2, 0)
    runs = runs_of(tmp_path, "tiny")
    assert len(runs[runs["tags.mlflow.parentRunId"].notna()]) == 2, "nothing finished ran twice"
    assert len(runs[runs["tags.mlflow.parentRunId"].isna()]) == 2, "one parent run per invocation"
    assert again.report.table["runs"].sum() == 4  # 2 cells × 2 targets, read from the first invocation


def test_a_diverging_trial_fails_alone(ray_cluster, write_study, tmp_path):
    sweep = {"grid": {"data.second_size": [16]}, "seeds": [0], "variants": {
        "fine": {}, "exploding": {"method": "supervised", "optim": {"name": "sgd", "lr": 1.0e30, "momentum": 0.0}}}}
    summary = run(write_study(tiny_study(study="diverging", sweep=sweep)), tmp_path, scale="paper")
    assert list(summary.failed) == ["exploding second_size=16 seed=0"]
    assert "train/loss is" in summary.failed["exploding second_size=16 seed=0"]
    runs = runs_of(tmp_path, "diverging")
    children = runs[runs["tags.mlflow.parentRunId"].notna()].set_index("tags.variant")
    assert children.loc["fine", "status"] == "FINISHED"
    assert children.loc["exploding", "status"] == "FAILED"
    assert "TrialDiverged" in children.loc["exploding", "tags.failure"]


def test_one_worker_process_trains_one_trial_after_another(ray_cluster, write_study, tmp_path):
    """reuse_actors: with one trial at a time, the three trials' runs are owned by one process."""
    sweep = {"grid": {"data.second_size": [16]}, "seeds": [0, 1, 2]}
    study = tiny_study(study="reused", sweep=sweep)
    study["execution"] = {"max_concurrent_trials": 1}
    summary = run(write_study(study), tmp_path, scale="paper")
    assert (summary.trials, summary.failed) == (3, {})
    children = runs_of(tmp_path, "reused")
    children = children[children["tags.mlflow.parentRunId"].notna()]
    assert set(children.status) == {"FINISHED"} and len(children) == 3
    pids = {owner.split(":")[1] for owner in children["tags.owner"]}
    assert len(pids) == 1, f"each trial started its own worker process: {pids}"
