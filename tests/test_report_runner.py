"""The report from the orchestrator's side: a tiny study whose trials are already in a temporary
MLflow store (logged by hand, nothing trains), reported and logged on the parent run."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from conftest import tiny_study
from mlflow import MlflowClient
from rich.console import Console

from orchestrator.expansion import expand
from orchestrator.runner import run_study
from orchestrator.spec import load_study
from orchestrator.study_report import report_study
from orchestrator.tracking import open_store

REPORT = {
    "table": {"rows": ["variant", "target"], "columns": "data.second_size", "metric": "linear_acc"},
    "plots": [{"x": "data.second_size", "y": "linear_acc", "hue": "variant", "facet": "target"},
              {"x_metric": "train/loss", "y": "linear_acc", "hue": "variant"}],
    "labels": {"t02": "SimCLR τ=0.2", "data.second_size": "size of the 2nd digit (px)"},
    "chance": {"linear_acc": 10},
}
FINDINGS = [{"claim": "τ=0.2 reads the first digit better than τ=0.5",
             "check": {"better": "t02", "than": "t05", "target": "first_digit"}}]


@pytest.fixture
def study(write_study):
    # smoke: one size, one seed, two variants → two trials
    return load_study(write_study(tiny_study(report=REPORT, findings=FINDINGS)), scale="smoke")


def store_with(study, tmp_path, statuses: dict[str, str]):
    """A store holding one child run per trial of ``study`` (FINISHED unless ``statuses`` says otherwise)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = open_store(uri)  # its experiments keep their artifacts beside the store, not in the project
    experiment = client.create_experiment(study.name)
    runs = {}
    for accuracy, trial in enumerate(expand(study)):
        run = client.create_run(experiment, tags={"trial_hash": trial.hash}).info.run_id
        status = statuses.get(trial.variant, "FINISHED")
        if status == "FINISHED":
            client.log_metric(run, "linear_acc/first_digit", 60.0 - 10 * accuracy)
            client.log_metric(run, "linear_acc/second_digit", 70.0)
            client.log_metric(run, "train/loss", 1.0 + accuracy)
        if status != "RUNNING":
            client.set_terminated(run, status)
        runs[trial.variant] = run
    return uri, experiment, runs


class Links(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.links, self.images, self.cells = [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "td" and "cell" in (attrs.get("class") or ""):
            self.cells.append(attrs["class"].split()[1])


def test_report_study_shows_running_cells_and_links_runs(study, tmp_path):
    uri, experiment, runs = store_with(study, tmp_path, {"t05": "RUNNING"})
    report = report_study(study, uri, tmp_path / "reports")
    table = report.table.set_index(["variant", "target"])
    assert table.loc[("t02", "first_digit"), "status"] == "finished"
    assert table.loc[("t05", "first_digit"), "status"] == "running"
    assert report.verdicts[0].status == "not enough runs"
    page = (tmp_path / "reports" / "tiny" / "smoke" / "index.html").read_text()
    parsed = Links(page)
    assert parsed.cells == ["finished", "finished", "running", "running"]
    assert f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{runs['t02']}" in parsed.links
    assert f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{runs['t05']}" in parsed.links
    assert len(parsed.images) == 2 and all(src.startswith("data:image/png;base64,") for src in parsed.images)
    assert "SimCLR τ=0.2" in page and "size of the 2nd digit (px)" in page
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "tiny/smoke/index.html" in Links(index).links


def test_run_logs_the_summary_as_the_parent_runs_description(study, tmp_path):
    uri, _, _ = store_with(study, tmp_path, {})  # every trial finished: nothing to run
    summary = run_study(study, tracking_uri=uri, reports_root=tmp_path / "reports", data_root=tmp_path / "data",
                        console=Console(width=120, record=True))
    assert summary.ran == 0
    parent = MlflowClient(uri).get_run(summary.parent_run_id)
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("**tiny @ smoke** reproduces: nothing: a test study")
    assert "- **reproduced**: τ=0.2 reads the first digit better than τ=0.5." in note
    assert "| variant | target | 16 |" in note
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(summary.parent_run_id, "report")}
    assert {"report/index.html", "report/report.md", "report/table.csv"} <= artifacts
