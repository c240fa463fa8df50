"""Shared fixtures: a tiny, valid study written to a temporary folder, and a local Ray for a test module."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

TINY_BASE = {
    "data": {"name": "digit_pair", "source": "digits", "canvas": 32, "first_size": 8, "second_size": 8,
             "train_examples": 128, "test_examples": 64},
    "model": {"backbone": {"name": "small_cnn", "width": 4, "stages": 2}, "head": {"layers": 2, "dim": 8}},
    "method": "simclr",
    "loss": {"name": "nt_xent", "temperature": 0.2},
    "views": {"crop": {"scale": [0.5, 1.0]}},
    "optim": {"name": "adam", "lr": 0.002},
    "train": {"batch_size": 64, "epochs": 2},
    "eval": {"linear": {"targets": ["first_digit", "second_digit"], "steps": 20}},
}


def tiny_study(**changes) -> dict:
    study = {
        "study": "tiny",
        "reproduces": "nothing: a test study",
        "base": TINY_BASE,
        "sweep": {"grid": {"data.second_size": [8, 16]}, "variants": {"t02": {}, "t05": {"loss.temperature": 0.5}},
                  "seeds": [0, 1]},
        "scales": {"small": {"train.epochs": 1}, "smoke": {"sweep.seeds": [0], "sweep.grid.data.second_size": [16]}},
        "report": {"table": {"rows": ["variant", "target"], "columns": "data.second_size", "metric": "linear_acc"}},
    }
    study.update(changes)
    return study


@pytest.fixture
def write_study(tmp_path: Path):
    """``write_study(dict_or_text) -> Path`` of a study file in a temporary folder."""

    def write(content, name: str = "tiny.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs for one test module; shut down and its session folder removed after it."""
    import shutil

    import ray

    context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown(wait_for_processes=True)
    shutil.rmtree(context.address_info["session_dir"], ignore_errors=True)
