"""Checkpoints: written atomically every N epochs and at the end; a resumed trial matches an uninterrupted one."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_BASE

from workers import TrialConfig, run_trial
from workers.checkpoint import CHECKPOINT_FILE, load_checkpoint

TRIALS = {
    "simclr_adam": {},
    # MoCo's key encoder and queue, LARS's velocities, the online classifiers: all in the file.
    "moco_lars_online": {"method": {"name": "moco", "queue_size": 64}, "optim": {"name": "lars", "lr": 0.5},
                         "eval": {**TINY_BASE["eval"], "online": {}}},
}


class Stop(Exception):
    pass


def config(**changes) -> TrialConfig:
    return TrialConfig.model_validate({**TINY_BASE, **changes})


def stop_after(last: int, seen: list[tuple[int, dict]]):
    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        seen.append((epoch, metrics))
        if epoch == last:
            raise Stop

    return on_epoch


@pytest.mark.parametrize("changes", TRIALS.values(), ids=TRIALS.keys())
def test_resumed_trial_equals_an_uninterrupted_one(tmp_path, changes):
    trial = config(**changes)
    straight: list[tuple[int, dict]] = []
    expected = run_trial(trial, data_root=tmp_path, device="cpu", on_epoch=lambda e, m: straight.append((e, m)))

    first: list[tuple[int, dict]] = []
    with pytest.raises(Stop):
        run_trial(trial, data_root=tmp_path, device="cpu", on_epoch=stop_after(1, first),
                  checkpoint_dir=tmp_path / "trial", checkpoint_every=1)
    assert load_checkpoint(tmp_path / "trial")["epoch"] == 1
    second: list[tuple[int, dict]] = []
    resumed = run_trial(trial, data_root=tmp_path, device="cpu", on_epoch=lambda e, m: second.append((e, m)),
                        checkpoint_dir=tmp_path / "trial", checkpoint_every=1)

    assert [e for e, _ in first] == [1] and [e for e, _ in second] == [2]
    assert first[0][1]["train/loss"] == straight[0][1]["train/loss"]
    for key in ("train/loss", "train/lr", *(k for k in straight[1][1] if k.startswith("online_acc"))):
        assert second[0][1][key] == straight[1][1][key], key
    for key in (k for k in expected if k.startswith("linear_acc")):
        assert resumed[key] == pytest.approx(expected[key], abs=1e-6), key
    assert sorted(p.name for p in (tmp_path / "trial").iterdir()) == [CHECKPOINT_FILE]  # no temporary left


def test_cadence_and_a_finished_trial(tmp_path):
    trial = config(train={**TINY_BASE["train"], "epochs": 3})
    written = []

    def on_epoch(epoch, metrics):
        written.append(load_checkpoint(tmp_path / "trial"))

    first = run_trial(trial, data_root=tmp_path, device="cpu", on_epoch=on_epoch,
                      checkpoint_dir=tmp_path / "trial", checkpoint_every=2)
    assert [None if state is None else state["epoch"] for state in written] == [None, 2, 3]  # every 2, and the end
    assert written[-1]["identity"] == trial.identity()
    assert isinstance(written[-1]["generator"], torch.Tensor)

    calls = []
    again = run_trial(trial, data_root=tmp_path, device="cpu", on_epoch=lambda e, m: calls.append(e),
                      checkpoint_dir=tmp_path / "trial")
    assert calls == []  # nothing left to train: evaluated from the checkpoint's weights
    assert again["train/loss"] == first["train/loss"]
    assert again["linear_acc/first_digit"] == first["linear_acc/first_digit"]


def test_another_trials_checkpoint_is_refused(tmp_path):
    run_trial(config(train={**TINY_BASE["train"], "epochs": 1}), data_root=tmp_path, device="cpu",
              checkpoint_dir=tmp_path / "trial")
    with pytest.raises(ValueError, match="belongs to another trial"):
        run_trial(config(seed=1), data_root=tmp_path, device="cpu", checkpoint_dir=tmp_path / "trial")
    with pytest.raises(ValueError, match="checkpoint_every must be at least 1"):
        run_trial(config(), data_root=tmp_path, device="cpu", checkpoint_dir=tmp_path / "x", checkpoint_every=0)
