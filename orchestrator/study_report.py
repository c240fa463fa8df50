"""A study's report from its store: its cells (a grid's, or a search's sampled trials) against their runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from dashboards.report import Report, build_report, leading_comments
from dashboards.runs import trial_runs
from orchestrator.expansion import Trial, expand
from orchestrator.spec import Study
from orchestrator.tracking import Tracker
from workers.trainer import TARGET_METRICS


def report_study(
    study: Study, tracking_uri: str, reports_root: Path | str = "reports", cells: list[Trial] | None = None
) -> Report:
    """The study's tables, plots and findings from whatever runs have finished."""
    if study.spec.search is not None:
        frame = searched_cells(tracking_uri, study)
    else:
        cells = cells if cells is not None else expand(study)
        frame = pd.DataFrame([{**trial.labels(), "trial_hash": trial.hash} for trial in cells])
    linear = study.base.eval.linear
    return build_report(
        study=study.name,
        scale=study.scale,
        reproduces=study.spec.reproduces,
        cells=frame,
        runs=trial_runs(tracking_uri, study.name),
        targets=(linear.targets if linear and linear.targets else list(study.base.data.targets)),
        target_metrics=set(TARGET_METRICS),
        spec=study.spec.report,
        reference=study.spec.reference,
        findings=study.spec.findings,
        folder=Path(reports_root) / study.name / study.scale,
        description=leading_comments(study.path),
        tracking_uri=tracking_uri,
        reports_root=Path(reports_root),
    )


def searched_cells(tracking_uri: str, study: Study) -> pd.DataFrame:
    """The cells of a search: one per sampled trial in the store, its sampled values as coordinates."""
    search = study.spec.search
    name = search.optuna_name(study.name, study.base.identity())
    columns = ["variant", *search.space, "seed", "trial_hash"]
    client = Tracker(tracking_uri).client
    experiment = client.get_experiment_by_name(study.name)
    rows, token = [], None
    while experiment is not None:
        page = client.search_runs([experiment.experiment_id], f"tags.search = '{name}' and tags.trial_hash != ''",
                                  max_results=1000, page_token=token)
        for run in page:
            tags = run.data.tags
            if all(key in tags for key in columns):  # tags hold str(value): read them back as YAML
                rows.append({key: yaml.safe_load(tags[key]) if key in search.space else tags[key] for key in columns})
        token = page.token
        if not token:
            break
    frame = pd.DataFrame(rows, columns=columns).drop_duplicates("trial_hash")
    return frame.astype({"seed": int})
