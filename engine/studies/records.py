"""Synchronous SQL for studies: the ``studies`` row, the ``trials`` mirror of the search
engine's trials, the dead-worker sweep and the end-of-study bookkeeping. Used by study
workers (plain sqlite3) and by the async API through ``asyncio.to_thread``."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

from ..records import HOST, dumps_safe, finish_run, now
from ..schema import write_tx
from .base import BaseSearchEngine, EngineTrial
from .registry import get_engine
from .space import space_from_json
from .spec import StudyDefinition, StudySettings

STUDY_COLUMNS = ("id", "name", "experiment_id", "trials_experiment_id", "adapter",
                 "base_config", "space", "settings", "engine", "storage", "engine_study",
                 "status", "job_id", "cancel_requested", "importance", "error", "created",
                 "updated")


class StudyNotFoundError(LookupError):
    pass


def load_row(conn: sqlite3.Connection, name: str | int) -> dict[str, Any]:
    col = "id" if isinstance(name, int) else "name"
    row = conn.execute(f"SELECT {', '.join(STUDY_COLUMNS)} FROM studies WHERE {col}=?",
                       (name,)).fetchone()
    if row is None:
        raise StudyNotFoundError(f"no study {name!r}")
    d = dict(zip(STUDY_COLUMNS, row, strict=True))
    for k in ("base_config", "space", "settings"):
        d[k] = json.loads(d[k] or "{}")
    d["importance"] = json.loads(d["importance"]) if d["importance"] else None
    return d


def definition(row: dict[str, Any]) -> StudyDefinition:
    settings = dict(row["settings"])
    extra = {"pruner_options": settings.pop("pruner_options", None) or {}}
    trials_exp = settings.pop("trials_experiment", None)
    d = StudyDefinition(name=row["name"], adapter=row["adapter"],
                        base_config=dict(row["base_config"]), space=space_from_json(row["space"]),
                        settings=StudySettings.from_json(settings), trials_experiment=trials_exp)
    d.extra = extra
    return d


def open_engine(row: dict[str, Any], home: Path, worker_index: int = 0) -> BaseSearchEngine:
    cls = get_engine(row["engine"])
    return cls(definition(row), row["storage"], home, row["engine_study"],
               worker_index=worker_index)


def set_status(conn: sqlite3.Connection, study_id: int, status: str,
               error: str | None = None, **extra: Any) -> None:
    sets = ["status=?", "updated=?", "error=?"]
    params: list[Any] = [status, now(), error]
    for k, v in extra.items():
        sets.append(f"{k}=?")
        params.append(v)
    with write_tx(conn):
        conn.execute(f"UPDATE studies SET {', '.join(sets)} WHERE id=?", (*params, study_id))


# ------------------------------------------------------------------ the trials mirror


def mirror_upsert(conn: sqlite3.Connection, study_id: int, t: EngineTrial,
                  run_id: int | None) -> None:
    """Insert or update the trial's row. A row re-mirrored from the engine without an error
    keeps the note labdeck wrote for the same state: the engine is told a pruned trial's
    state only, so "pruned at step N" lives in this table alone."""
    if t.state == "waiting":
        return
    conn.execute(
        "INSERT INTO trials(study_id, number, state, params, value, intermediate, run_id, pid,"
        " host, started, finished, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(study_id, number) DO UPDATE SET state=excluded.state,"
        " params=excluded.params, value=excluded.value, intermediate=excluded.intermediate,"
        " run_id=COALESCE(excluded.run_id, trials.run_id), pid=excluded.pid,"
        " host=excluded.host, started=COALESCE(trials.started, excluded.started),"
        " finished=excluded.finished, error=CASE WHEN excluded.error IS NULL"
        " AND excluded.state = trials.state THEN trials.error ELSE excluded.error END",
        (study_id, t.number, t.state, dumps_safe(t.params), t.value,
         json.dumps(t.intermediate), run_id, t.attrs.get("pid"), t.attrs.get("host"),
         t.started, t.finished, t.attrs.get("error")))


def _local_run(t: EngineTrial, home: Path) -> int | None:
    """The trial's labdeck run id when it ran against this home (not another machine's)."""
    if t.attrs.get("home") == str(home) and t.attrs.get("host") == HOST:
        return t.attrs.get("run_id")
    return None


def sync_mirror(conn: sqlite3.Connection, study_id: int, trials: list[EngineTrial],
                home: Path, fixed: dict[str, Any] | None = None) -> None:
    """Bring labdeck's trials rows in line with the engine; end the runs of trials that the
    engine failed behind their worker's back (dead worker)."""
    ended: dict[int, EngineTrial] = {}
    with write_tx(conn):
        for t in trials:
            if fixed:  # the engine knows only searched params; the mirror shows all
                t = dataclasses.replace(t, params={**fixed, **t.params})
            mirror_upsert(conn, study_id, t, _local_run(t, home))
            if t.state not in ("waiting", "running"):
                ended[t.number] = t
        # one query for the whole study, not two per ended trial
        rows = conn.execute(
            "SELECT t.number, t.run_id FROM trials t JOIN runs r ON r.id=t.run_id"
            " WHERE t.study_id=? AND r.status IN ('running','queued') ORDER BY t.number",
            (study_id,)).fetchall() if ended else []
    stale_runs = [(run_id, ended[number].attrs.get("error") or "trial ended")
                  for number, run_id in rows if number in ended]
    for run_id, reason in stale_runs:
        finish_run(conn, run_id, "failed", reason)


def sweep(conn: sqlite3.Connection, row: dict[str, Any], engine: BaseSearchEngine,
          home: Path) -> tuple[list[int], list[EngineTrial]]:
    """Fail trials whose worker died, then mirror. Returns (failed numbers, all trials)."""
    failed = engine.fail_stale()
    trials = engine.trials()
    sync_mirror(conn, row["id"], trials, home, engine.definition.fixed())
    return failed, trials


def finalize(conn: sqlite3.Connection, row: dict[str, Any], engine: BaseSearchEngine,
             home: Path, stopping: str | None = None) -> str:
    """Called by a worker leaving the study: settle the study's status, and when no trial is
    left to run, store the parameter importance."""
    _, trials = sweep(conn, row, engine, home)
    running = any(t.state == "running" for t in trials)
    current = load_row(conn, row["id"])
    if not running and not engine.waiting_slots():
        importance = engine.importance(trials)
        set_status(conn, row["id"], "completed", importance=json.dumps(importance))
        return "completed"
    if running:
        return current["status"]  # other workers carry on; the last one settles it
    if stopping:
        set_status(conn, row["id"], stopping)
        return stopping
    return current["status"]
