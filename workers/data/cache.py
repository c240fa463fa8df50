"""Datasets built once per worker process and reused by the trials that read the same data.

A study's trials mostly share one data config (they vary the method, the loss, the seed), and
building a dataset (reading its source, rendering the canvases, moving tensors to the device)
costs seconds a trial. ``cached_dataset`` keeps the last ``CACHE_SIZE`` datasets this process
built, keyed by

    (the data config's class, its canonical JSON with defaults filled, data_root, device)

so a worker that trains several trials (Ray Tune with ``reuse_actors``, or a loop calling
``run_trial``) builds each once. A dataset is a pure function of that key: builds draw from
generators seeded by the data config, never from the trial's seed or torch's global generator.

Cached datasets are shared, so they must stay immutable in use: ``Dataset`` is a frozen
dataclass, and the trainer, methods and evaluation only index the splits' tensors (indexing
copies; the in-place ops of ``Split.images`` act on those copies). Nothing writes to a split's
tensors or attributes today; a component that did would change later trials' data.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import torch

from workers.data.base import Dataset, DatasetConfig

CACHE_SIZE = 2  # datasets kept per process: enough for a study alternating two data configs

Key = tuple[str, str, str, str]
_cache: OrderedDict[Key, Dataset] = OrderedDict()


def build(config: DatasetConfig, data_root: Path, device: torch.device) -> Dataset:
    """Builds one dataset (the cache's one call into the data configs)."""
    return config.build(data_root, device)


def cache_key(config: DatasetConfig, data_root: Path | str, device: torch.device | str) -> Key:
    """What a built dataset depends on: the config's class and every field (defaults included)."""
    kind = f"{type(config).__module__}.{type(config).__qualname__}"
    fields = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return kind, fields, str(Path(data_root).resolve()), str(torch.device(device))


def cached_dataset(config: DatasetConfig, data_root: Path | str, device: torch.device) -> Dataset:
    """``config.build(data_root, device)``, from this process's cache when it built it recently."""
    key = cache_key(config, data_root, device)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    dataset = build(config, Path(data_root), device)
    _cache[key] = dataset
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)  # the least recently used goes first
    return dataset


def clear() -> None:
    """Forgets every cached dataset (their tensors are freed once no trial holds them)."""
    _cache.clear()

