"""A training trial's checkpoint: one file, replaced atomically, from which training resumes exactly.

``<checkpoint_dir>/checkpoint.pt`` is ``torch.save`` of a plain dict (format 1), readable
with ``torch.load(path, weights_only=True)``:

=============  =====================================================================
``format``     1
``identity``   ``TrialConfig.identity()`` of the trial that wrote it: another trial's
               checkpoint is refused rather than resumed
``epoch``      epochs finished (counting from 1)
``method``     ``method.state_dict()``: encoder, head, online classifiers, and any
               method state (MoCo's key encoder and queue), batch-norm statistics too
``optimizer``  ``optimizer.state_dict()`` (moments, momentum buffers, current lr)
``schedule``   the learning-rate schedule's ``state_dict()`` (its step count)
``generator``  ``Generator.get_state()`` of the trial's generator: every random draw of
               the epoch loop (order, views, losses' samples) comes from it
``torch_rng``  ``torch.get_rng_state()``; ``cuda_rng``: the trial device's CUDA state
               (``None`` on a CPU)
``metrics``    the last finished epoch's metrics (returned again if nothing is left to run)
``seconds``    training seconds spent so far, over every run of the trial
=============  =====================================================================

The file is written to a temporary name in the same folder, flushed to disk, then renamed
over the old one (``os.replace``): a run killed mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 1


def checkpoint_path(directory: Path | str) -> Path:
    return Path(directory) / CHECKPOINT_FILE


def save_checkpoint(directory: Path | str, state: dict[str, Any]) -> Path:
    """Writes ``state`` as ``directory/checkpoint.pt`` atomically; returns the path."""
    path = checkpoint_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{CHECKPOINT_FILE}.{os.getpid()}.tmp")
    with open(temporary, "wb") as file:
        torch.save(state, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    return path


def load_checkpoint(directory: Path | str) -> dict[str, Any] | None:
    """The checkpoint in ``directory`` (tensors on the CPU), or ``None`` if there is none."""
    path = checkpoint_path(directory)
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path} has checkpoint format {state.get('format')!r}; this trainer reads {FORMAT}")
    return state


def capture(
    *,
    identity: dict,
    epoch: int,
    method: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    metrics: dict[str, float],
    seconds: float,
) -> dict[str, Any]:
    """Everything that training after ``epoch`` depends on, as a checkpoint dict."""
    device = generator.device
    return {
        "format": FORMAT,
        "identity": identity,
        "epoch": epoch,
        "method": method.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "metrics": dict(metrics),
        "seconds": seconds,
    }


def restore(
    state: dict[str, Any],
    *,
    identity: dict,
    method: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> None:
    """Puts a freshly built trial back where ``state`` was taken."""
    if state["identity"] != identity:
        raise ValueError(
            "the checkpoint belongs to another trial (its config differs from this one's); "
            "give each trial its own checkpoint_dir"
        )
    method.load_state_dict(state["method"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and generator.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], generator.device)
