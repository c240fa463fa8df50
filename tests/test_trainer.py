"""The shared trainer, called directly as a notebook would."""

from __future__ import annotations

import math

import pytest
from conftest import TINY_BASE

from workers import TrialConfig, TrialDiverged, run_trial


def config(**changes) -> TrialConfig:
    return TrialConfig.model_validate({**TINY_BASE, **changes})


def test_simclr_trial_reports_every_epoch_and_both_targets(tmp_path):
    epochs = []
    metrics = run_trial(config(), data_root=tmp_path, device="cpu", on_epoch=lambda e, m: epochs.append((e, m)))
    assert [e for e, _ in epochs] == [1, 2]
    assert all(math.isfinite(m["train/loss"]) for _, m in epochs)
    # 128 examples / 64 = 2 steps an epoch; the last of 4 steps runs at lr·½(1 + cos(3π/4))
    assert epochs[-1][1]["train/lr"] == pytest.approx(0.002 * 0.5 * (1 + math.cos(3 * math.pi / 4)))
    for target in ("first_digit", "second_digit"):
        assert 0 <= metrics[f"linear_acc/{target}"] <= 100


def test_same_seed_same_result_on_cpu(tmp_path):
    first = run_trial(config(), data_root=tmp_path, device="cpu")
    second = run_trial(config(), data_root=tmp_path, device="cpu")
    assert first["train/loss"] == second["train/loss"]
    assert first["linear_acc/first_digit"] == second["linear_acc/first_digit"]


def test_supervised_learns_the_large_digit(tmp_path):
    trained = config(method="supervised", train={"batch_size": 64, "epochs": 6},
                     model={"backbone": {"name": "small_cnn", "width": 16, "stages": 3}},
                     optim={"name": "adam", "lr": 0.005},
                     data={**TINY_BASE["data"], "second_size": 24, "train_examples": 512, "test_examples": 256})
    untrained = trained.model_copy(update={"method": TrialConfig.model_validate(
        {**TINY_BASE, "method": "random_init"}).method})
    learned = run_trial(trained, data_root=tmp_path, device="cpu")["linear_acc/second_digit"]
    baseline = run_trial(untrained, data_root=tmp_path, device="cpu")["linear_acc/second_digit"]
    assert learned > baseline + 5, (learned, baseline)


def test_random_init_does_not_train(tmp_path):
    calls = []
    metrics = run_trial(config(method="random_init"), data_root=tmp_path, device="cpu", on_epoch=calls.append)
    assert calls == []
    assert set(metrics) == {"linear_acc/first_digit", "linear_acc/second_digit"}


def test_diverging_trial_raises_with_its_reason(tmp_path):
    exploding = config(method="supervised", optim={"name": "sgd", "lr": 1e30, "momentum": 0.0})
    with pytest.raises(TrialDiverged, match=r"train/loss is (nan|inf) in epoch 1"):
        run_trial(exploding, data_root=tmp_path, device="cpu")


@pytest.mark.slow
def test_a_compiled_encoder_trains_as_the_eager_one(tmp_path):
    """train.compile: the encoder goes through torch.compile (CPU inductor) and trains to the eager losses."""
    from torch._dynamo.utils import counters

    train = {**TINY_BASE["train"], "epochs": 2}
    eager, compiled = [], []
    run_trial(config(train=train), data_root=tmp_path, on_epoch=lambda e, m: eager.append(m["train/loss"]))
    counters.clear()
    run_trial(config(train={**train, "compile": True}), data_root=tmp_path,
              on_epoch=lambda e, m: compiled.append(m["train/loss"]))
    assert counters["stats"]["unique_graphs"] >= 1, "nothing was compiled"
    assert len(compiled) == 2
    assert compiled == pytest.approx(eager, rel=1e-3)
    assert config(train={**train, "compile": True}).identity() != config(train=train).identity()


def test_the_projection_probe_reads_z_and_equals_h_without_a_head(tmp_path):
    """eval.linear.projection: linear_acc_z probes z = g(h); with no head (z = h) it is linear_acc exactly."""
    linear = {**TINY_BASE["eval"]["linear"], "projection": True}
    no_head = run_trial(config(model={**TINY_BASE["model"], "head": {"layers": 0}}, eval={"linear": linear}),
                        data_root=tmp_path)
    for target in ("first_digit", "second_digit"):
        assert no_head[f"linear_acc_z/{target}"] == no_head[f"linear_acc/{target}"]
    with_head = run_trial(config(eval={"linear": linear}), data_root=tmp_path)
    assert 0 <= with_head["linear_acc_z/first_digit"] <= 100
    assert any(with_head[f"linear_acc_z/{t}"] != with_head[f"linear_acc/{t}"] for t in ("first_digit", "second_digit"))
    with pytest.raises(ValueError, match="has no projection head"):
        run_trial(config(method="supervised", eval={"linear": linear}), data_root=tmp_path)
