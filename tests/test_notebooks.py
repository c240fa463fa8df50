"""Every notebook in dashboards/notebooks/ runs top to bottom (nbclient) against a temporary store holding
hand-logged runs of every study under studies/ at smoke scale; a cell error fails the test."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from nbclient import NotebookClient

from orchestrator.expansion import expand, unique
from orchestrator.spec import load_study
from orchestrator.tracking import open_store
from workers.trainer import EPOCH_METRICS, TARGET_METRICS, TRIAL_METRICS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "dashboards" / "notebooks").glob("*.ipynb"))
SCALE = "smoke"


def log_study(client: MlflowClient, path: Path, rng: np.random.Generator) -> int:
    """A parent run and one FINISHED child run per trial, tagged as the orchestrator tags them
    (a study whose trials a search samples has no cells to log: none)."""
    study = load_study(path, scale=SCALE)
    if not study.cells:
        return 0
    linear = study.base.eval.linear
    targets = linear.targets if linear and linear.targets else list(study.base.data.targets)
    experiment = client.create_experiment(study.name)
    tags = {"study": study.name, "scale": SCALE}
    parent = client.create_run(experiment, run_name=f"{study.name}@{SCALE}", tags=tags).info.run_id
    client.log_batch(parent, params=[Param("overrides", "-")])
    trials = unique(expand(study))
    for trial in trials:
        labels = {key: str(value) for key, value in trial.labels().items()}
        run = client.create_run(experiment, tags={**tags, **labels, "trial_hash": trial.hash,
                                                  "mlflow.parentRunId": parent}).info.run_id
        values = {f"{metric}/{target}": rng.uniform(10, 95) for metric in TARGET_METRICS for target in targets}
        values |= {metric: rng.uniform(0.1, 5) for metric in (*EPOCH_METRICS, *TRIAL_METRICS)}
        client.log_batch(run, metrics=[Metric(key, float(value), 0, 0) for key, value in values.items()])
        client.set_terminated(run, "FINISHED")
    client.set_terminated(parent, "FINISHED")
    return len(trials)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebooks")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = open_store(uri)  # artifacts beside the temporary store, not in the checkout
    rng = np.random.default_rng(0)
    logged = {path.stem: log_study(client, path, rng) for path in sorted((ROOT / "studies").rglob("*.yaml"))}
    assert sum(logged.values()) > 0
    return uri


def test_there_are_notebooks_saved_without_outputs():
    assert NOTEBOOKS, "dashboards/notebooks/ holds the papers' notebooks"
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: saved with outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_and_draws_every_study(path, store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # the notebooks read the store and scale from these
    monkeypatch.setenv("SWEEPS_SCALE", SCALE)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()  # raises on a cell error
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    printed = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    assert f"store {store}, scale {SCALE}" in printed
    assert "no runs of" not in printed, "every study of the notebook has runs in the store"
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert images, "the notebook draws figures"
