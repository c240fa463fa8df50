"""torchvision (whose import pulls in torch._dynamo, 1-2 s) is imported only where a ResNet is built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
import orchestrator.cli, workers.tune_adapter
from workers.backbones import BACKBONES
assert "torchvision" not in sys.modules, "the driver or a worker imported torchvision before any ResNet"
BACKBONES["resnet18"](name="resnet18").build(3, 32)
assert "torchvision" in sys.modules
"""


def test_torchvision_is_imported_only_to_build_a_resnet():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
