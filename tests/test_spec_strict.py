"""Bad input that must be one clear line: non-finite numbers, booleans as numbers, duplicate keys."""

from __future__ import annotations

import pytest
from conftest import TINY_BASE, tiny_study

from orchestrator.errors import StudyError
from orchestrator.spec import load_study


def error_of(path, **kwargs) -> str:
    with pytest.raises(StudyError) as caught:
        load_study(path, **kwargs)
    text = str(caught.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_floats_are_refused(write_study, value):
    text = f"study: tiny\nreproduces: x\nbase:\n  loss: {{name: nt_xent, temperature: {value}}}\n"
    path = write_study(text + "scales: {small: {}, smoke: {}}\n")
    assert "base.loss.temperature" in error_of(path) and "finite" in error_of(path)


def test_non_finite_floats_from_set_and_sweeps_are_refused(write_study):
    path = write_study(tiny_study())
    assert "finite" in error_of(path, overrides=["optim.lr=.inf"])
    swept = tiny_study(sweep={"grid": {"loss.temperature": [0.1, float("nan")]}})
    assert "finite" in error_of(write_study(swept))
    assert "finite" in error_of(path, overrides=["execution.lease_minutes=.inf"])


@pytest.mark.parametrize("key", ["loss.temperature", "optim.lr", "train.epochs"])
def test_a_boolean_is_not_a_number(write_study, key):
    text = error_of(write_study(tiny_study()), overrides=[f"{key}=true"])
    assert key in text and "true is not a number" in text


def test_a_boolean_where_a_boolean_belongs_is_fine(write_study):
    load_study(write_study(tiny_study()))  # the tiny study itself holds no booleans-as-numbers
    assert TINY_BASE["loss"]["temperature"] == 0.2


def test_a_duplicate_key_is_refused_with_its_line(write_study):
    text = (
        "study: tiny\nreproduces: x\nbase:\n  loss:\n    name: nt_xent\n    temperature: 0.2\n"
        "    temperature: 0.5\nscales: {small: {}, smoke: {}}\n"
    )
    message = error_of(write_study(text))
    assert "duplicate key 'temperature'" in message and "line 7" in message and "line 6" in message


def test_report_labels_must_name_something_the_study_has(write_study):
    good = tiny_study()
    good["report"] = {**good.get("report", {}), "labels": {"first_digit": "first digit"}, "chance": {"linear_acc": 10}}
    load_study(write_study(good))
    bad = tiny_study()
    bad["report"] = {**bad.get("report", {}), "labels": {"simclr_t03": "SimCLR τ=0.3"}}
    with pytest.raises(StudyError, match=r"report\.labels\.simclr_t03: 'simclr_t03' names no variant"):
        load_study(write_study(bad))
