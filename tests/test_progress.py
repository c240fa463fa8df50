"""The progress display's status line: running / failed / skipped counts and the ETA."""

from __future__ import annotations

import pytest

from orchestrator.progress import StudyProgress, clock


def test_no_eta_before_a_trial_finished():
    state = StudyProgress(total=6, skipped=4, concurrency=2, started_at={"a": 100.0, "b": 100.0})
    assert state.eta(now=130.0) is None
    assert state.line(now=130.0) == "running 2 · failed 0 · skipped 4 · ETA -:--:--"


def test_eta_is_the_work_left_over_the_concurrency():
    # 10 trials, 2 at once: 3 ended (2 finished in 60 s and 100 s, 1 failed), 2 running for 30 s and 90 s.
    state = StudyProgress(total=10, skipped=5, concurrency=2, started_at={"a": 1000.0, "b": 940.0},
                          durations=[60.0, 100.0], failed=1, ended=3)
    # mean 80 s; 5 pending → 400 s; running: 80 − 30 = 50 s and max(80 − 90, 0) = 0 s; (400 + 50) / min(2, 7) = 225 s
    assert state.eta(now=1030.0) == pytest.approx(225.0)
    assert state.line(now=1030.0) == "running 2 · failed 1 · skipped 5 · ETA 0:03:45"


def test_the_last_trial_running_counts_down():
    state = StudyProgress(total=2, concurrency=4, started_at={"a": 0.0}, durations=[50.0], ended=1)
    assert state.eta(now=20.0) == pytest.approx(30.0)  # one trial left: it runs alone, not 4 at once
    assert state.line(now=80.0).endswith("ETA 0:00:00")


def test_clock():
    assert [clock(s) for s in (0, 59.6, 3599, 3600 * 27 + 61)] == ["0:00:00", "0:01:00", "0:59:59", "27:01:01"]
