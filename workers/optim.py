"""Optimisers and the learning-rate schedule (linear warm-up, then cosine, linear or no decay).

``adam`` is AdamW (Loshchilov & Hutter 2019): weight decay is *decoupled*, w ← w − lr·λ·w
beside the Adam step. ``adam_l2`` is Adam with *coupled* L2 decay (``torch.optim.Adam``'s
``weight_decay``): λ·w is added to the gradient before the moments, g ← ∇w + λw, as a Keras
kernel regulariser does. Keras ``l2(c)`` adds c·‖w‖² to the loss, whose gradient is 2c·w, so
it is ``adam_l2`` with ``weight_decay = 2c`` (the Intriguing Properties notebooks: c = 1e-4).

LARS (You et al. 2017) is what SimCLR trains with at large batch sizes: each layer's step is
rescaled by the trust ratio η‖w‖ / ‖∇w + λw‖. As in SimCLR, biases and batch-norm parameters
get neither weight decay nor the trust ratio.

Learning rate scaled with the batch size B (SimCLR, Table B.1 and footnote 10), ``lr_scaling``:
``none`` uses ``lr`` as it is; ``linear`` uses lr·B/256 (the paper's LearningRate =
0.3 × BatchSize/256 is ``lr: 0.3``); ``sqrt`` uses lr·√B (LearningRate = 0.075 × √BatchSize
is ``lr: 0.075``). The scaled rate is the base rate of the schedule below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from workers.registry import Section


class OptimConfig(Section):
    name: Literal["sgd", "adam", "adam_l2", "lars"] = Field(
        "adam", description="adam: AdamW (decoupled decay); adam_l2: Adam with L2 decay added to the gradient"
    )
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd and lars")
    weight_decay: float = Field(1e-6, ge=0)
    warmup_epochs: float = Field(0, ge=0)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    lr_scaling: Literal["none", "linear", "sqrt"] = Field(
        "none", description="base rate from the batch size B: none lr; linear lr·B/256; sqrt lr·√B (Table B.1)"
    )

    def scaled_lr(self, batch_size: int | None) -> float:
        """The base learning rate for batches of ``batch_size``: lr, lr·B/256 or lr·√B (``lr_scaling``)."""
        if self.lr_scaling == "none":
            return self.lr
        if batch_size is None or batch_size < 1:
            raise ValueError(f"optim.lr_scaling={self.lr_scaling} needs the batch size, got {batch_size}")
        return self.lr * (batch_size / 256 if self.lr_scaling == "linear" else math.sqrt(batch_size))

    def build(
        self,
        model: nn.Module,
        steps_per_epoch: int,
        epochs: int,
        exempt: Iterable[nn.Parameter] = (),
        *,
        batch_size: int | None = None,
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        """The optimiser and a per-step ``LambdaLR`` schedule.

        ``exempt`` parameters get no weight decay (nor LARS's trust ratio), whatever their shape.
        ``batch_size``: what ``lr_scaling`` scales the rate by (needed unless it is ``none``).
        """
        lr = self.scaled_lr(batch_size)
        decayed, undecayed = _split_decay(model, exempt)
        groups = [
            {"params": decayed, "weight_decay": self.weight_decay},
            {"params": undecayed, "weight_decay": 0.0, "lars_exempt": True},
        ]
        if self.name == "adam":
            optimizer: torch.optim.Optimizer = torch.optim.AdamW(groups, lr=lr)
        elif self.name == "adam_l2":
            optimizer = torch.optim.Adam(groups, lr=lr)  # each group's weight_decay is coupled
        elif self.name == "sgd":
            optimizer = torch.optim.SGD(groups, lr=lr, momentum=self.momentum)
        else:
            optimizer = LARS(groups, lr=lr, momentum=self.momentum)
        total = max(1, steps_per_epoch * epochs)
        warmup = round(self.warmup_epochs * steps_per_epoch)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, warmup, total, self.schedule)
        )
        return optimizer, schedule


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total_steps``.

    Warm-up rises linearly, (step + 1) / W, for the first W steps. With progress
    p = (step − W) / (T − W) after it: ``cosine`` is ½(1 + cos πp), ``linear`` is 1 − p (Keras
    ``PolynomialDecay(lr, T, end_learning_rate=0, power=1)`` when W = 0: the last step, T − 1,
    runs at lr/T and the rate would reach 0 at step T), ``constant`` is 1.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1 + math.cos(math.pi * progress))


def _split_decay(
    model: nn.Module, exempt: Iterable[nn.Parameter] = ()
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Weights of convolutions and linear layers get decay; biases, norm parameters and ``exempt`` do not."""
    excluded = {id(parameter) for parameter in exempt}
    decayed, undecayed = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decayed if parameter.ndim > 1 and id(parameter) not in excluded else undecayed).append(parameter)
    return decayed, undecayed


class LARS(torch.optim.Optimizer):
    r"""SGD with momentum where each parameter's update is scaled by its trust ratio.

    .. math::
        g \leftarrow \nabla w + \lambda w,\quad
        g \leftarrow \eta \frac{\lVert w\rVert}{\lVert g\rVert}\, g,\quad
        v \leftarrow \mu v + \text{lr}\cdot g,\quad w \leftarrow w - v

    The learning rate sits inside the momentum buffer, as in SimCLR's implementation (it
    differs from ``w -= lr·v`` while the schedule changes lr). Groups with
    ``lars_exempt=True`` skip the trust ratio. The ratio is 1 when either norm is 0.
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 1e-3):
        if lr <= 0 or eta <= 0:
            raise ValueError(f"lr and eta must be positive, got lr={lr}, eta={eta}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for w in group["params"]:
                if w.grad is None:
                    continue
                g = w.grad.add(w, alpha=group["weight_decay"])
                if not group.get("lars_exempt", False):
                    w_norm, g_norm = torch.linalg.norm(w), torch.linalg.norm(g)
                    trust = torch.where(
                        (w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm, torch.ones_like(w_norm)
                    )
                    g = g.mul(trust)
                state = self.state[w]
                velocity = state.get("velocity")
                if velocity is None:
                    velocity = state["velocity"] = torch.zeros_like(w)
                velocity.mul_(group["momentum"]).add_(g, alpha=group["lr"])
                w.sub_(velocity)
        return loss
