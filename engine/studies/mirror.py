"""Keeping labdeck's tables in line with a study's tuner: opening the tuner a study row names,
mirroring the tuner's trials into the ``trials`` table (so every screen is tuner-agnostic),
the dead-worker sweep and the end-of-study bookkeeping. Used by study workers and by the async
API (in a thread); the SQL itself is in engine/data/studies.py.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

from ..data import studies as data
from ..data.runs import finish_run
from ..data.studies import StudyRow
from ..records import HOST
from ..schema import write_tx
from .space import space_from_json
from .spec import StudyDefinition, StudySettings
from .tuner import BaseTuner, TunerTrial
from .tuner_registry import get_tuner


def definition(row: StudyRow) -> StudyDefinition:
    settings = dict(row.settings)
    extra = {"pruner_options": settings.pop("pruner_options", None) or {}}
    trials_exp = settings.pop("trials_experiment", None)
    d = StudyDefinition(name=row.name, adapter=row.adapter, base_config=dict(row.base_config),
                        space=space_from_json(row.space),
                        settings=StudySettings.from_json(settings), trials_experiment=trials_exp)
    d.extra = extra
    return d


def open_tuner(row: StudyRow, home: Path, worker_index: int = 0) -> BaseTuner:
    cls = get_tuner(row.tuner)
    return cls(definition(row), row.storage, home, row.tuner_study, worker_index=worker_index)


def mirror_state(t: TunerTrial) -> str:
    """The trial's state in labdeck's mirror: a tuner knows no "cancelled" (Optuna's states
    end in complete, pruned or fail), so a trial interrupted by a cancel is failed there with
    ``cancelled`` in its attributes, and cancelled here."""
    return "cancelled" if t.state == "failed" and t.cancelled else t.state


def mirror_trial(conn: sqlite3.Connection, study_id: int, t: TunerTrial,
                 run_id: int | None) -> None:
    """Insert or update the trial's row (inside the caller's transaction); a waiting slot has
    none."""
    if t.state == "waiting":
        return
    data.upsert_trial(conn, study_id, number=t.number, state=mirror_state(t), params=t.params,
                      value=t.value, intermediate=t.intermediate, run_id=run_id,
                      pid=t.attrs.get("pid"), host=t.attrs.get("host"), started=t.started,
                      finished=t.finished, error=t.attrs.get("error"))


def _local_run(t: TunerTrial, home: Path) -> int | None:
    """The trial's labdeck run id when it ran against this home (not another machine's)."""
    if t.attrs.get("home") == str(home) and t.attrs.get("host") == HOST:
        return t.attrs.get("run_id")
    return None


def sync_mirror(conn: sqlite3.Connection, study_id: int, trials: list[TunerTrial],
                home: Path, fixed: dict[str, Any] | None = None) -> None:
    """Bring labdeck's trials rows in line with the tuner; end the runs of trials that the
    tuner failed behind their worker's back (dead worker)."""
    ended: dict[int, TunerTrial] = {}
    with write_tx(conn):
        for t in trials:
            if fixed:  # the tuner knows only searched params; the mirror shows all
                t = dataclasses.replace(t, params={**fixed, **t.params})
            mirror_trial(conn, study_id, t, _local_run(t, home))
            if t.state not in ("waiting", "running"):
                ended[t.number] = t
        open_runs = data.trial_runs_not_ended(conn, study_id) if ended else {}
    stale_runs = [(run_id, ended[number]) for number, run_id in open_runs.items()
                  if number in ended]
    for run_id, t in stale_runs:
        finish_run(conn, run_id, "cancelled" if t.cancelled else "failed",
                   t.attrs.get("error") or "trial ended")


def sweep(conn: sqlite3.Connection, row: StudyRow, tuner: BaseTuner,
          home: Path) -> tuple[list[int], list[TunerTrial]]:
    """Fail trials whose worker died, then mirror. Returns (failed numbers, all trials)."""
    failed = tuner.fail_stale()
    trials = tuner.trials()
    sync_mirror(conn, row.id, trials, home, tuner.definition.fixed())
    return failed, trials


def finalize(conn: sqlite3.Connection, row: StudyRow, tuner: BaseTuner, home: Path,
             stopping: str | None = None) -> str:
    """Called by a worker leaving the study: settle the study's status, and when no trial is
    left to run, store the parameter importance."""
    _, trials = sweep(conn, row, tuner, home)
    running = any(t.state == "running" for t in trials)
    current = data.get_study(conn, row.id)
    if not running and not tuner.waiting_slots():
        data.set_status(conn, row.id, "completed", importance=tuner.importance(trials))
        return "completed"
    if running:
        return current.status  # other workers carry on; the last one settles it
    if stopping:
        data.set_status(conn, row.id, stopping)
        return stopping
    return current.status
