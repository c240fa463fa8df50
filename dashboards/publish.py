"""A report on the MLflow side: which scales of a study have runs, and logging the report to the
study's latest parent run (its files under ``report/``, its summary as the run's description).

MLflow's UI (3.17) renders a ``.md`` artifact as Markdown, but shows an image only when its link is
an absolute ``http(s)`` URL: a relative one (``0_plot.png``) is printed as the text ``[alt](0_plot.png)``
and a ``data:`` URL is dropped. So the logged ``report.md`` points its images at the UI's artifact
route (``<UI>/get-artifact?path=report/0_plot.png&run_uuid=…``), where ``<UI>`` is the tracking
server, or for a local store ``mlflow ui``'s default address (as the report's run links assume);
the ``report.md`` on disk keeps plain relative links.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from urllib.parse import quote

from mlflow import MlflowClient
from mlflow.entities import Run

from dashboards.html import ui_base
from dashboards.report import Report

NOTE = "mlflow.note.content"  # what the MLflow UI shows as a run's description
FOLDER = "report"  # where a parent run holds its report
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^():\s]+)\)")  # ![alt](relative/path), no scheme


def _runs(client: MlflowClient, experiment: str, filter_string: str = ""):
    """Every run of ``experiment`` (by name) matching ``filter_string``, the latest started first."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return
    token = None
    while True:
        page = client.search_runs([found.experiment_id], filter_string=filter_string, max_results=1000,
                                  order_by=["attributes.start_time DESC"], page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _is_parent(run: Run) -> bool:
    """An invocation's run: no trial of its own, no parent above it."""
    tags = run.data.tags
    return "trial_hash" not in tags and "mlflow.parentRunId" not in tags


def study_scales(tracking_uri: str, study: str) -> list[str]:
    """The scales ``study`` has trial runs of (their ``scale`` tag), the most recently run first."""
    scales: dict[str, None] = {}
    for run in _runs(MlflowClient(tracking_uri), study):
        scale = run.data.tags.get("scale")
        if scale and "trial_hash" in run.data.tags:
            scales.setdefault(scale)
    return list(scales)


def latest_parent_run(tracking_uri: str, study: str, scale: str) -> str | None:
    """The id of the study's parent run at ``scale`` started last, or None when it has none."""
    quoted = scale.replace("'", "\\'")
    for run in _runs(MlflowClient(tracking_uri), study, f"tags.scale = '{quoted}'"):
        if _is_parent(run):
            return run.info.run_id
    return None


def ui_markdown(text: str, run_id: str, base: str, folder: str = FOLDER) -> str:
    """``text`` with each relative image link ``![alt](name.png)`` pointing at the artifact route of
    the MLflow UI at ``base`` for ``folder/name.png`` of ``run_id``."""

    def link(match: re.Match) -> str:
        path = quote(f"{folder}/{match[2]}", safe="")
        return f"![{match[1]}]({base}/get-artifact?path={path}&run_uuid={run_id})"

    return _IMAGE.sub(link, text)


def log_report(tracking_uri: str, run_id: str, report: Report) -> None:
    """Log the report's folder under ``report/`` of ``run_id`` and its summary as the run's description.

    The logged ``report.md`` shows its plots in MLflow's artifact viewer (:func:`ui_markdown`).
    Files of an earlier report with the same names are replaced; the run's status is left as it is.
    """
    client = MlflowClient(tracking_uri)
    client.log_artifacts(run_id, str(report.folder), FOLDER)
    markdown = report.folder / "report.md"
    if markdown.is_file():
        with tempfile.TemporaryDirectory() as scratch:
            shown = Path(scratch) / markdown.name
            shown.write_text(ui_markdown(markdown.read_text(), run_id, ui_base(tracking_uri)[0]))
            client.log_artifact(run_id, str(shown), FOLDER)
    client.set_tag(run_id, NOTE, report.summary())
