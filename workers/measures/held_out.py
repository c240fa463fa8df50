"""Held-out pairs: two views of a fixed set of test images, drawn apart from training.

Every measurement that needs random numbers (which test images, which crops) takes them from
a generator of its own, ``measurement_generator(seed)``, seeded with the trial's seed plus
``MEASUREMENT_SEED_OFFSET`` and made afresh at every call. So switching a measurement on never
moves the trial's training generator (nor, through :func:`evaluating`, torch's global one):
training computes exactly what it computes without it. And every call draws the *same* pairs:
the per-epoch diagnostics follow one fixed set of held-out pairs through training, the pairs
need no checkpointed state, and a resumed trial measures what an uninterrupted one does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from workers.data.base import Split
from workers.views import ViewsConfig

if TYPE_CHECKING:
    from workers.methods import Method

MEASUREMENT_SEED_OFFSET = 1_000_003  # a measurement's generator: seed + this, never the training stream
Space = Literal["z", "h"]  # z = g(f(x)), the projection the loss sees; h = f(x), the representation


def measurement_generator(seed: int, device: torch.device) -> torch.Generator:
    """A fresh generator on ``device`` for measurements, separate from the trial's training generator."""
    return torch.Generator(device=device).manual_seed(seed + MEASUREMENT_SEED_OFFSET)


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode under ``no_grad``, torch's global random state untouched.

    Every submodule's own train/eval flag is restored afterwards (not one flag for all), and
    the global CPU (and the module's CUDA device's) random state is forked, so that a view
    transform or layer that draws from the global stream leaves training's draws as they were.
    """
    modes = [(child, child.training) for child in module.modules()]
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            module.eval()
            yield
    finally:
        for child, training in modes:
            child.training = training


def held_out_pairs(
    method: Method, split: Split, views: ViewsConfig, count: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(first views, second views, index) of ``min(count, len(split))`` images of ``split``.

    The images are a random subset (sorted by index) and each gets two views made as training
    makes them: with the trial's ``views`` config, the second with ``views.second_branch()``
    (crop and flip alone with ``asymmetric`` views), through ``method.view`` (so fixed channels
    stay fixed), all drawn from :func:`measurement_generator`.
    """
    device = next(iter(split.labels.values())).device
    generator = measurement_generator(seed, device)
    index = torch.randperm(len(split), device=device, generator=generator)[:count].sort().values
    images = split.images(index)
    # As training makes them: views.pair's two cuts, CMC's channel groups, or two views (workers.methods).
    # A dataset whose second view is another input (Colorful-Moving-MNIST) hands it in as training does.
    first, second = method.pair(images, views, generator, second_images=split.second_view(index))
    return first, second, index


def project(method: Method, images: torch.Tensor, space: Space, batch_size: int, branch: int = 0) -> torch.Tensor:
    """f(images) in ``space`` (float32 [N, dim]) by the encoder (and head) reading view ``branch`` of a pair
    (``Method.branch``: the same for every method but CMC); call it inside :func:`evaluating`.

    ``z`` is the method's projection head applied to h; a method without a head (supervised,
    random_init) has z = h, as a model with ``head.layers: 0``.
    """
    encoder, head = method.branch(branch)
    head = head if space == "z" else None
    outputs = []
    for chunk in images.split(batch_size):
        h = encoder(chunk)
        outputs.append(h if head is None else head(h))
    return torch.cat(outputs).float()


def project_features(method: Method, h: torch.Tensor, space: Space, batch_size: int) -> torch.Tensor:
    """Cached representations h mapped into ``space`` (z = g(h)); call it inside :func:`evaluating`."""
    head = projection_head(method) if space == "z" else None
    if head is None:
        return h
    return torch.cat([head(chunk) for chunk in h.split(batch_size)]).float()


def projection_head(method: Method) -> nn.Module | None:
    """The method's projection head g, or None for methods without one."""
    head = getattr(method, "head", None)
    return head if isinstance(head, nn.Module) else None
