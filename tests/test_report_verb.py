"""``python -m orchestrator report``: rebuild from the runs in a temporary store (logged by hand, nothing
trains) and log the report to the study's latest parent run; ``report --all`` for every study file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import tiny_study
from mlflow import MlflowClient

from dashboards.publish import ui_markdown
from orchestrator.cli import main
from orchestrator.expansion import expand
from orchestrator.spec import load_study

FINDINGS = [{"claim": "τ=0.2 reads the first digit better than τ=0.5",
             "check": {"better": "t02", "than": "t05", "target": "first_digit"}}]

REPORT = {"table": {"rows": ["variant", "target"], "columns": "data.second_size", "metric": "linear_acc"},
          "plots": [{"x": "data.second_size", "y": "linear_acc", "hue": "variant", "facet": "target"}]}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Study files under ``studies/`` (tiny, with runs at smoke; quiet, without runs; broken) and a store
    with three parent runs of tiny: smoke (older), smoke (newer, holding the trials), small (newest)."""
    root = tmp_path_factory.mktemp("verb")
    studies = root / "studies"
    (studies / "more").mkdir(parents=True)
    tiny = studies / "tiny.yaml"
    tiny.write_text(yaml.safe_dump(tiny_study(findings=FINDINGS, report=REPORT), sort_keys=False))
    (studies / "more" / "quiet.yaml").write_text(yaml.safe_dump(tiny_study(study="quiet"), sort_keys=False))
    (studies / "more" / "broken.yaml").write_text(yaml.safe_dump(tiny_study(study="broken", sweeep={})))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("tiny", artifact_location=str(root / "artifacts"))
    parents = {}
    for name, scale, start in (("older", "smoke", 1000), ("newer", "smoke", 2000), ("small", "small", 3000)):
        parents[name] = client.create_run(experiment, start_time=start, run_name=f"tiny@{scale}",
                                          tags={"study": "tiny", "scale": scale}).info.run_id
        client.set_terminated(parents[name], "FINISHED", end_time=start + 500)
    for accuracy, trial in enumerate(expand(load_study(tiny, scale="smoke"))):
        tags = {"mlflow.parentRunId": parents["newer"], "study": "tiny", "scale": "smoke",
                "trial_hash": trial.hash, **{k: str(v) for k, v in trial.labels().items()}}
        run = client.create_run(experiment, start_time=2100, tags=tags).info.run_id
        client.log_metric(run, "linear_acc/first_digit", 60.0 - 10 * accuracy)
        client.log_metric(run, "linear_acc/second_digit", 70.0)
        client.set_terminated(run, "FINISHED")
    return root, uri, parents


def artifacts(uri: str, run_id: str) -> set[str]:
    return {a.path for a in MlflowClient(uri).list_artifacts(run_id, "report")}


def test_report_logs_to_the_latest_parent_run_of_the_scale_it_has_runs_of(store, capsys):
    root, uri, parents = store
    reports = root / "one"
    assert main(["report", str(root / "studies" / "tiny.yaml"), "--tracking-uri", uri, "--reports", str(reports)]) == 0
    out = capsys.readouterr().out
    assert f"logged to parent run {parents['newer']}" in out and "reproduced" in out
    assert (reports / "tiny" / "smoke" / "index.html").is_file()
    assert not (reports / "tiny" / "paper").exists(), "no runs at paper: without --scale it is not reported"
    assert {"report/index.html", "report/report.md", "report/table.csv"} <= artifacts(uri, parents["newer"])
    note = MlflowClient(uri).get_run(parents["newer"]).data.tags["mlflow.note.content"]
    assert note.startswith("**tiny @ smoke** reproduces:") and "- **reproduced**: τ=0.2 reads" in note
    assert artifacts(uri, parents["older"]) == set() and artifacts(uri, parents["small"]) == set()
    assert MlflowClient(uri).get_run(parents["newer"]).info.status == "FINISHED", "the status is left alone"
    # MLflow's markdown viewer shows only absolute image links: the logged report.md points at the UI's
    # artifact route (mlflow ui's default address for a local store); the one on disk stays relative.
    logged = Path(MlflowClient(uri).download_artifacts(parents["newer"], "report/report.md", str(root))).read_text()
    local = (reports / "tiny" / "smoke" / "report.md").read_text()
    plot = "0_linear_acc_vs_data_second_size"
    assert f"![{plot}]({plot}.png)" in local
    assert (f"![{plot}](http://127.0.0.1:5000/get-artifact?path=report%2F{plot}.png&run_uuid={parents['newer']})"
            in logged)
    assert logged.replace(f"http://127.0.0.1:5000/get-artifact?path=report%2F{plot}.png&run_uuid={parents['newer']}",
                          f"{plot}.png") == local, "only the image links differ"


def test_ui_markdown_links_images_through_the_tracking_servers_artifact_route():
    text = "# r\n\n![a b](0_x.png)\n![c](https://elsewhere.example/c.png) [d](d.png)\n"
    assert ui_markdown(text, "RUN", "https://mlflow.example/prefix") == (
        "# r\n\n![a b](https://mlflow.example/prefix/get-artifact?path=report%2F0_x.png&run_uuid=RUN)\n"
        "![c](https://elsewhere.example/c.png) [d](d.png)\n")


def test_report_at_a_scale_without_runs_says_nothing_is_logged(store, capsys):
    root, uri, _ = store
    reports = root / "two"
    args = ["report", str(root / "studies" / "tiny.yaml"), "--scale", "paper", "--tracking-uri", uri,
            "--reports", str(reports)]
    assert main(args) == 0
    assert "no parent run of tiny at paper" in capsys.readouterr().out
    assert "not run" in (reports / "tiny" / "paper" / "report.md").read_text()


def test_report_all_rebuilds_every_study_with_runs_and_the_index(store, capsys):
    root, uri, _ = store
    reports = root / "all"
    args = ["report", "--all", "--studies", str(root / "studies"), "--tracking-uri", uri, "--reports", str(reports)]
    assert main(args) == 2, "the broken study file is an error; the others are still reported"
    captured = capsys.readouterr()
    assert "broken.yaml" in captured.err and "sweeep" in captured.err
    assert "tiny @ smoke: 2 of 2 trials finished, 1 of 1 findings reproduced" in captured.out
    assert sorted(p.relative_to(reports).as_posix() for p in reports.glob("*/*/index.html")) == [
        "tiny/smoke/index.html"], "quiet has no runs: not reported"
    assert "tiny/smoke/index.html" in (reports / "index.html").read_text()
    assert main([*args, "--scale", "small"]) == 2  # tiny has a parent run at small but no trial runs
    assert not (reports / "tiny" / "small").exists()


@pytest.mark.parametrize("args, message", [
    (["report"], "a study file or --all"),
    (["report", "x.yaml", "--all"], "a study file or --all"),
    (["report", "--all", "--set", "train.epochs=1"], "not --all"),
])
def test_report_arguments(args, message, capsys, tmp_path):
    assert main([*args, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]) == 2
    assert message in capsys.readouterr().err
