"""Datasets built once per process (workers.data.cache) and reused by run_trial."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_BASE

from workers import TrialConfig, run_trial
from workers.data import cache


def config(seed: int = 0, **data) -> TrialConfig:
    tiny = {**TINY_BASE, "data": {**TINY_BASE["data"], **data}, "train": {"batch_size": 64, "epochs": 1},
            "eval": {"linear": {"targets": ["first_digit"], "steps": 5}}}
    return TrialConfig.model_validate({**tiny, "seed": seed})


@pytest.fixture(autouse=True)
def builds(monkeypatch):
    """The data configs each build of the cache was for, in order; an empty cache before and after."""
    cache.clear()
    seen = []
    real = cache.build

    def counting(data_config, data_root, device):
        seen.append(data_config)
        return real(data_config, data_root, device)

    monkeypatch.setattr(cache, "build", counting)
    yield seen
    cache.clear()


def test_trials_with_one_data_config_build_it_once(tmp_path, builds):
    run_trial(config(seed=0), data_root=tmp_path, device="cpu")
    run_trial(config(seed=1), data_root=tmp_path, device="cpu")  # another trial, same data
    assert len(builds) == 1
    run_trial(config(seed=0, second_size=16), data_root=tmp_path, device="cpu")
    assert [b.second_size for b in builds] == [8, 16]


def test_a_cached_dataset_gives_the_trial_the_result_of_a_fresh_build(tmp_path, builds):
    fresh = run_trial(config(seed=3), data_root=tmp_path, device="cpu")
    run_trial(config(seed=4), data_root=tmp_path, device="cpu")  # uses (and must not change) the cached one
    cached = run_trial(config(seed=3), data_root=tmp_path, device="cpu")
    assert len(builds) == 1
    timed = {"train/seconds", "train/epoch_seconds"}
    assert cached.keys() == fresh.keys()
    assert {k: v for k, v in cached.items() if k not in timed} == {k: v for k, v in fresh.items() if k not in timed}
    # The cached splits still hold what a fresh build makes.
    kept = cache.cached_dataset(config().data, tmp_path, torch.device("cpu"))
    rebuilt = config().data.build(tmp_path, torch.device("cpu"))
    for name in ("train", "test"):
        old, new = getattr(kept, name), getattr(rebuilt, name)
        index = torch.arange(len(new))
        assert torch.equal(old.images(index), new.images(index))
        assert old.labels.keys() == new.labels.keys()
        assert all(torch.equal(old.labels[t], new.labels[t]) for t in new.labels)


def test_the_cache_keeps_the_last_two_datasets(tmp_path, builds):
    device = torch.device("cpu")
    first, second, third = (config(second_size=size).data for size in (8, 12, 16))
    a = cache.cached_dataset(first, tmp_path, device)
    cache.cached_dataset(second, tmp_path, device)
    assert cache.cached_dataset(first, tmp_path, device) is a  # used last: kept
    cache.cached_dataset(third, tmp_path, device)  # pushes out the least recently used: second
    assert cache.cached_dataset(first, tmp_path, device) is a
    cache.cached_dataset(second, tmp_path, device)
    assert [b.second_size for b in builds] == [8, 12, 16, 12]


def test_the_key_fills_defaults_and_tells_roots_and_devices_apart(tmp_path):
    plain = config().data
    default_seed = type(plain).model_fields["seed"].default
    explicit = type(plain).model_validate({**TINY_BASE["data"], "seed": default_seed})
    assert "seed" not in TINY_BASE["data"]
    assert cache.cache_key(plain, tmp_path, "cpu") == cache.cache_key(explicit, tmp_path, torch.device("cpu"))
    assert cache.cache_key(plain, tmp_path, "cpu") != cache.cache_key(plain, tmp_path / "other", "cpu")
    assert cache.cache_key(plain, tmp_path, "cpu") != cache.cache_key(plain, tmp_path, "meta")
    assert cache.cache_key(plain, tmp_path, "cpu") != cache.cache_key(config(first_size=12).data, tmp_path, "cpu")
