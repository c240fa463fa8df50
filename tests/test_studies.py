"""Every study file in studies/ loads and expands at every scale it declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.expansion import expand, unique
from orchestrator.spec import PAPER, load_study

STUDIES = sorted((Path(__file__).parent.parent / "studies").rglob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_loads_at_every_scale(path):
    study = load_study(path)
    assert study.spec.reference is not None, "a study carries the paper's numbers (or says why not)"
    for scale in [PAPER, *study.spec.scales]:
        cells = expand(load_study(path, scale=scale))
        assert cells, f"{path.name} @ {scale} has no trials"


def test_flagship_smoke_runs_on_bundled_data_only():
    smoke = load_study(Path(__file__).parent.parent / "studies" / "feature_suppression.yaml", scale="smoke")
    cells = expand(smoke)
    assert {cell.config.data.source for cell in cells} == {"digits"}
    assert {cell.variant for cell in cells} == {"simclr_t005", "simclr_t02", "supervised", "random_net"}
    assert len(cells) == 12
    assert len(unique(cells)) == 12
