"""The memory-bank method (InstDisc, Wang & Liu's setting): the bank's update, its loss, a real run."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from workers import TrialConfig, run_trial
from workers.losses import HardContrastive
from workers.memory_bank import INDEX, InstanceDiscrimination, MemoryBank
from workers.trainer import train

DIGITS = {
    "data": {"name": "classification", "source": "digits", "size": 16, "train_examples": 200, "test_examples": 100},
    "model": {"backbone": {"name": "small_cnn", "width": 4, "stages": 2}, "head": {"layers": 1, "dim": 8}},
    "method": {"name": "memory_bank"},
    "loss": {"name": "hard_contrastive", "temperature": 0.5, "quantile": 0.1},
    "views": {"crop": {"scale": [0.5, 1.0]}},
    "optim": {"name": "adam", "lr": 0.002},
    "train": {"batch_size": 64, "epochs": 1},
    "eval": {"linear": {"steps": 20}},
}


def config(**changes) -> TrialConfig:
    return TrialConfig.model_validate({**DIGITS, **changes})


def error_of(changes: dict) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        config(**changes)
    detail = caught.value.errors()[0]
    return detail["ctx"]["path"], detail["ctx"]["message"]


def test_bank_update_is_the_formula_by_hand():
    bank = MemoryBank(3, 2)
    bank.features.copy_(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]))
    bank.update(torch.tensor([0, 2]), torch.tensor([[0.0, 2.0], [3.0, 4.0]]), momentum=0.5)
    # Row 0: 0.5·(1, 0) + 0.5·(0, 1) = (0.5, 0.5) → (1, 1)/√2.  Row 2: 0.5·(0, 1) + 0.5·(0.6, 0.8)
    # = (0.3, 0.9) → (1, 3)/√10.  Row 1 is not in the batch: unchanged.
    expected = torch.tensor([[1 / math.sqrt(2), 1 / math.sqrt(2)], [0.6, 0.8], [1 / math.sqrt(10), 3 / math.sqrt(10)]])
    assert torch.allclose(bank.features, expected, atol=1e-7)
    bank.update(torch.tensor([1]), torch.tensor([[-5.0, 0.0]]), momentum=0.0)  # m = 0: the new feature itself
    assert torch.allclose(bank.features[1], torch.tensor([-1.0, 0.0]))
    bank.update(torch.tensor([1]), torch.tensor([[0.0, 7.0]]), momentum=1.0)  # m = 1: never moves
    assert torch.allclose(bank.features[1], torch.tensor([-1.0, 0.0]))


def test_bank_starts_on_the_sphere_from_the_seed():
    torch.manual_seed(4)
    first = MemoryBank(50, 128).features
    torch.manual_seed(4)
    assert torch.equal(first, MemoryBank(50, 128).features)
    assert torch.allclose(first.norm(dim=1), torch.ones(50), atol=1e-6)
    with pytest.raises(ValueError, match="at least 2 entries"):
        MemoryBank(1, 8)


def built(trial: TrialConfig, tmp_path) -> InstanceDiscrimination:
    torch.manual_seed(trial.seed)
    return trial.method.build(trial, trial.data.build(tmp_path, torch.device("cpu")))


@pytest.mark.parametrize("loss", [{"name": "nt_xent", "temperature": 0.3}, DIGITS["loss"]])
def test_step_contrasts_with_the_bank_then_moves_it(tmp_path, loss):
    trial = config(loss=loss)
    method = built(trial, tmp_path)
    dataset = trial.data.build(tmp_path, torch.device("cpu"))
    index = torch.tensor([5, 0, 17, 3])
    captured = []
    method.head.register_forward_hook(lambda module, inputs, output: captured.append(output.detach()))
    before = method.bank.features.clone()
    labels = {"class": dataset.train.labels["class"][index], INDEX: index}
    loss_value, online = method.training_loss(dataset.train.images(index), labels, torch.Generator().manual_seed(0))
    z = torch.nn.functional.normalize(captured[0], dim=1).double()
    similarity = z @ before.double().T  # every bank entry, the anchor's own included
    if loss["name"] == "nt_xent":
        # InstDisc's softmax over the whole bank, the positive = the anchor's own entry (the code's PointLoss).
        tau = loss["temperature"]
        rows = [(similarity[i, j].item(), similarity[i].div(tau).exp().sum().item()) for i, j in enumerate(index)]
        expected = sum(-math.log(math.exp(positive / tau) / everything) for positive, everything in rows) / len(index)
    else:  # positive = own entry; negatives = the other 199, of which the top ⌈0.1 · 199⌉ = 20
        total = 0.0
        for i, j in enumerate(index.tolist()):
            negatives = sorted((s for k, s in enumerate(similarity[i].tolist()) if k != j), reverse=True)[:20]
            positive = similarity[i, j].item()
            total += -positive / 0.5 + math.log(math.exp(positive / 0.5) + sum(math.exp(s / 0.5) for s in negatives))
        expected = total / len(index)
    assert loss_value.item() == pytest.approx(expected, rel=1e-5)
    assert online.item() == 0.0
    assert torch.equal(method.bank.features, before)  # the loss reads the bank; it moves only after the step
    method.after_step()
    moved = torch.nn.functional.normalize(0.5 * before[index] + 0.5 * z.float(), dim=1)
    assert torch.allclose(method.bank.features[index], moved, atol=1e-6)
    others = torch.ones(200, dtype=torch.bool)
    others[index] = False
    assert torch.equal(method.bank.features[others], before[others])


def test_config_picks_losses_and_checks_them(tmp_path):
    method = built(config(loss={"name": "nt_xent", "temperature": 0.2, "negatives": "cross_view"}), tmp_path)
    assert isinstance(method.loss, HardContrastive) and (method.loss.temperature, method.loss.top_k) == (0.2, None)
    assert method.bank.features.shape == (200, 8) and method.momentum == 0.5
    assert "bank.features" in method.state_dict()  # so checkpoints carry it
    # nt_xent's negatives is not read: out of the identity.
    assert "negatives" not in config(loss={"name": "nt_xent", "negatives": "cross_view"}).identity()["loss"]
    path, message = error_of({"loss": {"name": "generalized"}})
    assert path == "loss" and "not generalized" in message
    path, message = error_of({"loss": {"name": "hard_simple"}})  # the paper's K = 4095 of 199 negatives
    assert path == "loss.top_k" and "4095 keeps every one of the bank's 199 negatives" in message
    assert config(loss={"name": "hard_simple", "top_k": 20}).loss.top_k == 20
    assert built(config(method={"name": "memory_bank", "momentum": 0.9}), tmp_path).momentum == 0.9


def test_trainer_hands_every_batch_its_rows(tmp_path):
    trial = config()
    method = built(trial, tmp_path)
    dataset = trial.data.build(tmp_path, torch.device("cpu"))
    before = method.bank.features.clone()
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(200, generator=torch.Generator().manual_seed(0))  # the trainer's first draw
    metrics = train(method, dataset.train, trial, generator)
    assert math.isfinite(metrics["train/loss"])
    changed = (method.bank.features != before).any(dim=1)
    # 3 batches of 64 of the 200 images: exactly those 192 rows moved, the last 8 (dropped) did not.
    assert changed.sum().item() == 192 and not changed[order[192:]].any()


def test_one_epoch_on_digits_then_resume(tmp_path):
    metrics = run_trial(config(), data_root=tmp_path, device="cpu")
    assert math.isfinite(metrics["train/loss"]) and 0 <= metrics["linear_acc/class"] <= 100
    # Two epochs at once equal one, a checkpoint (the bank in it), then the second.
    trial = config(train={"batch_size": 64, "epochs": 2})
    straight = run_trial(trial, data_root=tmp_path, device="cpu")

    class Stop(Exception):
        pass

    def stop(epoch, _):
        raise Stop

    with pytest.raises(Stop):
        run_trial(trial, data_root=tmp_path, device="cpu", on_epoch=stop, checkpoint_dir=tmp_path / "ckpt")
    resumed = run_trial(trial, data_root=tmp_path, device="cpu", checkpoint_dir=tmp_path / "ckpt")
    assert resumed["train/loss"] == straight["train/loss"]
    assert resumed["linear_acc/class"] == pytest.approx(straight["linear_acc/class"], abs=1e-6)
