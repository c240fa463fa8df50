"""Study files: scales, overrides, and one clear line for every kind of bad input."""

from __future__ import annotations

import pytest
from conftest import TINY_BASE, tiny_study

from orchestrator.errors import StudyError
from orchestrator.overrides import OverrideError, parse_assignment, set_path
from orchestrator.spec import load_study


def error_of(path, scale="paper", overrides=()) -> str:
    with pytest.raises(StudyError) as caught:
        load_study(path, scale=scale, overrides=overrides)
    text = str(caught.value)
    assert "\n" not in text, "an error is one line"
    assert text.startswith(str(path)), "an error names the file"
    return text


def test_valid_study_loads_with_defaults_filled_in(write_study):
    study = load_study(write_study(tiny_study()))
    assert study.name == "tiny"
    assert study.scale == "paper"
    assert study.base.loss.temperature == 0.2
    assert study.base.optim.weight_decay == 1e-6  # a default


def test_scale_and_set_apply_in_order(write_study):
    path = write_study(tiny_study())
    study = load_study(path, scale="smoke", overrides=["train.epochs=5", "loss.temperature=0.1"])
    assert study.spec.sweep.seeds == [0]
    assert study.spec.sweep.grid == {"data.second_size": [16]}
    assert study.base.train.epochs == 5
    assert study.base.loss.temperature == 0.1
    assert load_study(path, scale="small").base.train.epochs == 1


def test_set_can_replace_one_variant_key(write_study):
    study = load_study(write_study(tiny_study()), overrides=["sweep.variants.t05.loss.temperature=0.7"])
    assert study.spec.sweep.variants["t05"] == {"loss.temperature": 0.7}


def test_unknown_key_names_dotted_path_and_allowed_keys(write_study):
    base = {**TINY_BASE, "loss": {"name": "nt_xent", "temprature": 0.2}}
    text = error_of(write_study(tiny_study(base=base)))
    assert "base.loss.temprature" in text
    assert "unknown key 'temprature'" in text
    assert "allowed: name, temperature" in text


def test_wrong_type_names_the_key_and_the_value(write_study):
    base = {**TINY_BASE, "train": {"batch_size": 64, "epochs": "ten"}}
    text = error_of(write_study(tiny_study(base=base)))
    assert "base.train.epochs" in text
    assert "integer" in text and "'ten'" in text


def test_unknown_loss_lists_registered_losses(write_study):
    base = {**TINY_BASE, "loss": {"name": "nt_xnet"}}
    text = error_of(write_study(tiny_study(base=base)))
    assert "base.loss" in text
    assert "'nt_xnet'" in text and "nt_xent" in text


def test_unknown_method_in_a_variant_names_the_variant(write_study):
    sweep = {"grid": {"data.second_size": [8]}, "variants": {"odd": {"method": "simclr_v9"}}}
    text = error_of(write_study(tiny_study(sweep=sweep)))
    assert "sweep cell (variant odd, data.second_size=8): method: unknown method 'simclr_v9'" in text
    assert "supervised" in text


def test_unknown_dataset_source_lists_allowed_values(write_study):
    base = {**TINY_BASE, "data": {**TINY_BASE["data"], "source": "svhn"}}
    text = error_of(write_study(tiny_study(base=base)))
    assert "base.data.source" in text
    assert "'svhn'" in text and "'mnist'" in text


def test_unknown_dataset_name_lists_registered_datasets(write_study):
    base = {**TINY_BASE, "data": {"name": "imagenet"}}
    text = error_of(write_study(tiny_study(base=base)))
    assert "base.data" in text and "'imagenet'" in text and "digit_pair" in text


def test_missing_file():
    assert "no such study file" in error_of("studies/does_not_exist.yaml")


def test_invalid_yaml_names_the_line(write_study):
    text = error_of(write_study("study: x\nbase: {data: [\n"))
    assert "not valid YAML" in text and "line" in text


def test_unknown_top_level_key(write_study):
    text = error_of(write_study(tiny_study(sweeps={})))
    assert "sweeps" in text and "allowed:" in text and "sweep" in text


def test_scale_typo_is_blamed_on_the_scale(write_study):
    text = error_of(write_study(tiny_study(scales={"small": {}, "smoke": {"data.sorce": "digits"}})), scale="smoke")
    assert "scales.smoke" in text and "base.data.sorce" in text


def test_unknown_scale_lists_scales(write_study):
    text = error_of(write_study(tiny_study()), scale="tiny")
    assert "unknown scale 'tiny'" in text and "paper, small, smoke" in text


def test_missing_required_scales(write_study):
    assert "scales needs smoke" in error_of(write_study(tiny_study(scales={"small": {}})))


def test_bad_set_syntax_and_values(write_study):
    path = write_study(tiny_study())
    assert "key.path=value" in error_of(path, overrides=["train.epochs"])
    assert "base.train.epochs" in error_of(path, overrides=["train.epochs=-1"])


def test_grid_value_that_does_not_fit_names_the_value(write_study):
    sweep = {"grid": {"data.second_size": [8, 40]}}
    text = error_of(write_study(tiny_study(sweep=sweep)))
    assert "sweep cell (variant base, data.second_size=40)" in text and "does not fit on canvas=32" in text


def test_variant_may_not_set_a_grid_axis(write_study):
    sweep = {"grid": {"data.second_size": [8]}, "variants": {"a": {"data.second_size": 16}}}
    assert "variant a sets data.second_size, which would override" in error_of(write_study(tiny_study(sweep=sweep)))


def test_report_may_only_name_result_columns(write_study):
    report = {"table": {"rows": ["variant", "method"], "metric": "linear_acc"}}
    text = error_of(write_study(tiny_study(report=report)))
    assert "report.table.rows" in text and "'method'" in text and "variant" in text


def test_finding_must_name_an_existing_variant(write_study):
    findings = [{"claim": "x", "check": {"variant": "t03", "along": "data.second_size", "drop_at_least": 1}}]
    text = error_of(write_study(tiny_study(findings=findings)))
    assert "findings[0].check.variant" in text and "'t03'" in text


def test_evaluating_a_target_the_dataset_lacks(write_study):
    base = {**TINY_BASE, "eval": {"linear": {"targets": ["third_digit"]}}}
    text = error_of(write_study(tiny_study(base=base)))
    assert "eval.linear.targets" in text and "first_digit, second_digit" in text


def test_parse_assignment_reads_values_as_yaml():
    assert parse_assignment("a.b=0.05") == ("a.b", 0.05)
    assert parse_assignment("seeds=[0, 1]") == ("seeds", [0, 1])
    assert parse_assignment("x=null") == ("x", None)
    assert parse_assignment("name=resnet18") == ("name", "resnet18")
    with pytest.raises(OverrideError):
        parse_assignment("a..b=1")


def test_set_path_opens_name_shorthand_and_copies():
    tree = {"method": "supervised", "train": {"epochs": 1}}
    changed = set_path(tree, "method.targets", ["first_digit"])
    assert changed["method"] == {"name": "supervised", "targets": ["first_digit"]}
    assert tree["method"] == "supervised", "the input is left alone"
    assert set_path(tree, "train", {"epochs": 3})["train"] == {"epochs": 3}
    with pytest.raises(OverrideError):
        set_path({"train": 3}, "train.epochs", 1)


def test_variant_may_not_set_a_section_holding_a_grid_axis(write_study):
    sweep = {"grid": {"data.second_size": [8, 16]},
             "variants": {"a": {}, "b": {"data": {"name": "digit_pair", "source": "digits"}}}}
    text = error_of(write_study(tiny_study(sweep=sweep)))
    assert "variant b sets data" in text and "data.second_size" in text


def test_seed_comes_from_the_sweep_only(write_study):
    text = error_of(write_study(tiny_study(base={**TINY_BASE, "seed": 3})))
    assert "base.seed" in text and "sweep.seeds" in text
    assert "sweep.seeds" in error_of(write_study(tiny_study()), overrides=["seed=5"])


def test_every_cell_is_checked_as_it_runs_not_in_pieces(write_study):
    # 24 does not fit on the base canvas, but every variant enlarges the canvas: all cells are valid.
    sweep = {"grid": {"data.second_size": [8, 24]}, "variants": {"big": {"data.canvas": 32}}}
    base = {**TINY_BASE, "data": {**TINY_BASE["data"], "canvas": 16}}
    study = load_study(write_study(tiny_study(base=base, sweep=sweep)))
    assert [cell.config.data.second_size for cell in study.cells] == [8, 24]
    sweep["variants"]["small"] = {}
    text = error_of(write_study(tiny_study(base=base, sweep=sweep)))
    assert "sweep cell (variant small, data.second_size=24)" in text and "does not fit" in text


def test_set_reaches_the_report_and_rechecks_it(write_study):
    path = write_study(tiny_study())
    text = error_of(path, overrides=["report.table.metric=train/loss"])
    assert "report.table.rows" in text and "train/loss has no targets" in text
    text = error_of(path, overrides=["sweep.grid={}"])
    assert "report.table.columns" in text and "'data.second_size' is not a result column" in text


def test_unknown_metric_lists_the_metrics(write_study):
    report = {"table": {"rows": ["variant", "target"], "columns": "data.second_size", "metric": "linear_ac"}}
    text = error_of(write_study(tiny_study(report=report)))
    assert "report.table.metric" in text and "'linear_ac'" in text and "linear_acc" in text


def test_the_second_metric_of_exceeds_is_checked_like_the_first(write_study):
    def finding(**check) -> dict:
        return tiny_study(findings=[{"claim": "x", "check": check}])

    good = {"metric": "knn_acc", "variant": "t02", "target": "first_digit", "along": "data.second_size", "at": 16}
    assert load_study(write_study(finding(**good, exceeds="linear_acc"))).spec.findings[0].check.kind == "exceeds"
    text = error_of(write_study(finding(**good, exceeds="knn_ac")))
    assert "findings[0].check.exceeds: unknown metric 'knn_ac'" in text and "linear_acc" in text
    text = error_of(write_study(finding(**good, exceeds="train/loss")))  # a target selector, a metric without
    assert "findings[0].check.target: train/loss has no targets" in text
    text = error_of(write_study(finding(exceeds="linear_acc", metric="linear_ac")))
    assert "findings[0].check.metric: unknown metric 'linear_ac'" in text
    text = error_of(write_study(finding(exceeds="knn_acc", along="data.second_sise")))
    assert "findings[0].check.along: 'data.second_sise' is not a result column" in text
    text = error_of(write_study(finding(**good, exceeds="knn_acc")))
    assert "findings[0].check: exceeds names the same metric as metric (knn_acc)" in text
    text = error_of(write_study(finding(**{**good, "at": [8, 16]}, exceeds="linear_acc")))
    assert "findings[0].check: exceeds compares at one value of along" in text and "at is not a list" in text
    text = error_of(write_study(finding(exceeds="knn_acc", than="t05")))
    assert "findings[0].check: than goes with better, not exceeds" in text


def test_batch_larger_than_the_training_set(write_study):
    base = {**TINY_BASE, "train": {"batch_size": 1000, "epochs": 1}}
    text = error_of(write_study(tiny_study(base=base)))
    assert "base.train.batch_size" in text and "more than the 128 training examples" in text


def test_backbone_too_deep_for_the_canvas(write_study):
    base = {**TINY_BASE, "model": {"backbone": {"name": "small_cnn", "stages": 6}}}
    text = error_of(write_study(tiny_study(base=base)))
    assert "base.model.backbone" in text and "at least 64 pixels" in text and "are 32" in text


def test_union_values_get_one_path_and_every_allowed_form(write_study):
    text = error_of(write_study(tiny_study(execution={"gpus_per_trial": "lots"})))
    assert "execution.gpus_per_trial:" in text and ".float" not in text
    assert "number" in text and "'auto'" in text


def test_a_reference_row_of_another_metric_names_a_known_one(write_study):
    def study(metric: str) -> dict:
        rows = [{"variant": "t02", "target": "first_digit", "values": [90.0]},
                {"variant": "t02", "target": "first_digit", "metric": metric, "values": [3.9]}]
        reference = {"source": "s", "metric": "linear_acc", "columns": [16], "rows": rows}
        findings = [{"claim": "x", "check": {"metric": "knn_acc", "variant": "t02", "target": "first_digit",
                                             "against_paper": 1, "cells": [{"data.second_size": 16}]}}]
        return tiny_study(reference=reference, findings=findings)

    assert load_study(write_study(study("knn_acc"))).spec.reference.metrics() == {"linear_acc", "knn_acc"}
    text = error_of(write_study(study("knn_ac")))
    assert "reference.rows[1].metric: unknown metric 'knn_ac'" in text
