"""Report tables with run statuses, labels and chance levels, error bars, metric-vs-metric plots,
the HTML pages and the parent run's summary: hand-made frames, numbers derived by hand."""

from __future__ import annotations

import base64
import json
import math
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from pydantic import ValidationError

import dashboards.plots as plots
from dashboards.claims import Finding
from dashboards.findings import NOT_ENOUGH, NOT_REPRODUCED, REPRODUCED
from dashboards.html import DEFAULT_UI, ui_base
from dashboards.report import build_report, leading_comments
from dashboards.runs import finished_trials, metric_results, trial_runs
from dashboards.spec import PlotSpec, Reference, ReportSpec, TableSpec
from dashboards.tables import display_table, markdown, paper_table

# Three seeds of simclr and random at sizes 20 and 80; what happened to each run is set per test.
CELLS = pd.DataFrame([
    {"variant": v, "size": s, "seed": seed, "trial_hash": f"{v}-{s}-{seed}"}
    for v in ("simclr", "random") for s in (20, 80) for seed in (0, 1, 2)
])
REFERENCE = Reference(source="test", metric="linear_acc", columns=[20, 80], rows=[
    {"variant": "simclr", "values": [45.0, 30.0]}, {"variant": "random", "values": [10.0, None]},
])
TABLE = TableSpec(rows=["variant"], columns="size", metric="linear_acc")


def runs_with(statuses: dict[str, str]) -> pd.DataFrame:
    """linear_acc/first = 50 − size/2 + seed (random: 10 + seed); the runs not named finished; each with
    its run id ``r-<hash>`` in experiment 7. Runs absent from ``statuses`` as ``"-"`` were never started."""
    rows = []
    for cell in CELLS.itertuples():
        status = statuses.get(cell.trial_hash, "FINISHED")
        if status == "-":
            continue
        value = 50 - cell.size / 2 + cell.seed if cell.variant == "simclr" else 10.0 + cell.seed
        rows.append({"trial_hash": cell.trial_hash, "run_id": f"r-{cell.trial_hash}", "experiment_id": "7",
                     "status": status, "linear_acc/first": value if status == "FINISHED" else math.nan,
                     "i_nce/first": 2.0 * cell.seed + (cell.size == 80)})
    return pd.DataFrame(rows).set_index("trial_hash")


# random @ 20: one seed running, the others never started; random @ 80: all failed;
# simclr @ 80: seed 2 running (partial). simclr @ 20 finished.
MIXED = {"random-20-0": "RUNNING", "random-20-1": "-", "random-20-2": "-",
         "random-80-0": "FAILED", "random-80-1": "FAILED", "random-80-2": "KILLED", "simclr-80-2": "RUNNING"}


def mixed_table() -> pd.DataFrame:
    runs = runs_with(MIXED)
    results = metric_results(CELLS, runs, "linear_acc", ["first"])
    return paper_table(results, TABLE, REFERENCE, runs["status"]).set_index(["variant", "size"])


# tables ------------------------------------------------------------------------------------------

def test_table_counts_n_and_tells_running_failed_and_missing_cells():
    table = mixed_table()
    done = table.loc[("simclr", 20)]  # seeds 40, 41, 42
    assert (done.ours, done.runs, done.of, done.status) == (41.0, 3, 3, "finished")
    assert done["std"] == pytest.approx(1.0) and done.paper == 45.0 and done["diff"] == pytest.approx(-4.0)
    partial = table.loc[("simclr", 80)]  # seeds 10, 11 finished; 12 running
    assert (partial.ours, partial.runs, partial.running, partial.status) == (10.5, 2, 1, "partial")
    assert partial["diff"] == pytest.approx(10.5 - 30.0)
    running = table.loc[("random", 20)]
    assert (running.runs, running.running, running.status) == (0, 1, "running") and math.isnan(running["diff"])
    failed = table.loc[("random", 80)]
    assert (failed.failed, failed.interrupted, failed.status) == (2, 1, "failed")
    assert math.isnan(failed.paper), "the paper gives none"


def test_table_without_statuses_calls_unfinished_cells_missing():
    results = metric_results(CELLS, runs_with({}).drop(index=["random-80-0", "random-80-1", "random-80-2"]),
                             "linear_acc", ["first"])
    table = paper_table(results, TABLE, REFERENCE).set_index(["variant", "size"])
    assert table.loc[("random", 80), "status"] == "missing" and table.loc[("random", 20), "status"] == "finished"


def test_display_cells_say_n_paper_difference_and_status():
    runs = runs_with(MIXED)
    table = paper_table(metric_results(CELLS, runs, "linear_acc", ["first"]), TABLE, REFERENCE, runs["status"])
    shown = display_table(table, TABLE, {"simclr": "SimCLR τ=0.2", "variant": "method"})
    assert shown.loc["SimCLR τ=0.2", 20] == "41.0 ± 1.0 n=3 (45.0, -4.0)"
    assert shown.loc["SimCLR τ=0.2", 80] == "10.5 ± 0.7 n=2 (1 running) (30.0, -19.5)"
    assert shown.loc["random", 20] == "running (10.0)"
    assert shown.loc["random", 80] == "failed (—)"
    assert markdown(shown).splitlines()[0] == "| method | 20 | 80 |"


def test_trial_runs_reads_every_status_and_the_latest_run_decides(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("s")

    def run(trial_hash: str, start: int, status: str, accuracy: float | None = None, took: int = 10) -> str:
        run_id = client.create_run(experiment, start_time=start, tags={"trial_hash": trial_hash}).info.run_id
        if accuracy is not None:
            client.log_metric(run_id, "linear_acc/first", accuracy)
        if status != "RUNNING":
            client.set_terminated(run_id, status, end_time=start + took)
        return run_id

    run("a", 1000, "FINISHED", 50.0)
    newer = run("a", 2000, "RUNNING")  # a re-run of a finished trial: the latest run decides
    run("b", 1000, "FAILED")
    finished_b = run("b", 3000, "FINISHED", 60.0)
    run("c", 1500, "KILLED")
    run("d", 1000, "FINISHED", 70.0, took=9000)  # started first, ended last: the later start decides
    run("d", 2000, "FAILED")
    client.create_run(experiment, start_time=5000)  # the parent: no trial hash, not a trial
    runs = trial_runs(uri, "s")
    assert runs["status"].to_dict() == {"a": "RUNNING", "b": "FINISHED", "c": "KILLED", "d": "FAILED"}
    assert runs.loc["a", "run_id"] == newer and runs.loc["b", "run_id"] == finished_b
    assert set(runs["experiment_id"]) == {experiment}
    assert finished_trials(uri, "s")["linear_acc/first"].to_dict() == {"a": 50.0, "b": 60.0, "d": 70.0}
    assert trial_runs(uri, "no such experiment").empty


# labels and chance ---------------------------------------------------------------------------------

def test_report_spec_labels_chance_and_their_names():
    spec = ReportSpec(labels={"simclr": "SimCLR", "size": "size (px)"},
                      chance={"linear_acc": {"first": 10}, "online_acc": 12.5})
    assert spec.label("simclr") == "SimCLR" and spec.label(20) == "20"
    assert spec.chance_level("linear_acc", "first") == 10.0 and spec.chance_level("linear_acc") is None
    assert spec.chance_level("online_acc", "anything") == 12.5 and spec.chance_level("train/loss") is None
    assert spec.unknown_names({"simclr", "size", "variant"}, {"linear_acc", "online_acc"}, {"first"}) == []
    bad = ReportSpec(labels={"simclr_t2": "x"}, chance={"acc": 10, "linear_acc": {"third": 10}},
                     plots=[PlotSpec(x_metric="i_nce", y="linear_acc", annotate="bits")])
    problems = dict(bad.unknown_names({"simclr", "size"}, {"linear_acc"}, {"first"}))
    assert set(problems) == {"report.labels.simclr_t2", "report.chance.acc", "report.chance.linear_acc.third",
                             "report.plots[0].x_metric", "report.plots[0].annotate"}
    with pytest.raises(ValidationError, match="exactly one of x"):
        PlotSpec(x="size", x_metric="i_nce", y="linear_acc")
    with pytest.raises(ValidationError, match="exactly one of x"):
        PlotSpec(y="linear_acc")
    with pytest.raises(ValidationError, match="annotate labels the points"):
        PlotSpec(x="size", y="linear_acc", annotate="size")


# plots -----------------------------------------------------------------------------------------------

@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions draw, kept open to inspect."""
    kept, close = [], plt.close
    monkeypatch.setattr(plots.plt, "close", kept.append)
    yield kept
    for figure in list(kept):
        close(figure)


def test_curves_have_error_bars_paper_dashes_labels_and_chance(tmp_path, figures):
    results = metric_results(CELLS, runs_with({}), "linear_acc", ["first"])
    paper = pd.DataFrame([{"variant": "simclr", "target": "first", "size": size, "paper": value}
                          for size, value in ((20, 45.0), (80, 30.0))])
    report = ReportSpec(labels={"simclr": "SimCLR τ=0.2", "size": "size of the 2nd digit (px)", "target": "digit",
                                "first": "first digit"}, chance={"linear_acc": 10})
    spec = PlotSpec(x="size", y="linear_acc", hue="variant", facet="target")
    plots.plot_curves(results, spec, tmp_path / "p.png", paper, report)
    (axis,) = figures[0].axes
    bars = [c for c in axis.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    simclr = bars[0]
    line = simclr.lines[0]
    assert list(line.get_ydata()) == [41.0, 11.0]
    segments = simclr.lines[2][0].get_segments()  # the vertical bar at size 20: mean ± std (1.0)
    assert segments[0][:, 1].tolist() == pytest.approx([40.0, 42.0])
    dashed = [ln for ln in axis.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [45.0, 30.0]
    assert dashed[0].get_color() == line.get_color()
    chance = [ln for ln in axis.get_lines() if ln.get_linestyle() == ":"]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [10, 10] and chance[0].get_color() == "grey"
    legend = [t.get_text() for t in axis.get_legend().get_texts()]
    assert sorted(legend) == sorted(["chance", "SimCLR τ=0.2", "random"])
    assert axis.get_title() == "digit: first digit" and axis.get_xlabel() == "size of the 2nd digit (px)"


def test_no_chance_line_where_the_metric_has_none(tmp_path, figures):
    results = metric_results(CELLS, runs_with({}), "linear_acc", ["first"])
    plots.plot_curves(results, PlotSpec(x="size", y="linear_acc"), tmp_path / "p.png", None,
                      ReportSpec(chance={"online_acc": 10}))
    assert not [ln for ln in figures[0].axes[0].get_lines() if ln.get_linestyle() == ":"]


def test_a_metric_against_another_one_point_per_trial_labelled_with_the_swept_value(tmp_path, figures):
    report = build_report(
        study="s", scale="small", reproduces="r", cells=CELLS, runs=runs_with({"random-80-2": "FAILED"}),
        targets=["first"], target_metrics={"linear_acc", "i_nce"},
        spec=ReportSpec(plots=[PlotSpec(x_metric="i_nce", y="linear_acc", hue="variant")],
                        labels={"i_nce": "I_NCE (nats)"}),
        reference=None, findings=[], folder=tmp_path,
    )
    assert report.plots[0].name == "0_linear_acc_vs_i_nce.png"
    (axis,) = figures[0].axes
    simclr, random = [ln for ln in axis.get_lines() if ln.get_marker() == "o"]
    # one point per finished trial: x is i_nce (2·seed, +1 at size 80), y the accuracy
    points = sorted(zip(simclr.get_xdata(), simclr.get_ydata(), strict=True))
    assert points == [(0, 40), (1, 10), (2, 41), (3, 11), (4, 42), (5, 12)]
    assert len(random.get_xdata()) == 5, "the failed trial has no point"
    assert sorted(t.get_text() for t in axis.texts) == sorted(["20"] * 6 + ["80"] * 5)
    assert axis.get_xlabel() == "I_NCE (nats)"


def test_a_hue_without_points_has_no_legend_entry(figures):
    # CMM's accuracy plot: the position target has a localisation error, not an accuracy.
    results = pd.DataFrame([{"variant": "digit", "target": target, "value": value, "x_value": 5.0}
                            for target, value in (("digit", 70.0), ("background", 20.0), ("position", math.nan))])
    plots.against_figure(results, PlotSpec(x_metric="i_nce", y="linear_acc", hue="target", annotate="variant"))
    (axis,) = figures[0].axes
    assert [line.get_label() for line in axis.get_lines() if line.get_marker() == "o"] == ["digit", "background"]


# HTML ---------------------------------------------------------------------------------------------

class Page(HTMLParser):
    """What a reader sees: table cells (class, text, links), verdicts, images, every text."""

    def __init__(self, text: str):
        super().__init__()
        self.cells, self.verdicts, self.images, self.links, self.text = [], [], [], [], []
        self._cell = self._verdict = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "td" and "cell" in classes:
            self._cell = {"class": classes[1], "text": "", "links": []}
        if tag == "li" and classes:
            self._verdict = {"class": classes[0], "text": ""}
        if tag == "a":
            self.links.append(attrs["href"])
            if self._cell is not None:
                self._cell["links"].append(attrs["href"])
        if tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None
        if tag == "li" and self._verdict is not None:
            self.verdicts.append(self._verdict)
            self._verdict = None

    def handle_data(self, data):
        self.text.append(data)
        for open_ in (self._cell, self._verdict):
            if open_ is not None:
                open_["text"] += data


def page_report(tmp_path, study="s", tracking_uri="http://mlflow.example:5000/", statuses=None):
    findings = [
        Finding(claim="simclr falls", check={"variant": "simclr", "target": "first", "along": "size",
                                             "drop_at_least": 20}),
        Finding(claim="simclr falls a lot", check={"variant": "simclr", "target": "first", "along": "size",
                                                   "drop_at_least": 50}),
        Finding(claim="random stays", check={"variant": "random", "target": "first", "along": "size",
                                             "drop_at_most": 1}),
    ]
    spec = ReportSpec(table=TABLE, plots=[PlotSpec(x="size", y="linear_acc", hue="variant")],
                      labels={"simclr": "SimCLR τ=0.2", "size": "size of the 2nd digit (px)"},
                      chance={"linear_acc": 10})
    return build_report(
        study=study, scale="small", reproduces="Table 4: suppression", cells=CELLS,
        runs=runs_with(MIXED if statuses is None else statuses), targets=["first"],
        target_metrics={"linear_acc"}, spec=spec, reference=REFERENCE, findings=findings,
        folder=tmp_path / study / "small", description="What this is.\n\n  python -m orchestrator run x.yaml",
        tracking_uri=tracking_uri, reports_root=tmp_path,
    )


def test_study_page_has_verdicts_first_then_the_linked_table_and_embedded_plots(tmp_path):
    report = page_report(tmp_path)
    text = (tmp_path / "s" / "small" / "index.html").read_text()
    page = Page(text)
    assert [v["class"] for v in page.verdicts] == ["reproduced", "not-reproduced", "not-enough-runs"]
    assert [v["text"].split(" ")[0] for v in page.verdicts] == ["reproduced", "not", "not"]
    assert [v.status for v in report.verdicts] == [REPRODUCED, NOT_REPRODUCED, NOT_ENOUGH]
    assert text.index("Findings") < text.index("<table") < text.index("<img")
    assert "Table 4: suppression" in text and "What this is." in text and "<pre>python -m orchestrator" in text
    # cells in table order (simclr 20, 80; random 20, 80) with their status and run links
    assert [c["class"] for c in page.cells] == ["finished", "partial", "running", "failed"]
    base = "http://mlflow.example:5000/#/experiments/7/runs/"
    assert page.cells[0]["links"] == [f"{base}r-simclr-20-{seed}" for seed in range(3)]
    assert page.cells[2]["links"] == [f"{base}r-random-20-0"], "a running cell links to its run"
    assert "41.0 ± 1.0" in page.cells[0]["text"] and "n=3/3" in page.cells[0]["text"]
    assert "(45.0, -4.0)" in page.cells[0]["text"] and "running" in page.cells[2]["text"]
    assert "SimCLR τ=0.2" in page.text and "size of the 2nd digit (px)" in page.text
    assert "mlflow ui" not in text, "a tracking server's address is no guess"
    assert len(page.images) == 1
    for image in page.images:
        assert image["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_study_page_with_a_local_store_links_to_the_default_ui_and_says_so(tmp_path):
    assert ui_base("sqlite:////tmp/mlflow.db") == (DEFAULT_UI, True)
    assert ui_base("https://mlflow.example/") == ("https://mlflow.example", False)
    page_report(tmp_path, tracking_uri="sqlite:///mlflow.db")
    text = (tmp_path / "s" / "small" / "index.html").read_text()
    assert f"{DEFAULT_UI}/#/experiments/7/runs/r-simclr-20-0" in Page(text).links
    assert "mlflow ui" in text


def test_report_files_the_tidy_csv_with_status_and_markdown_with_findings_first(tmp_path):
    page_report(tmp_path)
    csv = pd.read_csv(tmp_path / "s" / "small" / "table.csv")
    assert list(csv.columns) == ["variant", "size", "ours", "std", "runs", "of", "running", "failed", "interrupted",
                                 "paper", "diff", "status"]
    assert csv["status"].tolist() == ["finished", "partial", "running", "failed"]
    md = (tmp_path / "s" / "small" / "report.md").read_text()
    assert md.index("## Findings") < md.index("## Table") < md.index("## Plots")
    assert "| variant | 20 | 80 |" in md and "SimCLR τ=0.2" in md


def test_reports_index_lists_every_study_with_counts_and_verdicts(tmp_path):
    page_report(tmp_path, study="alpha")
    page_report(tmp_path, study="beta", statuses={})
    (tmp_path / "empty" / "small").mkdir(parents=True)  # a folder without a report is not listed
    text = (tmp_path / "index.html").read_text()
    page = Page(text)
    assert page.links == ["alpha/small/index.html", "beta/small/index.html"]
    rows = text.split("<tbody>")[1].split("</tr>")
    # alpha: 12 trials, 5 finished (simclr 20 ×3, simclr 80 ×2), 2 running, 2 failed (KILLED is neither)
    assert "<td>12</td><td>5</td><td>2</td><td>2</td><td>1 of 3</td>" in rows[0]
    assert "<td>12</td><td>12</td><td>0</td><td>0</td><td>2 of 3</td>" in rows[1]
    assert json.loads((tmp_path / "beta" / "small" / "summary.json").read_text())["reproduced"] == 2


def test_summary_for_the_parent_run_says_what_every_verdict_is_and_holds_the_table(tmp_path):
    report = page_report(tmp_path)
    summary = report.summary()
    assert summary.startswith("**s @ small** reproduces: Table 4: suppression")
    assert "Findings: 1 of 3 reproduced" in summary
    for verdict in report.verdicts:
        assert f"- **{verdict.status}**: {verdict.claim}." in summary
    assert "| variant | 20 | 80 |" in summary and "running (10.0)" in summary
    short = report.summary(limit=300)
    assert len(short) <= 300 and short.endswith("report/index.html)\n")


def test_leading_comments_are_the_study_description(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("# First line.\n#\n#   command --x\n\nstudy: s\n# not this\n")
    assert leading_comments(path) == "First line.\n\n  command --x"
