"""``search:``: the language (distributions, metrics, one clear line) and a real Optuna search through Ray Tune
that continues from its journal."""

from __future__ import annotations

import mlflow
import optuna
import pytest
from conftest import tiny_study
from rich.console import Console

from orchestrator.cli import main
from orchestrator.errors import StudyError
from orchestrator.search_journal import SearchState
from orchestrator.search_space import Distribution
from orchestrator.spec import load_study
from orchestrator.store import state_folder

SPACE = {
    "optim.lr": {"loguniform": [1.0e-4, 1.0e-2]},
    "loss.temperature": {"uniform": [0.1, 0.5]},
    "train.batch_size": {"int": [32, 64]},
    "model.head.dim": {"choice": [8, 16]},
}


def searching(space=None, **search) -> dict:
    study = tiny_study(
        study="searched", sweep={"seeds": [0]},
        search={"space": space or SPACE, "metric": "linear_acc/first_digit", "mode": "max", "num_samples": 3,
                **search},
        report={"table": {"rows": ["variant", "target"], "metric": "linear_acc"}},
        scales={"small": {}, "smoke": {"train.epochs": 1}},
    )
    return study


def error_of(path, overrides=()) -> str:
    with pytest.raises(StudyError) as caught:
        load_study(path, overrides=overrides)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(str(path))
    return text


def test_a_search_study_loads_with_its_space_and_no_cells(write_study):
    study = load_study(write_study(searching()))
    assert study.cells == ()
    assert study.spec.search.space["train.batch_size"].kind == "int"
    assert study.spec.search.space["model.head.dim"].corners() == [8, 16]


def test_distributions_are_optunas():
    log_uniform = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert Distribution(loguniform=(1e-4, 1e-2)).optuna() == log_uniform
    assert Distribution(uniform=(0.1, 0.5)).optuna() == optuna.distributions.FloatDistribution(0.1, 0.5)
    assert Distribution(choice=[8, 16]).optuna() == optuna.distributions.CategoricalDistribution([8, 16])
    # int is [low, high] with both ends included: drawn 200 times, every one of 1, 2, 3 comes up.
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = {study.ask({"k": Distribution(int=(1, 3)).optuna()}).params["k"] for _ in range(200)}
    assert drawn == {1, 2, 3}


@pytest.mark.parametrize(("distribution", "message"), [
    ({"uniform": [0.5, 0.1]}, "uniform needs low < high (got [0.5, 0.1])"),
    ({"loguniform": [0.0, 1.0]}, "loguniform needs 0 < low (got 0.0)"),
    ({"uniform": [0.1, 0.2], "int": [1, 2]}, "give exactly one of uniform, loguniform, int, choice (got uniform, int)"),
    ({"normal": [0, 1]}, "unknown key 'normal'"),
    ({"choice": []}, "search.space.optim.lr.choice"),
])
def test_bad_distributions_are_one_line_naming_the_key(write_study, distribution, message):
    text = error_of(write_study(searching(space={"optim.lr": distribution})))
    assert "search.space.optim.lr" in text and message in text


def test_every_end_of_the_space_is_validated_as_a_trial(write_study):
    text = error_of(write_study(searching(space={"train.batch_size": {"int": [32, 1000]}})))
    assert "search.space.train.batch_size=1000" in text and "more than the 128 training examples" in text
    text = error_of(write_study(searching(space={"optim.lrr": {"uniform": [0.1, 0.2]}})))
    assert "search.space.optim.lrr=0.1" in text and "unknown key 'lrr'" in text


def test_search_metrics_and_the_rest_of_the_sweep_are_checked(write_study):
    text = error_of(write_study(searching(metric="linear_acc/third_digit")))
    assert "search.metric: unknown metric 'linear_acc/third_digit'" in text and "linear_acc/first_digit" in text
    text = error_of(write_study(searching(asha={"metric": "linear_acc/first_digit", "mode": "max"})))
    assert "search.asha.metric: ASHA needs a metric reported every epoch" in text and "train/loss" in text
    study = searching()
    study["sweep"] = {"grid": {"data.second_size": [8, 16]}}
    assert "sweep.grid: a study with search: has no grid, zip or variants" in error_of(write_study(study))
    study["sweep"] = {"seeds": [0, 1]}
    assert "sweep.seeds: a search trains each sample with one seed" in error_of(write_study(study))
    assert "seeds come from sweep.seeds" in error_of(write_study(searching(space={"seed": {"int": [0, 9]}})))


def test_set_reaches_the_search(write_study):
    path = write_study(searching())
    study = load_study(path, overrides=["search.num_samples=5", "search.space.optim.lr={uniform: [0.001, 0.002]}"])
    assert study.spec.search.num_samples == 5
    assert study.spec.search.space["optim.lr"].uniform == (0.001, 0.002)
    assert set(study.spec.search.space) == set(SPACE), "one distribution replaced, the others kept"


def test_the_search_is_named_by_what_it_optimises(write_study):
    path = write_study(searching())
    name = load_study(path).spec.search.optuna_name
    base = load_study(path).base.identity()
    assert name("searched", base) == load_study(path, overrides=["search.num_samples=9"]).spec.search.optuna_name(
        "searched", base), "more samples continue the same search"
    other = load_study(path, overrides=["search.space.optim.lr={uniform: [0.001, 0.002]}"]).spec.search
    assert other.optuna_name("searched", base) != name("searched", base)


def test_asha_stops_on_the_epoch_metric_but_never_before_the_evaluation(write_study):
    from orchestrator.optuna_search import asha_scheduler

    study = load_study(write_study(searching(asha={"metric": "train/loss", "mode": "min", "grace_period": 2,
                                                   "reduction_factor": 3})), overrides=["train.epochs=20"])
    scheduler = asha_scheduler(study.spec.search.asha, study.base.train.epochs)
    # Never at the last epoch (its report comes before the evaluation's): max_t is the one before, and goes on.
    assert (scheduler.metric, scheduler._time_attr, scheduler._max_t) == ("train/loss", "epoch", 19)
    assert scheduler._stop_last_trials is False
    # Rungs at 2, 6 and 18 epochs: grace_period × reduction_factor^k up to max_t.
    assert sorted(milestone for milestone, _ in scheduler._brackets[0]._rungs) == [2, 6, 18]
    two = asha_scheduler(study.spec.search.asha.model_copy(update={"grace_period": 1}), 2)
    assert sorted(milestone for milestone, _ in two._brackets[0]._rungs) == [1], "2 epochs: a rung at 1 only"
    text = error_of(write_study(searching(asha={"metric": "train/loss", "mode": "min", "grace_period": 2})))
    assert "search.asha.grace_period: 2 is not before the last epoch (train.epochs=2)" in text


@pytest.mark.slow
def test_a_search_runs_then_continues_where_it_stopped(ray_cluster, write_study, tmp_path, capsys):
    from orchestrator.runner import run_study

    path = write_study(searching())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def run(*overrides):
        console = Console(width=200, record=True)
        summary = run_study(load_study(path, scale="smoke", overrides=list(overrides)), tracking_uri=uri,
                            data_root=tmp_path / "data", reports_root=tmp_path / "reports", console=console)
        return summary, console.export_text()

    first, out = run()
    assert "0 of 3 samples done, 3 to run" in out and (first.ran, first.failed) == (3, {})
    state = SearchState.of(load_study(path, scale="smoke"), state_folder(uri))
    assert state.journal == tmp_path / "mlflow.db.state" / "optuna.journal"
    assert (state.done, state.left) == (3, 0)

    assert main(["plan", str(path), "--scale", "smoke", "--tracking-uri", uri, "--set", "search.num_samples=5"]) == 0
    planned = capsys.readouterr().out
    assert "3 of 5 samples done, 2 to run" in planned and "time left ≈" in planned

    second, out = run("search.num_samples=5")
    assert "3 of 5 samples done, 2 to run" in out and second.ran == 2
    assert "best so far: linear_acc/first_digit = " in out
    again, out = run("search.num_samples=5")
    assert "5 of 5 samples done, 0 to run" in out and again.ran == 0

    trials = optuna.load_study(study_name=state.name, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(state.journal)))).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 5
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["searched"])
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(children) == 5 and set(children.status) == {"FINISHED"}
    assert set(children["tags.search"]) == {state.name}
    # Each Optuna trial is one child run holding the sampled values as its parameters, and its metric.
    by_params = {(float(r["params.optim.lr"]), int(r["params.train.batch_size"]), int(r["params.model.head.dim"]))
                 : r for _, r in children.iterrows()}
    for trial in trials:
        child = by_params[(trial.params["optim.lr"], trial.params["train.batch_size"], trial.params["model.head.dim"])]
        assert float(child["params.loss.temperature"]) == trial.params["loss.temperature"]
        assert child["metrics.linear_acc/first_digit"] == pytest.approx(trial.value)
    assert len({t.params["optim.lr"] for t in trials}) == 5, "the continued search drew new samples"
    parents = runs[runs["tags.mlflow.parentRunId"].isna()].sort_values("start_time")
    assert list(parents["metrics.trials_run"]) == [3, 2, 0]
    best = max(t.value for t in trials)
    assert parents["metrics.best/linear_acc/first_digit"].iloc[-1] == pytest.approx(best)
    report = (tmp_path / "reports" / "searched" / "smoke" / "report.md").read_text()
    assert "5 of 5 cells finished" in report
