"""A local Ray started by the orchestrator: its workers get WORKER_ENV, and no session folder is left once it exits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import ray
from orchestrator.cluster import start_ray
session = start_ray(None)
assert session is not None and session.is_dir(), session
assert start_ray(None) is None  # already started: nothing more to clean

@ray.remote
def timeout():
    import os
    return os.environ.get("TUNE_FUNCTION_THREAD_TIMEOUT_S")

assert ray.get(timeout.remote()) == "60", "the workers' environment"
print(session)
"""


def test_the_session_folder_is_removed_at_exit():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    session = Path(done.stdout.strip().splitlines()[-1])
    assert session.name.startswith("session_"), session
    assert not session.exists(), f"{session} is still there"
