"""optim.lr_scaling (SimCLR Table B.1): the built optimiser's rate, worked out by hand."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_BASE
from torch import nn

from workers import TrialConfig, run_trial
from workers.optim import OptimConfig


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


# Table B.1: linear is LearningRate = 0.3 × BatchSize / 256, square root 0.075 × √BatchSize.
# Both give SimCLR's default 4.8 at batch 4096 (§2.3: "learning rate of 4.8 (= 0.3 × BatchSize/256)").
@pytest.mark.parametrize(
    ("scaling", "lr", "batch", "expected"),
    [
        ("linear", 0.3, 4096, 4.8),
        ("linear", 0.3, 256, 0.3),
        ("linear", 0.3, 1024, 1.2),
        ("sqrt", 0.075, 4096, 4.8),  # √4096 = 64
        ("sqrt", 0.075, 256, 1.2),  # √256 = 16
        ("sqrt", 0.075, 1024, 2.4),  # √1024 = 32
        ("none", 0.3, 4096, 0.3),
        ("none", 0.3, None, 0.3),
    ],
)
@pytest.mark.parametrize("name", ["lars", "sgd", "adam", "adam_l2"])
def test_the_built_optimiser_runs_at_the_scaled_rate(name, scaling, lr, batch, expected):
    config = OptimConfig(name=name, lr=lr, lr_scaling=scaling)
    optimizer, schedule = config.build(model(), steps_per_epoch=10, epochs=3, batch_size=batch)
    for group in optimizer.param_groups:  # decayed and undecayed groups alike
        assert group["lr"] == pytest.approx(expected, rel=1e-12)
        assert group["initial_lr"] == pytest.approx(expected, rel=1e-12)
    assert schedule.base_lrs == pytest.approx([expected, expected], rel=1e-12)


def test_warm_up_and_cosine_run_from_the_scaled_rate():
    config = OptimConfig(name="lars", lr=0.3, lr_scaling="linear", warmup_epochs=1)
    optimizer, schedule = config.build(model(), steps_per_epoch=4, epochs=2, batch_size=512)
    # 0.3 × 512/256 = 0.6
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    # Warm-up: (step + 1)/4 of 0.6 for 4 steps, then ½(1 + cos(π·p)) with p = 0, ¼, ½, ¾.
    warm = [0.15, 0.3, 0.45, 0.6]
    cosine = [0.6, 0.6 * (1 + 2**-0.5) / 2, 0.3, 0.6 * (1 - 2**-0.5) / 2]
    assert rates == pytest.approx(warm + cosine, rel=1e-9)


def test_scaling_without_a_batch_size_is_refused():
    with pytest.raises(ValueError, match="lr_scaling=sqrt needs the batch size"):
        OptimConfig(lr_scaling="sqrt").build(model(), steps_per_epoch=1, epochs=1)


def test_default_leaves_the_identity_and_the_rate_as_they_were():
    plain = TrialConfig.model_validate(TINY_BASE)
    explicit = TrialConfig.model_validate({**TINY_BASE, "optim": {**TINY_BASE["optim"], "lr_scaling": "none"}})
    assert explicit.identity() == plain.identity()
    assert "lr_scaling" not in plain.identity()["optim"]


def test_a_trial_trains_at_the_scaled_rate(tmp_path):
    """The trainer hands the batch size over: train/lr of a constant schedule is lr·B/256."""
    optim = {**TINY_BASE["optim"], "lr_scaling": "linear", "schedule": "constant"}
    trial = TrialConfig.model_validate(
        {**TINY_BASE, "optim": optim, "train": {"batch_size": 64, "epochs": 1}, "eval": {"linear": None}}
    )
    metrics = run_trial(trial, data_root=tmp_path, device=torch.device("cpu"))
    assert metrics["train/lr"] == pytest.approx(0.002 * 64 / 256, rel=1e-12)
