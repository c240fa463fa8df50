"""Expansion counts, deduplication and the canonical trial hash."""

from __future__ import annotations

import hashlib
import json

from conftest import TINY_BASE, tiny_study

from orchestrator.expansion import expand, trial_hash, unique
from orchestrator.spec import load_study
from workers.config import TrialConfig


def test_cells_are_variants_times_grid_times_seeds(write_study):
    cells = expand(load_study(write_study(tiny_study())))
    assert len(cells) == 2 * 2 * 2
    assert [c.variant for c in cells[:4]] == ["t02"] * 4
    assert [dict(c.point)["data.second_size"] for c in cells[:4]] == [8, 8, 16, 16]
    assert [c.seed for c in cells[:4]] == [0, 1, 0, 1]
    assert cells[5].config.loss.temperature == 0.5
    assert cells[5].config.data.second_size == 8 and cells[5].config.seed == 1
    assert len(unique(cells)) == 8


def test_smoke_scale_shrinks_the_sweep(write_study):
    assert len(expand(load_study(write_study(tiny_study()), scale="smoke"))) == 2 * 1 * 1


def test_study_without_variants_has_one_base_variant(write_study):
    cells = expand(load_study(write_study(tiny_study(sweep={"grid": {"data.second_size": [8]}}))))
    assert [(c.variant, c.seed) for c in cells] == [("base", 0)]


def test_cells_that_compute_the_same_thing_are_one_trial(write_study):
    # The supervised method does not read the loss, so a temperature variant of it is the same trial.
    variants = {"sup": {"method": "supervised"}, "sup_t05": {"method": "supervised", "loss.temperature": 0.5}}
    sweep = {"grid": {"data.second_size": [8, 16]}, "variants": variants}
    cells = expand(load_study(write_study(tiny_study(sweep=sweep))))
    assert len(cells) == 4
    assert len(unique(cells)) == 2
    assert cells[0].hash == cells[2].hash


def test_hash_is_sha256_of_canonical_json_without_defaults():
    config = TrialConfig.model_validate({"data": {"name": "digit_pair", "source": "digits"}, "method": "simclr"})
    canonical = (
        '{"config":{"data":{"name":"digit_pair","source":"digits"},"method":{"name":"simclr"}},"identity_version":2}'
    )
    assert trial_hash(config) == hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_hash_ignores_spelling_but_not_content():
    short = TrialConfig.model_validate({"data": {"name": "digit_pair"}, "method": "simclr", "loss": "nt_xent"})
    spelled = TrialConfig.model_validate({
        "data": {"name": "digit_pair", "canvas": 112}, "method": {"name": "simclr"},
        "loss": {"name": "nt_xent", "temperature": 0.5}, "seed": 0,
    })
    assert trial_hash(short) == trial_hash(spelled)
    hotter = TrialConfig.model_validate({"data": {"name": "digit_pair"}, "method": "simclr", "loss": {
        "name": "nt_xent", "temperature": 0.7}})
    assert trial_hash(hotter) != trial_hash(short)
    reseeded = TrialConfig.model_validate({"data": {"name": "digit_pair"}, "method": "simclr", "seed": 1})
    assert trial_hash(reseeded) != trial_hash(short)


def test_identity_keeps_only_what_the_method_reads():
    random_net = TrialConfig.model_validate({**TINY_BASE, "method": "random_init"})
    assert set(random_net.identity()) == {"data", "model", "method", "eval"}
    assert set(random_net.identity()["model"]) == {"backbone"}, "an untrained network has no head"
    assert set(random_net.resolved()) == {"data", "model", "method", "eval", "seed"}
    simclr = TrialConfig.model_validate(TINY_BASE)
    assert set(simclr.identity()) == {"data", "model", "method", "loss", "views", "optim", "train", "eval"}
    deeper = {**TINY_BASE, "model": {**TINY_BASE["model"], "head": {"layers": 3}}}
    for method in ("supervised", "random_init"):
        shallow = TrialConfig.model_validate({**TINY_BASE, "method": method})
        assert trial_hash(shallow) == trial_hash(TrialConfig.model_validate({**deeper, "method": method}))
    assert trial_hash(simclr) != trial_hash(TrialConfig.model_validate(deeper))
    resolved = TrialConfig.model_validate(TINY_BASE).resolved()
    assert json.dumps(resolved)  # plain JSON, every default filled in
    assert resolved["optim"]["weight_decay"] == 1e-6
