"""Histograms of the saved similarity distributions: runs logged by hand in a temporary MLflow store,
each with a ``similarities.npz`` made here; the bars are checked against numpy.histogram."""

from __future__ import annotations

import zlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from conftest import tiny_study
from matplotlib.patches import StepPatch
from mlflow import MlflowClient
from pydantic import ValidationError

import dashboards.plots as plots
from dashboards.histograms import read_similarities
from dashboards.report import build_report
from dashboards.runs import trial_runs
from dashboards.spec import HistogramSpec, ReportSpec
from orchestrator.errors import StudyError
from orchestrator.spec import load_study

# variant simple at τ 0.1 and 0.5 (two seeds each); variant hard at τ 0.1 only, its one run still RUNNING.
CELLS = pd.DataFrame(
    [{"variant": "simple", "loss.temperature": t, "seed": seed, "trial_hash": f"simple-{t}-{seed}"}
     for t in (0.1, 0.5) for seed in (0, 1)]
    + [{"variant": "hard", "loss.temperature": 0.1, "seed": 0, "trial_hash": "hard-0.1-0"}]
)
N = 50


def arrays(trial_hash: str) -> tuple[np.ndarray, np.ndarray]:
    """Made-up distributions, different for every trial: positives high, negatives lower."""
    rng = np.random.default_rng(zlib.crc32(trial_hash.encode()))
    positive = rng.uniform(0.2, 1.0, N).astype(np.float32)
    negatives = rng.uniform(-0.4, 0.7, (N, 10)).astype(np.float32)
    return positive, negatives


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module (a new SQLite store takes seconds to migrate)."""
    tmp_path = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("s", artifact_location=str(tmp_path / "artifacts"))
    saved = {}
    for cell in CELLS.itertuples():
        run = client.create_run(experiment, tags={"trial_hash": cell.trial_hash}).info.run_id
        positive, negatives = arrays(cell.trial_hash)
        if cell.trial_hash == "simple-0.5-1":
            positive[0] = 1.0000001  # float noise past the range: counted in the last bin, not dropped
        if cell.variant == "simple":
            folder = tmp_path / "upload" / cell.trial_hash
            folder.mkdir(parents=True)
            np.savez(folder / "similarities.npz", positive=positive, negatives=negatives)
            client.log_artifact(run, str(folder / "similarities.npz"))
            client.set_terminated(run, "FINISHED")
            saved[cell.trial_hash] = (positive, negatives)
    return uri, saved


@pytest.fixture
def figures(monkeypatch):
    kept, close = [], plt.close
    monkeypatch.setattr(plots.plt, "close", kept.append)
    yield kept
    for figure in list(kept):
        close(figure)


def build(tmp_path, uri, spec: HistogramSpec):
    return build_report(study="s", scale="small", reproduces="r", cells=CELLS, runs=trial_runs(uri, "s"),
                        targets=[], target_metrics=set(), spec=ReportSpec(histograms=spec), reference=None,
                        findings=[], folder=tmp_path / "report", tracking_uri=uri)


def test_histograms_pool_the_seeds_of_each_panel_and_match_numpy(tmp_path, store, figures):
    uri, saved = store
    spec = HistogramSpec(by="loss.temperature", rows="variant", bins=20)
    report = build(tmp_path, uri, spec)
    (path,) = report.plots
    assert path.name == "0_similarities_by_loss_temperature.png" and path.read_bytes()[:4] == b"\x89PNG"
    figure = figures[0]
    axes = np.array(figure.axes).reshape(2, 2)  # rows: simple, hard; columns: τ 0.1, 0.5
    edges = np.linspace(-1, 1, 21)
    for column, temperature in enumerate((0.1, 0.5)):
        axis = axes[0, column]
        positive = np.concatenate([saved[f"simple-{temperature}-{seed}"][0] for seed in (0, 1)])
        negatives = np.concatenate([saved[f"simple-{temperature}-{seed}"][1].ravel() for seed in (0, 1)])
        positive = np.minimum(positive, 1.0)  # the value past 1 sits in the last bin
        stairs = [p for p in axis.patches if isinstance(p, StepPatch)]
        assert len(stairs) == 2
        for patch, values, count in zip(stairs, (positive, negatives), (2 * N, 2 * N * 10), strict=True):
            heights, bin_edges, _ = patch.get_data()
            expected, _ = np.histogram(values, edges)
            assert expected.sum() == count, "no value is dropped"
            np.testing.assert_allclose(bin_edges, edges)
            np.testing.assert_allclose(heights, expected / count)
        labels = [t.get_text() for t in axis.get_legend().get_texts()]
        assert labels == [f"positive (mean {positive.mean():.2f})", f"top-10 negatives (mean {negatives.mean():.2f})"]
        assert axis.get_title() == f"simple, loss.temperature: {temperature} (runs: 2)"
    hard = axes[1, 0]
    assert not [p for p in hard.patches if isinstance(p, StepPatch)], "a running trial has no distributions"
    assert "0 of 1 trials finished" in hard.texts[0].get_text()
    assert not axes[1, 1].axison, "hard has no τ=0.5 cell: a blank panel"
    assert axes[0, 0].get_xlabel() == "" and axes[1, 0].get_xlabel() == "cosine similarity"
    assert axes[0, 0].get_ylabel() == "share of pairs"
    page = (tmp_path / "report" / "index.html").read_text()
    assert "0_similarities_by_loss_temperature" in page and "![0_similarities_by_loss_temperature]" in (
        tmp_path / "report" / "report.md").read_text()


def test_histograms_where_keeps_a_slice_and_labels_name_the_panels(tmp_path, store, figures):
    uri, saved = store
    spec = HistogramSpec(by="seed", where={"loss.temperature": 0.5, "variant": "simple"}, bins=10, range=(0, 1))
    build_report(study="s", scale="small", reproduces="r", cells=CELLS, runs=trial_runs(uri, "s"), targets=[],
                 target_metrics=set(), spec=ReportSpec(histograms=spec, labels={"seed": "seed of the run"}),
                 reference=None, findings=[], folder=tmp_path / "r", tracking_uri=uri)
    axes = figures[0].axes
    assert [a.get_title() for a in axes] == ["seed of the run: 0 (runs: 1)", "seed of the run: 1 (runs: 1)"]
    heights = [p.get_data().values for p in axes[0].patches if isinstance(p, StepPatch)][1]
    negatives = saved["simple-0.5-0"][1].ravel()
    # [0, 1] range: negatives below 0 are counted in the first bin
    expected, _ = np.histogram(np.clip(negatives, 0, 1), np.linspace(0, 1, 11))
    assert expected[0] >= (negatives < 0).sum() > 0
    np.testing.assert_allclose(heights, expected / negatives.size)


def test_a_study_without_a_store_draws_empty_panels(tmp_path, store, figures):
    uri, _ = store
    report = build_report(study="s", scale="small", reproduces="r", cells=CELLS, runs=trial_runs(uri, "s"),
                          targets=[], target_metrics=set(), spec=ReportSpec(histograms=HistogramSpec(by="variant")),
                          reference=None, findings=[], folder=tmp_path / "r", tracking_uri=None)
    assert report.plots and all("none saved" in a.texts[0].get_text() for a in figures[0].axes)


def test_read_similarities_checks_the_arrays(tmp_path):
    np.savez(tmp_path / "bad.npz", positive=np.zeros(3), negatives=np.zeros((4, 10)))
    with pytest.raises(ValueError, match="N = 3"):
        read_similarities(tmp_path / "bad.npz")
    np.savez(tmp_path / "missing.npz", positive=np.zeros(3))
    with pytest.raises(ValueError, match="needs arrays"):
        read_similarities(tmp_path / "missing.npz")


def test_histogram_spec_is_validated(write_study):
    with pytest.raises(ValidationError, match="low < high"):
        HistogramSpec(by="variant", range=(1, -1))
    with pytest.raises(ValidationError, match="same column"):
        HistogramSpec(by="variant", rows="variant")
    with pytest.raises(ValidationError, match="bins"):
        ReportSpec.model_validate({"histograms": {"by": "variant", "bins": 1}})
    names = {"variant", "seed", "loss.temperature"}
    bad = ReportSpec(histograms=HistogramSpec(by="temperature", rows="seed", where={"size": 1}))
    assert dict(bad.unknown_names(names, set())) == {
        "report.histograms.by": "'temperature' is not a result column",
        "report.histograms.where.size": "'size' is not a result column",
    }
    report = {"table": {"rows": ["variant"], "metric": "linear_acc"},
              "histograms": {"by": "data.second_size", "rows": "variant"}}
    assert load_study(write_study(tiny_study(report=report))).spec.report.histograms.by == "data.second_size"
    report["histograms"] = {"by": "loss.temperature"}  # not swept in the tiny study
    with pytest.raises(StudyError, match=r"report\.histograms\.by"):
        load_study(write_study(tiny_study(report=report)))

