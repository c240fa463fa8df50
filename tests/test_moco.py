"""MoCo (He et al. 2020): the momentum update, the key queue, InfoNCE against the queue, a tiny run."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_BASE
from pydantic import ValidationError
from torch import nn

from workers import TrialConfig, run_trial
from workers.moco import KeyQueue, MoCo, momentum_update, queue_info_nce

MOCO = {"name": "moco", "momentum": 0.9, "queue_size": 128}


def config(**changes) -> TrialConfig:
    return TrialConfig.model_validate({**TINY_BASE, "method": MOCO, **changes})


def error_path(error: ValidationError) -> tuple[str, str]:
    detail = error.errors()[0]
    return detail["ctx"]["path"], detail["ctx"]["message"]


def test_momentum_update_is_the_formula():
    torch.manual_seed(0)
    query, key = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.detach().clone() for p in key.parameters()]
    momentum_update(key, query, 0.75)
    for updated, old, q in zip(key.parameters(), before, query.parameters(), strict=True):
        assert torch.allclose(updated, 0.75 * old + 0.25 * q, atol=1e-7)


def test_queue_holds_the_last_keys_in_order():
    queue = KeyQueue(size=5, dim=2)
    batches = [torch.arange(2 * b, 2 * b + 2, dtype=torch.float32)[:, None].repeat(1, 2) for b in range(4)]
    for keys in batches:  # 8 keys through a queue of 5: it wraps, and 5 is not a multiple of 2
        queue.push(keys)
    assert torch.equal(queue.ordered(), torch.cat(batches)[-5:])
    assert int(queue.pointer) == 8 % 5
    with pytest.raises(ValueError, match="cannot push 6 keys into a queue of 5"):
        queue.push(torch.zeros(6, 2))


def test_queue_info_nce_equals_a_loop_over_anchors():
    generator = torch.Generator().manual_seed(1)
    q, k = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    queue = F.normalize(torch.randn(6, 3, generator=generator), dim=1)
    temperature = 0.3
    total = 0.0
    for i in range(4):
        qi, ki = q[i] / q[i].norm(), k[i] / k[i].norm()
        positive = math.exp(float(qi @ ki) / temperature)
        negatives = sum(math.exp(float(qi @ key) / temperature) for key in queue)
        total += -math.log(positive / (positive + negatives))
    assert queue_info_nce(q, k, queue, temperature).item() == pytest.approx(total / 4, rel=1e-5)


def test_key_encoder_is_not_optimised():
    trial = config()
    method = MoCo(nn.Linear(2, 2), nn.Identity(), trial.views, temperature=0.2, momentum=0.9, queue_size=4, key_dim=2)
    optimizer, _ = trial.optim.build(method, steps_per_epoch=1, epochs=1)
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    keys = [*method.key_encoder.parameters(), *method.key_head.parameters()]
    assert keys and not any(p.requires_grad for p in keys)
    assert not optimised & {id(p) for p in keys}
    assert optimised == {id(p) for p in method.encoder.parameters()}
    pairs = zip(method.key_encoder.parameters(), method.encoder.parameters(), strict=True)
    assert all(torch.equal(k, q) for k, q in pairs)  # a copy of the query encoder to begin with


def test_config_checks_queue_size_and_loss():
    with pytest.raises(ValidationError) as small:
        config(method={**MOCO, "queue_size": 32})
    assert error_path(small.value) == (
        "method.queue_size", "32 is less than train.batch_size 64; the queue must hold at least one batch of keys"
    )
    with pytest.raises(ValidationError) as generalized:
        config(loss={"name": "generalized"})
    assert error_path(generalized.value)[0] == "loss"
    cross_view = config(loss={"name": "nt_xent", "temperature": 0.2, "negatives": "cross_view"})
    assert cross_view.identity() == config().identity()  # moco's negatives are its queue, whatever loss says
    defaults = TrialConfig.model_validate({**TINY_BASE, "method": "moco"}).method
    assert (defaults.momentum, defaults.queue_size) == (0.99, 4096)


def test_tiny_run_trains_and_the_key_encoder_follows_the_ema(tmp_path, monkeypatch):
    steps: list[tuple[MoCo, list[torch.Tensor], list[torch.Tensor]]] = []
    original = MoCo.after_step

    def recording(self: MoCo) -> None:
        query = [p.detach().clone() for p in [*self.encoder.parameters(), *self.head.parameters()]]
        key = [p.detach().clone() for p in [*self.key_encoder.parameters(), *self.key_head.parameters()]]
        steps.append((self, query, key))
        original(self)

    monkeypatch.setattr(MoCo, "after_step", recording)
    epochs = []
    metrics = run_trial(config(), data_root=tmp_path, device="cpu", on_epoch=lambda e, m: epochs.append(m))
    assert len(epochs) == 2 and all(math.isfinite(m["train/loss"]) for m in epochs)
    assert 0 <= metrics["linear_acc/first_digit"] <= 100
    assert len(steps) == 4  # 128 examples / 64, two epochs
    method = steps[0][0]
    expected = copy.deepcopy(steps[0][2])  # θ_k before the first update: the untrained query encoder
    for _, query, _ in steps:
        expected = [0.9 * k + 0.1 * q for k, q in zip(expected, query, strict=True)]
    final_key = [*method.key_encoder.parameters(), *method.key_head.parameters()]
    final_query = [*method.encoder.parameters(), *method.head.parameters()]
    for key, want in zip(final_key, expected, strict=True):
        assert torch.allclose(key, want, atol=1e-6)
    assert any(not torch.allclose(k, q) for k, q in zip(final_key, final_query, strict=True))
