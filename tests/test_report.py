"""Report builders: numbers derived by hand from small frames."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pydantic import ValidationError

from dashboards.claims import Finding
from dashboards.findings import NOT_ENOUGH, NOT_REPRODUCED, REPRODUCED, check_finding
from dashboards.plots import plot_curves
from dashboards.runs import metric_results
from dashboards.spec import PlotSpec, Reference, TableSpec
from dashboards.tables import display_table, markdown, paper_table, paper_values

CELLS = pd.DataFrame([
    {"variant": v, "size": s, "seed": seed, "trial_hash": f"{v}-{s}-{seed}"}
    for v in ("simclr", "random") for s in (20, 80) for seed in (0, 1)
])


def runs_frame() -> pd.DataFrame:
    """Accuracy of the first digit = 50 - size/2 + seed (random: 10 + seed); second = size."""
    rows = []
    for cell in CELLS.itertuples():
        first = 50 - cell.size / 2 + cell.seed if cell.variant == "simclr" else 10 + cell.seed
        rows.append({"trial_hash": cell.trial_hash, "linear_acc/first": first, "linear_acc/second": float(cell.size),
                     "train/loss": 1.0 + cell.seed})
    return pd.DataFrame(rows).set_index("trial_hash")


def test_metric_results_per_target_and_scalar():
    long = metric_results(CELLS, runs_frame(), "linear_acc", ["first", "second"])
    assert len(long) == 2 * len(CELLS)
    row = long[(long.trial_hash == "simclr-80-1") & (long.target == "first")]
    assert row.value.item() == 50 - 40 + 1
    scalar = metric_results(CELLS, runs_frame(), "train/loss")
    assert "target" not in scalar.columns and scalar.value.tolist()[:2] == [1.0, 2.0]
    assert metric_results(CELLS, runs_frame().iloc[0:0], "train/loss").value.isna().all()


def test_table_of_a_scalar_metric():
    spec = TableSpec(rows=["variant"], columns="size", metric="train/loss")
    table = paper_table(metric_results(CELLS, runs_frame(), "train/loss"), spec, None)
    assert table.set_index(["variant", "size"]).loc[("random", 80), "ours"] == 1.5  # seeds give 1 and 2


def test_unfinished_cells_are_nan_not_dropped():
    long = metric_results(CELLS, runs_frame().drop(index="random-20-0"), "linear_acc", ["first"])
    assert len(long) == len(CELLS)
    assert math.isnan(long[long.trial_hash == "random-20-0"].value.item())


def test_paper_table_mean_std_and_paper_values():
    reference = Reference(source="test", metric="linear_acc", columns=[20, 80], rows=[
        {"variant": "simclr", "target": "first", "values": [41.0, None]},
    ])
    spec = TableSpec(rows=["variant", "target"], columns="size", metric="linear_acc")
    table = paper_table(metric_results(CELLS, runs_frame(), "linear_acc", ["first", "second"]), spec, reference)
    cell = table[(table.variant == "simclr") & (table.target == "first") & (table["size"] == 20)].iloc[0]
    # seeds give 40 and 41: mean 40.5, sample std sqrt(((−0.5)² + 0.5²)/1) = 0.7071
    assert cell.ours == 40.5 and cell["std"] == pytest.approx(math.sqrt(0.5)) and cell.runs == 2
    assert cell.paper == 41.0
    other = table[(table.variant == "simclr") & (table.target == "first") & (table["size"] == 80)].iloc[0]
    assert math.isnan(other.paper), "a null paper value stays missing"
    shown = display_table(table, spec)
    assert shown.loc[("simclr", "first"), 20] == "40.5 ± 0.7 n=2 (41.0, -0.5)"
    assert shown.loc[("random", "second"), 80] == "80.0 ± 0.0 n=2 (—)"
    assert list(shown.index) == [("simclr", "first"), ("simclr", "second"), ("random", "first"), ("random", "second")]
    assert "| variant | target | 20 | 80 |" in markdown(shown)


def test_reference_rows_must_match_columns():
    with pytest.raises(ValidationError, match="one per column"):
        Reference(source="x", metric="m", columns=[1, 2], rows=[{"variant": "a", "values": [1.0]}])


def finding(**check) -> Finding:
    return Finding(claim="c", check={"along": "size", **check})


def test_findings_compare_the_ends_of_the_curve():
    results = lambda metric: metric_results(CELLS, runs_frame(), metric, ["first", "second"])  # noqa: E731
    # simclr first digit: mean 40.5 at size 20, 10.5 at size 80 → drop 30
    assert check_finding(finding(variant="simclr", target="first", drop_at_least=30), results).status == REPRODUCED
    verdict = check_finding(finding(variant="simclr", target="first", drop_at_least=31), results)
    assert verdict.status == NOT_REPRODUCED and "40.5" in verdict.detail and "10.5" in verdict.detail
    assert check_finding(finding(variant="random", target="first", drop_at_most=0), results).status == REPRODUCED
    assert check_finding(finding(variant="simclr", target="second", rise_at_least=60), results).status == REPRODUCED


def test_findings_can_compare_against_another_variant():
    results = lambda metric: metric_results(CELLS, runs_frame(), metric, ["first", "second"])  # noqa: E731
    # simclr − random on the first digit: 40.5 − 10.5 = 30 at size 20, 10.5 − 10.5 = 0 at size 80
    verdict = check_finding(finding(variant="simclr", versus="random", target="first", drop_at_least=30), results)
    assert verdict.status == REPRODUCED and "simclr − random: 30.0" in verdict.detail and "0.0 at 80" in verdict.detail
    with pytest.raises(ValidationError, match="give variant too"):
        finding(versus="random", drop_at_least=1)


def test_findings_need_both_ends():
    runs = runs_frame().drop(index=["simclr-80-0", "simclr-80-1"])
    results = lambda metric: metric_results(CELLS, runs, metric, ["first"])  # noqa: E731
    assert check_finding(finding(variant="simclr", target="first", drop_at_least=1), results).status == NOT_ENOUGH


def test_paper_values_line_up_only_with_their_own_key_and_metric():
    reference = Reference(source="t", metric="linear_acc", column_key="size", columns=[20, 80],
                          rows=[{"variant": "simclr", "values": [1.0, None]}])
    assert paper_values(reference, "linear_acc", "size", None)["size"].tolist() == [20, 80]
    assert paper_values(reference, "linear_acc", "seed", "size") is None
    assert paper_values(reference, "train/loss", "size", "size") is None


def test_paper_values_of_a_second_metric_come_from_its_own_rows():
    reference = Reference(source="t", metric="linear_acc", column_key="size", columns=[20, 80],
                          rows=[{"variant": "simclr", "values": [1.0, 2.0]},
                                {"variant": "simclr", "metric": "uniformity", "values": [3.5, None]}])
    paper = paper_values(reference, "uniformity", "size", None)
    assert paper["paper"].tolist()[0] == 3.5 and paper["paper"].isna().tolist() == [False, True]
    assert "metric" not in paper.columns
    assert paper_values(reference, "linear_acc", "size", None)["paper"].tolist() == [1.0, 2.0]


def test_plot_is_written_as_png(tmp_path):
    results = metric_results(CELLS, runs_frame(), "linear_acc", ["first", "second"])
    paper = pd.DataFrame([{"variant": "simclr", "target": "first", "size": 20, "paper": 41.0}])
    path = plot_curves(results, PlotSpec(x="size", y="linear_acc", hue="variant", facet="target"),
                       tmp_path / "curve.png", paper)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
