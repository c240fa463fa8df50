"""The findings language: each kind of claim on hand-made results, reproduced, not, and not yet run."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
import yaml
from conftest import tiny_study
from pydantic import ValidationError

from dashboards.claims import Check, Finding
from dashboards.findings import NOT_ENOUGH, NOT_REPRODUCED, REPRODUCED, Verdict, check_finding
from dashboards.report import build_report
from dashboards.spec import Reference, ReportSpec, TableSpec
from orchestrator.errors import StudyError
from orchestrator.spec import load_study

NAN = math.nan


def results_of(values: dict[tuple[str, object], list[float]], along: str = "bits", target: str | None = "first"):
    """``results(metric)`` over runs given as ``{(variant, point): [value of seed 0, seed 1, ...]}``."""
    rows = [
        {"variant": variant, **({"target": target} if target else {}), along: point, "seed": seed,
         "trial_hash": f"{variant}-{point}-{seed}", "value": value}
        for (variant, point), seeds in values.items() for seed, value in enumerate(seeds)
    ]
    frame = pd.DataFrame(rows)
    return lambda metric: frame


def judge(results, reference: Reference | None = None, table_columns: str | None = None, **check) -> Verdict:
    return check_finding(Finding(claim="c", check=check), results, reference, table_columns)


# monotone ---------------------------------------------------------------------------------------

FALLING = {("v", 1): [80.0, 82.0], ("v", 2): [70.0, 70.0], ("v", 3): [71.0, NAN], ("v", 4): [50.0, 50.0]}


def test_monotone_allows_each_step_the_slack():
    verdict = judge(results_of(FALLING), variant="v", along="bits", monotone="decreasing", slack=1)
    assert verdict.status == REPRODUCED
    # seeds averaged (81 at 1; 71 from the one finished seed at 3); the worst step is 2 → 3
    assert "1: 81.0, 2: 70.0, 3: 71.0, 4: 50.0" in verdict.detail
    assert "worst step 2→3: +1.0" in verdict.detail and "no step up by more than 1" in verdict.detail


def test_monotone_fails_a_step_beyond_the_slack_or_the_wrong_direction():
    verdict = judge(results_of(FALLING), variant="v", along="bits", monotone="decreasing", slack=0.5)
    assert verdict.status == NOT_REPRODUCED and "worst step 2→3: +1.0" in verdict.detail
    verdict = judge(results_of(FALLING), variant="v", along="bits", monotone="increasing")
    assert verdict.status == NOT_REPRODUCED and "worst step 3→4: -21.0" in verdict.detail


def test_monotone_needs_every_point():
    values = {**FALLING, ("v", 3): [NAN, NAN]}
    verdict = judge(results_of(values), variant="v", along="bits", monotone="decreasing", slack=5)
    assert verdict.status == NOT_ENOUGH and verdict.detail == "no finished run at bits=3"


def test_monotone_follows_the_difference_with_versus():
    values = {**FALLING, **{("u", p): [10.0 * p] for p in (1, 2, 3, 4)}}  # v − u: 71, 50, 41, 10
    verdict = judge(results_of(values), variant="v", versus="u", along="bits", monotone="decreasing")
    assert verdict.status == REPRODUCED and "linear_acc of v − u along bits: 1: 71.0" in verdict.detail


# order ------------------------------------------------------------------------------------------

TEMPERATURES = {
    ("t005", 5): [80.0, 82.0], ("t01", 5): [75.0], ("t02", 5): [70.0],
    ("t005", 10): [60.0], ("t01", 10): [55.0], ("t02", 10): [56.0],
    ("t005", 15): [30.0], ("t01", 15): [40.0], ("t02", 15): [50.0],
}
ORDER = ["t005", "t01", "t02"]


def test_order_at_the_listed_points_with_slack():
    verdict = judge(results_of(TEMPERATURES), target="first", order=ORDER, along="bits", at=[5, 10], slack=1)
    assert verdict.status == REPRODUCED
    assert "at bits=5: t005 81.0, t01 75.0, t02 70.0; at bits=10: t005 60.0, t01 55.0, t02 56.0" in verdict.detail
    assert "closest pair t01 − t02 at bits=10: -1.0" in verdict.detail and "needs each ≥ the next − 1" in verdict.detail


def test_order_fails_beyond_the_slack_and_at_every_point_by_default():
    verdict = judge(results_of(TEMPERATURES), order=ORDER, along="bits", at=[5, 10])
    assert verdict.status == NOT_REPRODUCED and "t01 − t02 at bits=10: -1.0" in verdict.detail
    verdict = judge(results_of(TEMPERATURES), order=ORDER, along="bits", slack=1)  # bits 15 is reversed
    assert verdict.status == NOT_REPRODUCED and "t005 − t01 at bits=15: -10.0" in verdict.detail


def test_order_needs_each_variant_at_each_point():
    values = {**TEMPERATURES, ("t01", 10): [NAN]}
    verdict = judge(results_of(values), order=ORDER, along="bits", at=[5, 10])
    assert verdict.status == NOT_ENOUGH and verdict.detail == "no finished run of t01 at bits=10"
    assert judge(results_of(values), order=ORDER, along="bits", at=[5]).status == REPRODUCED


def test_order_without_along_compares_means_over_shared_cells():
    values = {("a", 1): [50.0, 10.0], ("b", 1): [40.0, NAN]}  # only seed 0 is shared: 50 vs 40
    verdict = judge(results_of(values), order=["a", "b"])
    assert verdict.status == REPRODUCED
    assert verdict.detail.startswith("linear_acc over the 1 cell all finished: a 50.0, b 40.0; closest pair a − b over")
    assert judge(results_of({("a", 1): [50.0], ("b", 1): [NAN]}), order=["a", "b"]).status == NOT_ENOUGH


# first_below ------------------------------------------------------------------------------------

BREAKDOWN = {("v", bits): [value] for bits, value in zip((1, 2, 3, 4, 5), (90.0, 85.0, 60.0, 40.0, 30.0), strict=True)}


def test_first_below_lies_within_the_range():
    verdict = judge(results_of(BREAKDOWN), variant="v", along="bits", first_below=50, within=[3, 5])
    assert verdict.status == REPRODUCED
    assert "first below 50 at bits=4: 40.0 (after 60.0 at 3)" in verdict.detail and "in [3, 5]" in verdict.detail


def test_first_below_outside_the_range_or_never():
    verdict = judge(results_of(BREAKDOWN), variant="v", along="bits", first_below=50, within=[1, 3])
    assert verdict.status == NOT_REPRODUCED and "at bits=4" in verdict.detail
    verdict = judge(results_of(BREAKDOWN), variant="v", along="bits", first_below=20, within=[1, 5])
    assert verdict.status == NOT_REPRODUCED and "never falls below 20: lowest 30.0 at bits=5" in verdict.detail


def test_first_below_needs_the_points_up_to_the_crossing():
    values = {**BREAKDOWN, ("v", 2): [NAN]}
    verdict = judge(results_of(values), variant="v", along="bits", first_below=50, within=[3, 5])
    assert verdict.status == NOT_ENOUGH and verdict.detail.startswith("no finished run at bits=2")
    later = {**BREAKDOWN, ("v", 5): [NAN]}  # after the crossing: not needed
    assert judge(results_of(later), variant="v", along="bits", first_below=50, within=[3, 5]).status == REPRODUCED


# peak_inside ------------------------------------------------------------------------------------

SWEET_SPOT = {("v", lr): [value] for lr, value in zip((0.1, 0.3, 1.0, 3.0), (60.0, 70.0, 75.0, 65.0), strict=True)}


def test_peak_inside_and_above_both_ends():
    verdict = judge(results_of(SWEET_SPOT, along="lr"), variant="v", along="lr", peak_inside=5)
    assert verdict.status == REPRODUCED
    assert "peaks at lr=1.0: 75.0; ends 60.0 at 0.1, 65.0 at 3.0 (peak − higher end +10.0" in verdict.detail


def test_peak_too_low_or_at_an_end():
    assert judge(results_of(SWEET_SPOT, along="lr"), variant="v", along="lr", peak_inside=11).status == NOT_REPRODUCED
    rising = {**SWEET_SPOT, ("v", 3.0): [90.0]}
    verdict = judge(results_of(rising, along="lr"), variant="v", along="lr", peak_inside=0)
    assert verdict.status == NOT_REPRODUCED and "peaks at lr=3.0 (an end)" in verdict.detail


def test_peak_needs_every_point():
    values = {**SWEET_SPOT, ("v", 0.1): [NAN]}
    verdict = judge(results_of(values, along="lr"), variant="v", along="lr", peak_inside=1)
    assert verdict.status == NOT_ENOUGH and verdict.detail == "no finished run at lr=0.1"


# better -----------------------------------------------------------------------------------------

PAIR = {("simclr", 20): [60.0, 62.0], ("random", 20): [40.0, 40.0],
        ("simclr", 80): [50.0, 50.0], ("random", 80): [40.0, NAN]}


def test_better_at_one_point():
    verdict = judge(results_of(PAIR, along="size"), better="simclr", than="random", by=5, along="size", at=80)
    assert verdict.status == REPRODUCED
    assert verdict.detail == "linear_acc at size=80: simclr 50.0 vs random 40.0 (difference +10.0; needs ≥ 5)"
    verdict = judge(results_of(PAIR, along="size"), better="simclr", than="random", by=15, along="size", at=80)
    assert verdict.status == NOT_REPRODUCED


def test_better_on_average_along_or_over_shared_cells():
    verdict = judge(results_of(PAIR, along="size"), better="simclr", than="random", by=15, along="size")
    # simclr (61 + 50) / 2 = 55.5, random (40 + 40) / 2 = 40
    assert verdict.status == REPRODUCED and "mean over size=20, 80: simclr 55.5 vs random 40.0" in verdict.detail
    verdict = judge(results_of(PAIR, along="size"), better="simclr", than="random", by=18)
    # cells both finished: size 20 seeds 0, 1 and size 80 seed 0 → simclr 172/3 = 57.3, random 40
    assert verdict.status == NOT_REPRODUCED and "mean over the 3 cells both finished: simclr 57.3" in verdict.detail


def test_better_needs_both_variants_at_the_point():
    values = {**PAIR, ("random", 80): [NAN, NAN]}
    for at in ({"at": 80}, {}):
        verdict = judge(results_of(values, along="size"), better="simclr", than="random", along="size", **at)
        assert verdict.status == NOT_ENOUGH and verdict.detail == "no finished run of random at size=80"
    only = {("simclr", 20): [60.0], ("random", 20): [NAN]}
    verdict = judge(results_of(only, along="size"), better="simclr", than="random")
    assert verdict.status == NOT_ENOUGH and "no cell that both simclr and random have finished" in verdict.detail


# exceeds ----------------------------------------------------------------------------------------

H, Z = "transform_acc/rotation/h", "transform_acc/rotation/z"
# One run per (variant, epochs, seed); each run logs both metrics. The random network's values show
# that the variant selector picks the rows.
FROM_H = {("simclr", 0): [90.0, 92.0], ("simclr", 100): [66.0, 70.0], ("random", 0): [10.0], ("random", 100): [10.0]}
FROM_Z = {("simclr", 0): [88.0, 90.0], ("simclr", 100): [25.0, 27.0], ("random", 0): [99.0], ("random", 100): [99.0]}


def two_metrics(h: dict, z: dict, z_target: str | None = "first"):
    """``results(metric)`` for two metrics of the same runs (the same trial hashes)."""
    frames = {H: results_of(h, along="epochs")(H), Z: results_of(z, along="epochs", target=z_target)(Z)}
    return lambda metric: frames[metric]


def test_exceeds_at_one_point():
    runs = two_metrics(FROM_H, FROM_Z)
    verdict = judge(runs, metric=H, exceeds=Z, by=10, variant="simclr", along="epochs", at=100)
    # at 100: h (66 + 70) / 2 = 68, z (25 + 27) / 2 = 26
    assert verdict.status == REPRODUCED
    assert verdict.detail == f"{H} 68.0 vs {Z} 26.0 at epochs=100 (difference +42.0; needs ≥ 10)"
    verdict = judge(runs, metric=H, exceeds=Z, by=42.5, variant="simclr", along="epochs", at=100)
    assert verdict.status == NOT_REPRODUCED and "(difference +42.0; needs ≥ 42.5)" in verdict.detail
    # at the untrained point h − z = 91 − 89 = 2 only
    verdict = judge(runs, metric=H, exceeds=Z, by=10, variant="simclr", along="epochs", at=0)
    assert verdict.status == NOT_REPRODUCED and verdict.detail.startswith(f"{H} 91.0 vs {Z} 89.0 at epochs=0")
    verdict = judge(runs, metric=Z, exceeds=H, variant="random", along="epochs", at=0)  # default by 0: 99 − 10
    assert verdict.status == REPRODUCED and "(difference +89.0; needs ≥ 0)" in verdict.detail


def test_exceeds_without_at_holds_at_every_point_and_names_the_worst():
    runs = two_metrics(FROM_H, FROM_Z)
    verdict = judge(runs, metric=H, exceeds=Z, by=10, variant="simclr", along="epochs")
    assert verdict.status == NOT_REPRODUCED  # +42 at 100 but +2 at 0
    assert verdict.detail == (f"{H} vs {Z} along epochs: 0: 91.0 vs 89.0, 100: 68.0 vs 26.0; "
                              "smallest difference +2.0 at epochs=0 (needs ≥ 10 at each point)")
    assert judge(runs, metric=H, exceeds=Z, by=2, variant="simclr", along="epochs").status == REPRODUCED
    assert judge(runs, metric=H, exceeds=Z, by=2.5, variant="simclr", along="epochs").status == NOT_REPRODUCED


def test_exceeds_without_along_averages_over_the_cells_with_both():
    runs = two_metrics(FROM_H, FROM_Z)
    verdict = judge(runs, metric=H, exceeds=Z, by=22, variant="simclr")
    # h (90 + 92 + 66 + 70) / 4 = 79.5, z (88 + 90 + 25 + 27) / 4 = 57.5
    assert verdict.status == REPRODUCED
    assert verdict.detail == f"{H} 79.5 vs {Z} 57.5, mean over the 4 cells with both (difference +22.0; needs ≥ 22)"
    assert judge(runs, metric=H, exceeds=Z, by=22.5, variant="simclr").status == NOT_REPRODUCED


def test_exceeds_pairs_the_metrics_run_by_run():
    # seed 1 at 100 has h but not z: it leaves both means, not just z's
    runs = two_metrics(FROM_H, {**FROM_Z, ("simclr", 100): [25.0, NAN]})
    verdict = judge(runs, metric=H, exceeds=Z, variant="simclr", along="epochs", at=100)
    assert verdict.detail.startswith(f"{H} 66.0 vs {Z} 25.0 at epochs=100 (difference +41.0")  # not 68 vs 25
    verdict = judge(runs, metric=H, exceeds=Z, variant="simclr")
    # h (90 + 92 + 66) / 3 = 82.67, z (88 + 90 + 25) / 3 = 67.67
    assert f"{H} 82.7 vs {Z} 67.7, mean over the 3 cells with both (difference +15.0" in verdict.detail
    # a metric logged once per trial beside one logged per target: paired by the trial alone
    runs = two_metrics(FROM_H, FROM_Z, z_target=None)
    verdict = judge(runs, metric=H, exceeds=Z, variant="simclr", along="epochs", at=100)
    assert verdict.detail.startswith(f"{H} 68.0 vs {Z} 26.0 at epochs=100")


def test_exceeds_needs_runs_with_both_metrics():
    runs = two_metrics(FROM_H, {**FROM_Z, ("simclr", 100): [NAN, NAN]})
    for at in ({"at": 100}, {}):
        verdict = judge(runs, metric=H, exceeds=Z, variant="simclr", along="epochs", **at)
        assert verdict.status == NOT_ENOUGH and verdict.detail == f"no finished run with both {H} and {Z} at epochs=100"
    assert judge(runs, metric=H, exceeds=Z, variant="simclr", along="epochs", at=0).status == REPRODUCED
    verdict = judge(runs, metric=H, exceeds=Z, variant="simclr", along="epochs", at=50)  # no such point
    assert verdict.status == NOT_ENOUGH and verdict.detail.endswith("at epochs=50")
    nothing = two_metrics(FROM_H, {key: [NAN] * len(seeds) for key, seeds in FROM_Z.items()})
    verdict = judge(nothing, metric=H, exceeds=Z, variant="simclr")
    assert verdict.status == NOT_ENOUGH and verdict.detail == f"no finished run with both {H} and {Z}"
    verdict = judge(nothing, metric=H, exceeds=Z, variant="nobody", along="epochs")
    assert verdict.status == NOT_ENOUGH and verdict.detail.endswith("along epochs")


def test_report_reads_both_metrics_of_exceeds(tmp_path):
    cells = pd.DataFrame([{"variant": "simclr", "epochs": 100, "seed": 0, "trial_hash": "h"}])
    runs = pd.DataFrame([{"trial_hash": "h", H: 60.0, Z: 30.0}]).set_index("trial_hash")
    finding = Finding(claim="c", check={"metric": H, "exceeds": Z, "by": 25})
    report = build_report(study="s", scale="small", reproduces="r", cells=cells, runs=runs, targets=[],
                          target_metrics=set(), spec=ReportSpec(), reference=None, findings=[finding], folder=tmp_path)
    assert report.verdicts[0].status == REPRODUCED and f"{H} 60.0 vs {Z} 30.0" in report.verdicts[0].detail
    assert set(pd.read_csv(tmp_path / "results.csv")["metric"]) == {H, Z}


# against_paper ----------------------------------------------------------------------------------

PAPER = Reference(source="t", metric="linear_acc", columns=[20, 80], rows=[
    {"variant": "simclr", "target": "first", "values": [61.5, None]},
    {"variant": "random", "target": "first", "values": [40.0, 43.0]},
])
CELLS = [{"variant": "simclr", "size": 20}, {"variant": "random", "size": 80}]


def test_against_paper_within_the_tolerance():
    verdict = judge(results_of(PAIR, along="size"), PAPER, "size", target="first", against_paper=3, cells=CELLS)
    assert verdict.status == REPRODUCED
    assert "variant=simclr, size=20: 61.0 vs paper 61.5 (-0.5)" in verdict.detail
    assert "variant=random, size=80: 40.0 vs paper 43.0 (-3.0)" in verdict.detail
    assert "largest gap 3.0 (needs within ± 3)" in verdict.detail
    verdict = judge(results_of(PAIR, along="size"), PAPER, "size", target="first", against_paper=2, cells=CELLS)
    assert verdict.status == NOT_REPRODUCED


def test_against_paper_needs_our_runs_and_the_papers_number():
    values = {**PAIR, ("simclr", 20): [NAN, NAN]}
    verdict = judge(results_of(values, along="size"), PAPER, "size", target="first", against_paper=3, cells=CELLS)
    assert verdict.status == NOT_ENOUGH and verdict.detail == "no finished run at variant=simclr, size=20"
    cells = [{"variant": "simclr", "size": 80}]
    verdict = judge(results_of(PAIR, along="size"), PAPER, "size", target="first", against_paper=3, cells=cells)
    assert verdict.status == NOT_ENOUGH and "the paper gives no value at variant=simclr, size=80" in verdict.detail


def test_paper_value_finds_exactly_one_cell():
    assert PAPER.paper_value({"variant": "random", "target": "first", "size": 80}, "size") == 43.0
    with pytest.raises(ValueError, match="no paper's cells match"):
        PAPER.paper_value({"variant": "random", "target": "first", "size": 30}, "size")
    with pytest.raises(ValueError, match="no paper's cells match target=first, size=20; a cell names size, target, va"):
        PAPER.paper_value({"target": "first", "size": 20}, "size")


def test_report_threads_the_reference_into_against_paper(tmp_path):
    cells = pd.DataFrame([{"variant": "random", "size": 80, "seed": 0, "trial_hash": "h"}])
    runs = pd.DataFrame([{"trial_hash": "h", "linear_acc/first": 42.0}]).set_index("trial_hash")
    finding = Finding(claim="c", check={"against_paper": 1, "target": "first", "cells": [CELLS[1]]})
    report = build_report(
        study="s", scale="small", reproduces="r", cells=cells, runs=runs, targets=["first"],
        target_metrics={"linear_acc"}, spec=ReportSpec(table=TableSpec(rows=["variant", "target"], columns="size",
                                                                       metric="linear_acc")),
        reference=PAPER, findings=[finding], folder=tmp_path,
    )
    assert report.verdicts[0].status == REPRODUCED and "42.0 vs paper 43.0" in report.verdicts[0].detail


# the language -----------------------------------------------------------------------------------

def test_every_kind_in_the_docstring_parses():
    examples = re.findall(r"^\s+(\{.*\})\s+#", Check.__doc__, flags=re.MULTILINE)
    kinds = {Check.model_validate(yaml.safe_load(example)).kind for example in examples}
    assert kinds == {"drop_at_least", "drop_at_most", "rise_at_least", "monotone", "order", "first_below",
                     "peak_inside", "better", "exceeds", "against_paper"}


@pytest.mark.parametrize(("check", "message"), [
    ({"along": "x", "monotone": "decreasing", "drop_at_least": 1}, r"exactly one of .*\(got drop_at_least, monotone\)"),
    ({"along": "x"}, "give exactly one of drop_at_least"),
    ({"along": "x", "monotone": "downwards"}, "'decreasing' or 'increasing'"),
    ({"along": "x", "first_below": 50}, "first_below needs within"),
    ({"along": "x", "monotone": "decreasing", "within": [1, 2]}, "within goes with first_below, not monotone"),
    ({"better": "a"}, "better needs than"),
    ({"better": "a", "than": "b", "at": 3}, "at is a value of along"),
    ({"better": "a", "than": "b", "along": "x", "at": [3, 4]}, "at is not a list"),
    ({"order": ["a", "b"], "variant": "a"}, "order names the variants it compares"),
    ({"order": ["a"]}, "at least 2 items"),
    ({"against_paper": 1}, "against_paper needs cells"),
    ({"monotone": "decreasing"}, "monotone needs along"),
    ({"along": "x", "first_below": 5, "within": [9, 1]}, "low ≤ high"),
    ({"exceeds": "knn_acc", "than": "b"}, "than goes with better, not exceeds"),
    ({"metric": "knn_acc", "exceeds": "knn_acc"}, "exceeds names the same metric as metric"),
    ({"exceeds": "linear_acc"}, "exceeds names the same metric as metric"),  # metric's default
    ({"exceeds": "knn_acc", "along": "x", "at": [3, 4]}, "at is not a list"),
    ({"exceeds": "knn_acc", "at": 3}, "at is a value of along"),
    ({"exceeds": "knn_acc", "slack": 1}, "slack goes with monotone, order, not exceeds"),
])
def test_bad_checks_say_what_is_wrong(check, message):
    with pytest.raises(ValidationError, match=message):
        Check.model_validate(check)


def study_error(write_study, check: dict, **changes) -> str:
    with pytest.raises(StudyError) as caught:
        load_study(write_study(tiny_study(findings=[{"claim": "x", "check": check}], **changes)))
    return str(caught.value)


@pytest.mark.parametrize(("check", "key"), [
    ({"order": ["t02", "t07"], "along": "data.second_size"}, "findings[0].check.order[1]"),
    ({"better": "t07", "than": "t02"}, "findings[0].check.better"),
    ({"better": "t02", "than": "t07", "along": "data.second_size", "at": 8}, "findings[0].check.than"),
    ({"against_paper": 1, "cells": [{"variant": "t07"}]}, "findings[0].check.cells[0].variant"),
])
def test_study_rejects_a_finding_naming_an_unknown_variant(write_study, check, key):
    text = study_error(write_study, check)
    assert f"{key}: no variant 't07'; variants: t02, t05" in text


def test_study_checks_the_cells_of_against_paper(write_study):
    reference = {"source": "p", "metric": "linear_acc", "columns": [8, 16],
                 "rows": [{"variant": "t02", "target": "first_digit", "values": [50.0, None]}]}
    check = {"against_paper": 1, "target": "first_digit", "cells": [{"variant": "t02", "data.second_size": 8}]}
    assert load_study(write_study(tiny_study(findings=[{"claim": "x", "check": check}], reference=reference)))
    wrong = {**check, "cells": [{"variant": "t02", "data.second_size": 12}]}
    text = study_error(write_study, wrong, reference=reference)
    assert "findings[0].check.cells[0]: no paper's cells match" in text
    typo = {**check, "cells": [{"variant": "t02", "data.second_sise": 8}]}
    assert "findings[0].check.cells[0]: 'data.second_sise' is not a result column" in study_error(
        write_study, typo, reference=reference)
    assert "against_paper compares linear_acc with the study's reference, which is missing" in study_error(
        write_study, check)


def test_a_list_valued_selector_matches_rows_holding_that_list():
    from dashboards.findings.base import select

    # Two rows, and a two-element selector: a position-by-position comparison would pick the wrong row.
    frame = pd.DataFrame({"views.crop.scale": [(0.2, 1.0), (0.08, 1.0)], "value": [1.0, 2.0]})
    assert select(frame, {"views.crop.scale": [0.08, 1.0]})["value"].tolist() == [2.0]
    assert select(frame, {"views.crop.scale": [0.2, 1.0]})["value"].tolist() == [1.0]
    assert select(frame, {"views.crop.scale": [0.5, 1.0]}).empty


MULTI = Reference(source="t", metric="linear_acc", columns=[0.07, 1.0], rows=[
    {"variant": "normal", "values": [79.8, 82.2]},
    {"variant": "normal", "metric": "uniformity", "values": [3.86, 2.96]},
])


def test_a_reference_row_may_hold_another_metric():
    assert MULTI.metrics() == {"linear_acc", "uniformity"}
    assert MULTI.paper_value({"variant": "normal", "tau": 1.0}, "tau") == 82.2
    assert MULTI.paper_value({"variant": "normal", "tau": 1.0}, "tau", "uniformity") == 2.96
    assert [r["paper"] for r in MULTI.records("uniformity")] == [3.86, 2.96]
    assert "metric" not in MULTI.records("uniformity")[0]
    # ours 3.0 at τ = 1.0 against the paper's 2.96: within 0.05, not within 0.01
    values = {("normal", 0.07): [3.5], ("normal", 1.0): [3.0]}
    cells = [{"variant": "normal", "tau": 1.0}]
    verdict = judge(results_of(values, along="tau", target=None), MULTI, "tau", metric="uniformity",
                    against_paper=0.05, cells=cells)
    assert verdict.status == REPRODUCED and "3.0 vs paper 2.96 (+0.04)" in verdict.detail
    verdict = judge(results_of(values, along="tau", target=None), MULTI, "tau", metric="uniformity",
                    against_paper=0.01, cells=cells)
    assert verdict.status == NOT_REPRODUCED
    with pytest.raises(ValueError, match="holds linear_acc, uniformity"):
        judge(results_of(values, along="tau", target=None), MULTI, "tau", metric="tolerance",
              against_paper=1, cells=cells)
