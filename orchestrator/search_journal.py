"""Where a study's search stands, read from its Optuna journal (no Ray: ``plan`` reads it too).

The journal is ``<state>/optuna.journal`` (Optuna's ``JournalStorage`` on a ``JournalFileBackend``,
safe for several processes), holding one Optuna study per search, named by
``Search.optuna_name``. Samples COMPLETE, PRUNED (stopped early) or FAIL count as done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

from orchestrator.spec import Study

JOURNAL = "optuna.journal"
DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


@dataclass(frozen=True)
class SearchState:
    """Where a study's search stands: its Optuna study in the journal and how many samples are left."""

    name: str
    journal: Path
    done: int
    drawn: int  # trials in the journal, whatever their state
    left: int

    @classmethod
    def of(cls, study: Study, state: Path) -> SearchState:
        """Reads the journal (an absent journal or Optuna study: nothing drawn yet); writes nothing."""
        search = study.spec.search
        name = search.optuna_name(study.name, study.base.identity())
        journal = state / JOURNAL
        trials = _trials(journal, name)
        done = sum(trial.state in DONE for trial in trials)
        return cls(name, journal, done, len(trials), max(0, search.num_samples - done))

    def best(self, mode: str) -> optuna.trial.FrozenTrial | None:
        """The best COMPLETE trial of every invocation so far, or None."""
        completed = _trials(self.journal, self.name, (optuna.trial.TrialState.COMPLETE,))
        if not completed:
            return None
        return (max if mode == "max" else min)(completed, key=lambda trial: trial.value)


def journal_storage(journal: Path) -> optuna.storages.JournalStorage:
    journal.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))


def _trials(journal: Path, name: str, states: tuple | None = None) -> list[optuna.trial.FrozenTrial]:
    if not journal.exists():
        return []
    try:
        study = optuna.load_study(study_name=name, storage=journal_storage(journal))
    except KeyError:  # the journal holds other searches only
        return []
    return study.get_trials(deepcopy=False, states=states)
