"""LARS and the warm-up + cosine schedule, against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from workers.optim import LARS, OptimConfig, lr_factor


def test_lars_step_matches_hand_computation():
    w = nn.Parameter(torch.tensor([[3.0, 4.0]]))  # ‖w‖ = 5
    optimizer = LARS([{"params": [w], "weight_decay": 0.1}], lr=0.5, momentum=0.9, eta=0.001)
    w.grad = torch.tensor([[1.0, 0.0]])
    optimizer.step()
    g = [1.0 + 0.1 * 3.0, 0.0 + 0.1 * 4.0]  # gradient plus weight decay
    trust = 0.001 * 5.0 / math.hypot(*g)
    first = [3.0 - 0.5 * trust * g[0], 4.0 - 0.5 * trust * g[1]]
    assert w.detach()[0].tolist() == pytest.approx(first, rel=1e-6)

    # The schedule lowers lr; SimCLR's LARS keeps the old rate in the momentum buffer.
    optimizer.param_groups[0]["lr"] = 0.25
    w.grad = torch.tensor([[0.0, 2.0]])
    optimizer.step()
    g2 = [0.1 * first[0], 2.0 + 0.1 * first[1]]
    trust2 = 0.001 * math.hypot(*first) / math.hypot(*g2)
    velocity = [0.9 * 0.5 * trust * g[i] + 0.25 * trust2 * g2[i] for i in range(2)]
    second = [first[i] - velocity[i] for i in range(2)]
    assert w.detach()[0].tolist() == pytest.approx(second, rel=1e-6)


def test_lars_exempt_groups_take_plain_momentum_steps():
    b = nn.Parameter(torch.tensor([1.0, -1.0]))
    optimizer = LARS([{"params": [b], "weight_decay": 0.0, "lars_exempt": True}], lr=0.1)
    b.grad = torch.tensor([2.0, 4.0])
    optimizer.step()
    assert b.detach().tolist() == pytest.approx([0.8, -1.4])


def test_optimizer_exempts_biases_and_norms_from_decay():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    optimizer, _ = OptimConfig(name="lars", lr=1.0, weight_decay=1e-4).build(model, 10, 2)
    decayed, exempt = optimizer.param_groups
    assert [p.shape for p in decayed["params"]] == [torch.Size([4, 3])]
    assert decayed["weight_decay"] == 1e-4 and exempt["weight_decay"] == 0.0 and exempt["lars_exempt"]


def test_warmup_then_cosine():
    assert lr_factor(0, 10, 110, "cosine") == pytest.approx(0.1)
    assert lr_factor(9, 10, 110, "cosine") == pytest.approx(1.0)
    assert lr_factor(10, 10, 110, "cosine") == pytest.approx(1.0)
    assert lr_factor(60, 10, 110, "cosine") == pytest.approx(0.5)
    assert lr_factor(110, 10, 110, "cosine") == pytest.approx(0.0)
    assert lr_factor(50, 0, 100, "constant") == 1.0


def test_schedule_drives_the_optimizer():
    model = nn.Linear(2, 2)
    optimizer, schedule = OptimConfig(name="sgd", lr=0.4, warmup_epochs=1).build(model, steps_per_epoch=4, epochs=2)
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert rates[4:] == pytest.approx([0.4 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)])


def test_linear_decay_reaches_zero_after_the_last_step():
    # Keras PolynomialDecay(lr, T, end_learning_rate=0, power=1): lr·(1 - step/T).
    assert [lr_factor(s, 0, 4, "linear") for s in range(5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    # After a warm-up of W steps the decay runs over the T - W steps left.
    assert lr_factor(1, 2, 10, "linear") == pytest.approx(1.0)
    assert lr_factor(2, 2, 10, "linear") == pytest.approx(1.0)
    assert lr_factor(6, 2, 10, "linear") == pytest.approx(0.5)
    assert lr_factor(9, 2, 10, "linear") == pytest.approx(1 / 8)


def test_linear_schedule_drives_the_optimizer():
    optimizer, schedule = OptimConfig(name="adam_l2", lr=1e-3, schedule="linear").build(nn.Linear(2, 2), 3, 2)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([1e-3 * (1 - k / 6) for k in range(6)])


def naive_adam(w: torch.Tensor, grads: list[torch.Tensor], lr: float, l2: float) -> torch.Tensor:
    """Kingma & Ba's Adam on the gradient of loss + l2/2·‖w‖², one element at a time."""
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    w = w.clone().double()
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    for t, grad in enumerate(grads, start=1):
        for i in range(w.numel()):
            g = float(grad.view(-1)[i]) + l2 * float(w.view(-1)[i])  # the decay is in the gradient
            m.view(-1)[i] = beta1 * m.view(-1)[i] + (1 - beta1) * g
            v.view(-1)[i] = beta2 * v.view(-1)[i] + (1 - beta2) * g * g
            m_hat, v_hat = m.view(-1)[i] / (1 - beta1**t), v.view(-1)[i] / (1 - beta2**t)
            w.view(-1)[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return w.float()


def test_adam_l2_couples_the_decay_into_the_gradient():
    model = nn.Linear(3, 2)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer, _ = OptimConfig(name="adam_l2", lr=0.01, weight_decay=0.3, schedule="constant").build(model, 1, 1)
    generator = torch.Generator().manual_seed(0)
    grads = {name: [torch.randn(p.shape, generator=generator) for _ in range(3)]
             for name, p in model.named_parameters()}
    for step in range(3):
        for name, p in model.named_parameters():
            p.grad = grads[name][step].clone()
        optimizer.step()
    # Weights are decayed through the gradient; the bias is exempt.
    assert torch.allclose(model.weight, naive_adam(start["weight"], grads["weight"], 0.01, 0.3), atol=1e-6)
    assert torch.allclose(model.bias, naive_adam(start["bias"], grads["bias"], 0.01, 0.0), atol=1e-6)
    # Which is not AdamW's decoupled decay (``adam``), whose meaning is kept.
    decoupled = nn.Linear(3, 2)
    decoupled.load_state_dict({name: value.clone() for name, value in start.items()})
    adamw, _ = OptimConfig(name="adam", lr=0.01, weight_decay=0.3, schedule="constant").build(decoupled, 1, 1)
    assert isinstance(adamw, torch.optim.AdamW) and isinstance(optimizer, torch.optim.Adam)
    for step in range(3):
        for name, p in decoupled.named_parameters():
            p.grad = grads[name][step].clone()
        adamw.step()
    assert not torch.allclose(decoupled.weight, model.weight, atol=1e-5)


def test_exempt_parameters_get_no_decay():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    optimizer, _ = OptimConfig(name="adam_l2", weight_decay=0.1).build(model, 1, 1, exempt=model[1].parameters())
    decayed, undecayed = optimizer.param_groups
    assert [p.shape for p in decayed["params"]] == [torch.Size([4, 3])]
    assert any(p is model[1].weight for p in undecayed["params"]) and undecayed["weight_decay"] == 0.0
