"""A cancelled trial reads cancelled in the Studies area (issue 15 item 7): its own icon in
the trial table, its own count in the progress line, never one of the failed."""

from __future__ import annotations

from types import SimpleNamespace

from engine.data.studies import Trial
from tui.screens.study_format import finished_count, progress_line, trial_cells


def _trial(number: int, state: str, error: str | None = None) -> Trial:
    return Trial(number=number, state=state, params={"lr": 0.01}, value=None, intermediate=[],
                 run_id=None, pid=None, host=None, started=0.0, finished=5.0, error=error)


def test_a_cancelled_trial_has_its_own_state_in_the_table_and_the_progress_line():
    cells = [str(c) for c in trial_cells(_trial(3, "cancelled", "cancelled"), ["lr"], None)]
    assert cells[2] == "■ cancelled"
    study = SimpleNamespace(
        name="s", status="cancelled", n_trials=4, settings={"objective": "loss",
                                                           "direction": "minimize"},
        counts={"running": 0, "complete": 1, "pruned": 0, "failed": 0, "cancelled": 2,
                "left": 3}, best_value=0.5, best_trial=0)
    line = progress_line(study, []).plain
    assert "2 cancelled" in line and "failed" not in line, line
    assert finished_count(study) == 1 and "trial 1/4" in line  # cancelled used no slot
