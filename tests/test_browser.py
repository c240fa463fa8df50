"""A study's report page in a real browser: Debian's headless Chromium renders ``index.html`` built from
hand-logged runs; the rendered DOM must hold the table, the verdicts (coloured) and every image loaded,
and a screenshot must show the verdicts' colours. ``.ci/run`` installs Chromium where it can."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml
from conftest import tiny_study
from mlflow import MlflowClient

from orchestrator.expansion import expand
from orchestrator.spec import load_study
from orchestrator.study_report import report_study

CHROMIUM = os.environ.get("CHROMIUM") or next(
    (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (.ci/run installs Debian's: apt-get "
                                                         "install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
REPORT = {
    "table": {"rows": ["variant", "target"], "columns": "data.second_size", "metric": "linear_acc"},
    "plots": [{"x": "data.second_size", "y": "linear_acc", "hue": "variant", "facet": "target"},
              {"x_metric": "train/loss", "y": "linear_acc", "hue": "variant"}],
    "histograms": {"by": "variant", "bins": 20},
    "labels": {"t02": "SimCLR τ=0.2", "t05": "SimCLR τ=0.5"},
    "chance": {"linear_acc": 10},
}
FINDINGS = [
    {"claim": "τ=0.2 reads the first digit better", "check": {"better": "t02", "than": "t05", "target": "first_digit"}},
    {"claim": "τ=0.5 reads the first digit better", "check": {"better": "t05", "than": "t02", "target": "first_digit"}},
    {"claim": "τ=0.2 falls as the 2nd digit grows",
     "check": {"variant": "t02", "target": "first_digit", "along": "data.second_size", "drop_at_least": 5}},
]
# What the page's script reads from the rendered DOM once everything has loaded.
PROBE = """<script>window.addEventListener("load", () => {
  const style = (e) => getComputedStyle(e).backgroundColor;
  const probe = {
    cells: [...document.querySelectorAll("table.paper-table td.cell")].map((td) => td.innerText),
    headers: [...document.querySelectorAll("table.paper-table th")].map((th) => th.innerText),
    verdicts: [...document.querySelectorAll("ul.findings li")].map((li) => ({
      kind: li.className, text: li.querySelector(".verdict").innerText, colour: style(li.querySelector(".verdict")),
      visible: li.querySelector(".verdict").getBoundingClientRect().width > 0})),
    images: [...document.images].map((img) => ({alt: img.alt, complete: img.complete,
      width: img.naturalWidth, height: img.naturalHeight, shown: img.getBoundingClientRect().width})),
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(probe);
  document.body.append(out);
});</script>"""


def chromium(page: Path, *args: str, timeout: float = 120) -> str:
    profile = page.parent / f"profile-{len(list(page.parent.glob('profile-*')))}"  # a fresh one each time
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The tiny study at smoke (t02 and t05 at one size) with finished, hand-logged runs and saved similarities."""
    root = tmp_path_factory.mktemp("browser")
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_study(report=REPORT, findings=FINDINGS), sort_keys=False))
    study = load_study(path, scale="smoke")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("tiny", artifact_location=str(root / "artifacts"))
    rng = np.random.default_rng(0)
    for index, trial in enumerate(expand(study)):
        run = client.create_run(experiment, tags={"trial_hash": trial.hash}).info.run_id
        for name, value in (("linear_acc/first_digit", 60.0 - 10 * index), ("linear_acc/second_digit", 70.0),
                            ("train/loss", 1.0 + index)):
            client.log_metric(run, name, value)
        folder = root / trial.hash
        folder.mkdir()
        np.savez(folder / "similarities.npz", positive=rng.uniform(0.3, 1, 64).astype(np.float32),
                 negatives=rng.uniform(-0.3, 0.6, (64, 10)).astype(np.float32))
        client.log_artifact(run, str(folder / "similarities.npz"))
        client.set_terminated(run, "FINISHED")
    built = report_study(study, uri, root / "reports")
    page = built.folder / "index.html"
    probed = built.folder / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    return built, probed


def probe(page: Path) -> dict:
    class Probe(HTMLParser):
        found = None

        def handle_starttag(self, tag, attrs):
            self.inside = tag == "pre" and ("id", "probe") in attrs

        def handle_data(self, data):
            if getattr(self, "inside", False):
                self.found = (self.found or "") + data

    parser = Probe()
    parser.feed(chromium(page, "--dump-dom"))
    assert parser.found, "the page's script did not run"
    return json.loads(parser.found)


def test_the_rendered_page_shows_the_table_verdicts_and_every_image(report):
    built, page = report
    seen = probe(page)
    assert len(seen["cells"]) == len(built.table) == 4
    first = next(text for text in seen["cells"] if text.startswith("60.0"))
    assert "n=1/1" in first and "paper (—)" in first
    assert "SimCLR τ=0.2" in seen["headers"] and "16" in seen["headers"]
    verdicts = [(v["kind"], v["text"], v["colour"]) for v in seen["verdicts"]]
    assert verdicts == [("reproduced", "reproduced", "rgb(46, 125, 50)"),
                        ("not-reproduced", "not reproduced", "rgb(198, 40, 40)"),
                        ("not-enough-runs", "not enough runs", "rgb(158, 158, 158)")]
    assert all(v["visible"] for v in seen["verdicts"])
    assert [v.status for v in built.verdicts] == ["reproduced", "not reproduced", "not enough runs"]
    assert [image["alt"] for image in seen["images"]] == [path.stem for path in built.plots]
    assert len(built.plots) == 3, "two plots and the similarity histograms"
    for image, path in zip(seen["images"], built.plots, strict=True):
        header = path.read_bytes()[16:24]  # the PNG's IHDR: width, height
        size = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
        assert image["complete"] and (image["width"], image["height"]) == size, image["alt"]
        assert image["shown"] > 0


def test_a_screenshot_shows_the_verdict_colours(report, tmp_path):
    _, page = report
    shot = tmp_path / "page.png"
    chromium(page, f"--screenshot={shot}", "--window-size=1280,2000")
    pixels = (matplotlib.image.imread(shot)[..., :3] * 255).round().astype(int)
    assert pixels.shape[:2] == (2000, 1280)
    for colour in ((46, 125, 50), (198, 40, 40), (158, 158, 158)):
        assert (np.abs(pixels - colour).sum(axis=-1) <= 6).sum() > 500, f"no verdict badge of colour {colour}"
    if os.environ.get("REPORT_SCREENSHOT"):  # to look at it: REPORT_SCREENSHOT=/some/where.png
        shutil.copy(shot, os.environ["REPORT_SCREENSHOT"])
