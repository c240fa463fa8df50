"""``dashboards.studies``: a study's runs, table and figures for notebooks, read from a temporary store
holding runs logged by hand the way the orchestrator tags them."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import yaml
from conftest import tiny_study
from mlflow.entities import Param

from dashboards.studies import load_study_runs, results_of, study_figures, study_table
from orchestrator.tracking import open_store

REPORT = {
    "table": {"rows": ["variant", "target"], "columns": "data.second_size", "metric": "linear_acc"},
    "plots": [{"x": "data.second_size", "y": "linear_acc", "hue": "variant", "facet": "target"},
              {"x_metric": "train/loss", "y": "linear_acc", "hue": "variant"}],
    "labels": {"t02": "SimCLR τ=0.2"},
}
REFERENCE = {"source": "made up", "metric": "linear_acc", "columns": [8, 16],
             "rows": [{"variant": "t02", "target": "first_digit", "values": [70.0, 55.0]}]}


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """tiny at small: t02 and t05 at sizes 8 and 16, seed 0. t02@16 finished, then ran again (RUNNING)
    under a parent with --set; t05@8 failed; one run at smoke (another scale) is left out."""
    root = tmp_path_factory.mktemp("studies")
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_study(report=REPORT, reference=REFERENCE), sort_keys=False))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = open_store(uri)  # artifacts beside the temporary store, not in the checkout
    experiment = client.create_experiment("tiny")

    def parent(overrides: str, start: int) -> str:
        run = client.create_run(experiment, start_time=start, tags={"study": "tiny", "scale": "small"}).info.run_id
        client.log_batch(run, params=[Param("overrides", overrides)])
        return run

    plain, with_set = parent("-", 1000), parent("train.epochs=1", 5000)

    def child(variant, size, start, status, acc=None, up=plain, scale="small"):
        tags = {"study": "tiny", "scale": scale, "trial_hash": f"{variant}-{size}", "variant": variant,
                "data.second_size": str(size), "seed": "0", "mlflow.parentRunId": up}
        run = client.create_run(experiment, start_time=start, tags=tags).info.run_id
        if acc is not None:
            client.log_metric(run, "linear_acc/first_digit", acc)
            client.log_metric(run, "linear_acc/second_digit", 90.0)
            client.log_metric(run, "train/loss", acc / 100)
        if status != "RUNNING":
            client.set_terminated(run, status)
        return run

    child("t02", 8, 1100, "FINISHED", 70.0)
    child("t02", 16, 1200, "FINISHED", 60.0)
    rerun = child("t02", 16, 5100, "RUNNING", up=with_set)
    child("t05", 8, 1300, "FAILED")
    child("t05", 16, 1400, "FINISHED", 40.0)
    child("t05", 16, 9000, "FINISHED", 1.0, scale="smoke")
    return path, uri, rerun


def test_load_study_runs_one_row_per_trial_typed_labels_latest_run(logged):
    path, uri, rerun = logged
    runs = load_study_runs(path, uri, "small")
    assert list(runs.columns[:4]) == ["variant", "data.second_size", "seed", "trial_hash"]
    assert runs.attrs["labels"] == ["variant", "data.second_size", "seed"] and runs.attrs["study"] == "tiny"
    by_trial = runs.set_index("trial_hash")
    assert sorted(by_trial.index) == ["t02-16", "t02-8", "t05-16", "t05-8"]
    assert by_trial.loc["t02-16", "run_id"] == rerun and by_trial.loc["t02-16", "status"] == "RUNNING"
    assert by_trial.loc["t02-16", "overrides"] == "train.epochs=1" and by_trial.loc["t02-8", "overrides"] == ""
    assert by_trial.loc["t05-16", "linear_acc/first_digit"] == 40.0, "the smoke run is another scale's"
    assert by_trial["data.second_size"].to_dict() == {"t02-8": 8, "t02-16": 16, "t05-8": 8, "t05-16": 16}
    assert by_trial["data.second_size"].map(type).eq(int).all() and by_trial["seed"].map(type).eq(int).all()
    assert load_study_runs(path, uri, "paper").empty


def test_results_table_and_figures_read_finished_runs_only(logged):
    path, uri, _ = logged
    runs = load_study_runs(path, uri, "small")
    first = results_of(runs, "linear_acc").query("target == 'first_digit'").set_index("trial_hash")["value"]
    assert first["t02-8"] == 70.0 and first["t05-16"] == 40.0
    assert math.isnan(first["t02-16"]) and math.isnan(first["t05-8"]), "running and failed runs have no value"
    assert results_of(runs, "train/loss").set_index("trial_hash")["value"]["t02-8"] == pytest.approx(0.7)
    table = study_table(path, runs)
    assert table.loc[("SimCLR τ=0.2", "first_digit"), 8] == "70.0 n=1 (70.0, +0.0)"
    assert table.loc[("SimCLR τ=0.2", "first_digit"), 16] == "running (55.0)"
    assert table.loc[("t05", "first_digit"), 8] == "failed (—)"
    curves, against = study_figures(path, runs)
    dashed = [line for line in curves.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [70.0, 55.0]
    points = sorted(y for line in against.axes[0].get_lines() if line.get_marker() == "o" for y in line.get_ydata())
    assert points == [40.0, 70.0, 90.0, 90.0], "one point per finished run and target"
    assert not plt.get_fignums(), "figures are the caller's to show, not left open in pyplot"
    assert study_figures(path, runs.iloc[0:0]) == []
