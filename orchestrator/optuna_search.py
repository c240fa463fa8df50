"""A study's ``search:`` through Ray Tune's ``OptunaSearch``, its Optuna study kept in a journal file.

The Optuna study lives in Optuna's journal storage next to the tracking store,
``<db>.state/optuna.journal`` (``./.sweep-state/`` for a tracking server), named
``<study>-<fingerprint>`` (the fingerprint covers the base trial, the space, the metric and the
mode: change one of them and a new search begins). ``num_samples`` counts the search's trials
across invocations: an invocation runs ``num_samples`` minus the trials the journal holds as
complete, pruned or failed, so running the command again continues the search, and raising
``--set search.num_samples=N`` adds samples that Optuna draws knowing every earlier result.
A sample interrupted mid-way (Ctrl-C, kill -9) stays RUNNING in the journal and is drawn anew.

Each sample is trained as an ordinary trial by ``workers.tune_adapter.trainable`` (its own
MLflow child run, the sampled values among its parameters and as tags), wrapped by
:func:`searched_trainable`, which builds the trial from the sampled values on the worker. A
sample whose config already FINISHED in the store is not trained again: its metrics are
reported to Optuna. Optuna reads the trial's last report (the metric may be one measured after
training, such as ``linear_acc/<target>``); ASHA reads every epoch's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import optuna
from mlflow import MlflowClient
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from orchestrator.execution import STOPPED, Outcome, Tracking, fit, outcomes_of, request
from orchestrator.expansion import Trial, trial_hash
from orchestrator.overrides import set_path
from orchestrator.search_journal import SearchState, journal_storage
from orchestrator.search_space import Asha
from orchestrator.spec import Execution, Study
from workers import tune_adapter
from workers.config import TrialConfig

VARIANT = "search"
optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial would break the progress display


class _LastReportSearch(OptunaSearch):
    """OptunaSearch that passes on to Optuna only the reports holding the metric.

    The metric may be measured once, after training (``linear_acc/<target>``): the epochs'
    reports before it do not hold it. Tune's check that every report holds the searched metric
    is switched off for the same reason (``TUNE_DISABLE_STRICT_METRIC_CHECKING``); the study
    file's metrics are checked when it is loaded instead.
    """

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self.metric in result:
            super().on_trial_result(trial_id, result)


def searched_trial(template: dict[str, Any], config: dict[str, Any]) -> Trial:
    """The trial a Tune config stands for: the base with each sampled value set (driver and worker agree)."""
    raw = template["base"]
    point = tuple((key, config[key]) for key in template["keys"])
    for key, value in [*point, ("seed", template["seed"])]:
        raw = set_path(raw, key, value)
    trial = TrialConfig.model_validate(raw)
    return Trial(trial, trial_hash(trial), VARIANT, point, template["seed"])


def searched_trainable(config: dict[str, Any]) -> None:
    """Trains one sample as an ordinary trial (``workers.tune_adapter.trainable``), or reports its earlier run."""
    template = config["template"]
    trial = searched_trial(template, config)
    common = template["request"]
    tags = {**common["tags"], "trial_hash": trial.hash, **{k: str(v) for k, v in trial.labels().items()}}
    client = MlflowClient(common["tracking_uri"])
    earlier = client.search_runs(
        [common["experiment_id"]], f"tags.trial_hash = '{trial.hash}' and attributes.status = 'FINISHED'",
        max_results=1, order_by=["attributes.end_time DESC"],
    )
    if earlier:  # this config was trained before: Optuna learns its result, nothing trains twice
        run = earlier[0]
        epochs = trial.config.train.epochs
        tune.report({**run.data.metrics, "epoch": epochs, tune_adapter.FINISHED_MARK: run.info.run_id})
        return
    tune_adapter.trainable({"request": {
        **common, "hash": trial.hash, "name": trial.name, "config": trial.config.model_dump(mode="json"), "tags": tags,
    }})


def run_search(
    study: Study,
    search_state: SearchState,
    *,
    tracking: Tracking,
    data_root: Path,
    execution: Execution,
    address: str | None = None,
    storage_path: Path | None = None,
    console=None,
    log_file: Path | None = None,
) -> list[Outcome]:
    """Draws and trains ``search_state.left`` samples; returns one outcome per sample that said which it was."""
    search = study.spec.search
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # see _LastReportSearch
    common = request(Trial(study.base, "", VARIANT, (), study.spec.sweep.seeds[0]), tracking, data_root, execution)
    common["checkpoint_dir"] = None  # a sample interrupted mid-way is drawn anew, not resumed
    template = {"base": study.spec.base, "keys": list(search.space), "seed": study.spec.sweep.seeds[0],
                "request": {k: v for k, v in common.items() if k not in ("hash", "name", "config")}}
    journal = journal_storage(search_state.journal)
    # The sampler's seed moves on with the journal: a continued search does not redraw its first samples.
    sampler = optuna.samplers.TPESampler(seed=search.seed + search_state.drawn)
    searcher = _LastReportSearch(
        space={key: distribution.optuna() for key, distribution in search.space.items()},
        metric=search.metric, mode=search.mode, sampler=sampler, study_name=search_state.name, storage=journal,
    )
    scheduler = None if search.asha is None else asha_scheduler(search.asha, study.base.train.epochs)
    results, callback = fit(
        searched_trainable,
        param_space={"template": template},
        trial_of=lambda config: searched_trial(template, config),
        total=search_state.left, tracking=tracking, execution=execution, address=address,
        storage_path=storage_path, console=console, log_file=log_file,
        num_samples=search_state.left, search_alg=searcher, scheduler=scheduler,
    )
    outcomes = outcomes_of(results, lambda config: searched_trial(template, config), callback)
    stopped = [o for o in outcomes if o.status == STOPPED]
    _close_stopped(tracking, stopped)
    if stopped and console is not None:
        console.print(f"{len(stopped)} samples stopped early by ASHA (runs KILLED, tag stopped_early)")
    return outcomes


def asha_scheduler(asha: Asha, epochs: int) -> ASHAScheduler:
    """Tune's ASHA on ``asha.metric`` per epoch; rungs at ``grace_period · reduction_factor^k`` < ``epochs``.

    A trial is never stopped at its last epoch, whose report is followed by the evaluation's:
    ``max_t`` is the epoch before it, and a trial reaching ``max_t`` goes on.
    """
    return ASHAScheduler(
        time_attr="epoch", metric=asha.metric, mode=asha.mode, max_t=max(epochs - 1, asha.grace_period),
        grace_period=asha.grace_period, reduction_factor=asha.reduction_factor, stop_last_trials=False,
    )


def _close_stopped(tracking: Tracking, stopped: list[Outcome]) -> None:
    """ASHA's stops: their runs are closed KILLED with the reason, not left for the invocation's end."""
    if not stopped:
        return
    client = MlflowClient(tracking.uri)
    for outcome in stopped:
        runs = client.search_runs([tracking.experiment_id], f"tags.trial_hash = '{outcome.trial.hash}' and "
                                  f"tags.mlflow.parentRunId = '{tracking.parent_run_id}'")
        for run in runs:
            client.set_tag(run.info.run_id, "stopped_early", f"ASHA after epoch {outcome.metrics.get('epoch')}")
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, "KILLED")
