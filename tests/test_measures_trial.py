"""The measurements inside a trial: switched on by ``eval``, logged, written, and leaving training alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_BASE
from mlflow import MlflowClient
from pydantic import ValidationError

from orchestrator.tracking import open_store
from workers import TrialConfig, run_trial, tune_adapter
from workers.measures import MEASUREMENT_SEED_OFFSET, SIMILARITIES_FILE
from workers.trainer import EPOCH_METRICS, TARGET_METRICS, TRIAL_METRICS, evaluate

EVERYTHING = {"contrast": {"examples": 48}, "geometry": {"examples": 48}, "knn": {"k": 20},
              "similarities": {"examples": 40}}


def config(measures: dict | None = None, **changes) -> TrialConfig:
    return TrialConfig.model_validate({**TINY_BASE, "eval": {**TINY_BASE["eval"], **(measures or {})}, **changes})


def test_defaults_leave_every_trial_identity_as_it_was():
    plain = config()
    switched_off = config({"contrast": None, "geometry": None, "knn": None, "similarities": None})
    assert switched_off.identity() == plain.identity()
    assert set(plain.identity()["eval"]) == {"linear"}


def test_every_measure_appears_in_a_one_epoch_trial_on_digits(tmp_path):
    epochs = []
    metrics = run_trial(config(EVERYTHING, train={"batch_size": 64, "epochs": 1}), data_root=tmp_path, device="cpu",
                        on_epoch=lambda epoch, m: epochs.append(m), artifact_dir=tmp_path / "artifacts")
    per_epoch = {"contrast/entropy", "contrast/accuracy", "i_nce"}
    assert per_epoch <= set(epochs[0]) and per_epoch <= set(EPOCH_METRICS)
    assert 0 <= epochs[0]["contrast/entropy"] <= math.log(2 * 48 - 1) + 1e-4  # K = 2N − 1 candidates
    assert 0 <= epochs[0]["contrast/accuracy"] <= 100
    assert epochs[0]["i_nce"] <= math.log(2 * 48 - 1) + 1e-6  # log K − L_NCE, L_NCE ≥ 0
    assert {"uniformity", "tolerance", "alignment"} <= set(metrics) & set(TRIAL_METRICS)
    assert 0 <= metrics["uniformity"] <= 4 * 2.0 and -1 <= metrics["tolerance"] <= 1 and 0 <= metrics["alignment"] <= 4
    assert "knn_acc" in TARGET_METRICS
    for target in ("first_digit", "second_digit"):
        assert 0 <= metrics[f"knn_acc/{target}"] <= 100
    saved = np.load(tmp_path / "artifacts" / SIMILARITIES_FILE)
    assert saved["positive"].shape == (40,) and saved["negatives"].shape == (40, 10)
    assert (np.diff(saved["negatives"], axis=1) <= 0).all(), "hardest negative first"


def test_similarities_file_holds_the_held_out_pairs_cosines(tmp_path):
    """The whole chain re-derived: the measurement's own generator picks the images and draws the views."""
    trial = TrialConfig.model_validate({**TINY_BASE, "eval": {"linear": None, "similarities": {"examples": 20,
                                                                                                "space": "h"}}})
    dataset = trial.data.build(tmp_path, torch.device("cpu"))
    torch.manual_seed(trial.seed)
    method = trial.method.build(trial, dataset)
    logged = evaluate(method, dataset, trial, artifact_dir=tmp_path)
    saved = np.load(tmp_path / SIMILARITIES_FILE)
    positive, hardest = float(saved["positive"].mean()), float(saved["negatives"].mean())
    assert logged == pytest.approx({"similarities/positive": positive, "similarities/negatives": hardest,
                                    "similarities/gap": positive - hardest}, abs=1e-5)

    generator = torch.Generator().manual_seed(trial.seed + MEASUREMENT_SEED_OFFSET)
    index = torch.randperm(len(dataset.test), generator=generator)[:20].sort().values
    images = dataset.test.images(index)
    first = method.view(images, trial.views, generator)
    second = method.view(images, trial.views.second_branch(), generator)
    method.eval()
    with torch.no_grad():
        a, p = F.normalize(method.encoder(first), dim=1), F.normalize(method.encoder(second), dim=1)
    for i in range(20):
        assert saved["positive"][i] == pytest.approx(float(a[i] @ p[i]), abs=1e-5)
        negatives = sorted((float(a[i] @ p[j]) for j in range(20) if j != i), reverse=True)[:10]
        np.testing.assert_allclose(saved["negatives"][i], negatives, atol=1e-5)


def test_measuring_does_not_change_training(tmp_path):
    """A separate generator (and a forked global one): the same trial trains the same, measured or not."""
    two_epochs = {"train": {"batch_size": 64, "epochs": 2}}
    losses = {}
    for name, measures in {"plain": None, "measured": EVERYTHING}.items():
        curve = []
        final = run_trial(config(measures, **two_epochs), data_root=tmp_path, device="cpu",
                          on_epoch=lambda epoch, m, curve=curve: curve.append(m["train/loss"]),
                          artifact_dir=tmp_path / name)
        losses[name] = (curve, final["linear_acc/first_digit"], final["linear_acc/second_digit"])
    assert losses["plain"] == losses["measured"]


def test_moco_gets_the_diagnostics_and_supervised_only_the_trial_measures(tmp_path):
    one_epoch = {"train": {"batch_size": 64, "epochs": 1}}
    measures = {"contrast": {"examples": 16}, "geometry": {"examples": 16}}
    moco = run_trial(config(measures, method={"name": "moco", "queue_size": 128}, **one_epoch), data_root=tmp_path,
                     device="cpu")
    assert {"contrast/entropy", "contrast/accuracy", "i_nce", "uniformity"} <= set(moco)
    supervised = run_trial(config(measures, method="supervised", **one_epoch), data_root=tmp_path, device="cpu")
    assert "i_nce" not in supervised and {"uniformity", "tolerance", "alignment"} <= set(supervised)


@pytest.mark.parametrize(("measures", "path"), [({"knn": {"targets": ["colour"]}}, "eval.knn.targets"),
                                                ({"geometry": {"target": "colour"}}, "eval.geometry.target")])
def test_an_unknown_target_names_its_key(measures, path):
    with pytest.raises(ValidationError) as error:
        config(measures)
    assert "'colour' is not a target" in str(error.value)
    assert any(e.get("ctx", {}).get("path") == path for e in error.value.errors())


class _Tune:
    def __init__(self) -> None:
        self.reports = []

    def report(self, metrics):
        self.reports.append(metrics)


def test_the_trials_files_become_its_runs_artifacts(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client: MlflowClient = open_store(uri)
    experiment = client.create_experiment("tiny")
    parent = client.create_run(experiment).info.run_id
    trial = config({"similarities": {"examples": 16}}, train={"batch_size": 64, "epochs": 1})
    request = {"hash": "abc", "name": "t", "config": trial.model_dump(mode="json"), "tags": {"trial_hash": "abc"},
               "tracking_uri": uri, "experiment_id": experiment, "parent_run_id": parent,
               "data_root": str(tmp_path / "data"), "cpus": 1}
    monkeypatch.setattr(tune_adapter, "tune", _Tune())
    tune_adapter.trainable({"request": request})
    (run,) = client.search_runs([experiment], "tags.trial_hash = 'abc'")
    assert run.info.status == "FINISHED"
    assert SIMILARITIES_FILE in {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    local = client.download_artifacts(run.info.run_id, SIMILARITIES_FILE, str(tmp_path))
    assert np.load(local)["negatives"].shape == (16, 10)
