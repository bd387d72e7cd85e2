"""SQL on labdeck's ``studies`` and ``trials`` tables: a study's row (definition, status, the
job that runs it, its cancel flag, the importance once it ended) and the mirror of its tuner's
trials that every screen reads. Synchronous: study workers use plain sqlite3, and the async
API calls these functions in a thread. Rows come back as dataclasses, columns by name.

What a study needs of the core tables comes from their modules (experiments, runs, jobs,
metrics), except three writes that must share a transaction with the study's own row and so
cannot call those modules' self-contained ones: the study's trials experiment (created and
deleted with the study) and the job that queues it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models import Record
from ..records import dumps_safe
from ..schema import write_tx
from .rows import fetch_all, fetch_one, inserted_id

_STUDY_SQL = (
    "SELECT s.id, s.name, s.experiment_id, s.trials_experiment_id, s.adapter, s.base_config,"
    " s.space, s.settings, s.tuner, s.storage, s.tuner_study, s.status, s.job_id,"
    " s.cancel_requested, s.importance, s.error, s.created, s.updated,"
    " be.name AS experiment, te.name AS trials_experiment, j.status AS job_status"
    " FROM studies s LEFT JOIN experiments be ON be.id = s.experiment_id"
    " LEFT JOIN experiments te ON te.id = s.trials_experiment_id"
    " LEFT JOIN jobs j ON j.id = s.job_id")
_TRIAL_COLUMNS = ("number, state, params, value, intermediate, run_id, pid, host, started,"
                  " finished, error")


class StudyNotFoundError(LookupError):
    pass


@dataclass
class StudyRow:
    """A ``studies`` row, its JSON columns decoded, with the names of its experiments and the
    status of its job."""

    id: int
    name: str
    experiment_id: int | None  # the base experiment
    trials_experiment_id: int | None  # where each trial's run lives
    adapter: str
    base_config: dict[str, Any]
    space: dict[str, Any]
    settings: dict[str, Any]
    tuner: str
    storage: str
    tuner_study: str  # the study's name inside the tuner's storage
    status: str
    job_id: int | None
    cancel_requested: bool
    importance: dict[str, float] | None
    error: str | None
    created: float
    updated: float
    experiment: str | None
    trials_experiment: str | None
    job_status: str | None  # None: no job (yet, or deleted)


@dataclass
class Trial(Record):
    """A ``trials`` row: one trial as labdeck mirrors it (also what the studies API returns)."""

    number: int
    state: str  # running | complete | pruned | failed | cancelled
    params: dict[str, Any]
    value: float | None
    intermediate: list[tuple[int, float]]
    run_id: int | None
    pid: int | None
    host: str | None
    started: float | None
    finished: float | None
    error: str | None

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started

    def to_json(self) -> dict[str, Any]:
        d = super().to_json()
        d["duration"] = self.duration
        return d


@dataclass
class RunningTrial:
    study: str
    pid: int | None


def _study(r: sqlite3.Row) -> StudyRow:
    return StudyRow(
        id=r["id"], name=r["name"], experiment_id=r["experiment_id"],
        trials_experiment_id=r["trials_experiment_id"], adapter=r["adapter"],
        base_config=json.loads(r["base_config"] or "{}"), space=json.loads(r["space"] or "{}"),
        settings=json.loads(r["settings"] or "{}"), tuner=r["tuner"], storage=r["storage"],
        tuner_study=r["tuner_study"], status=r["status"], job_id=r["job_id"],
        cancel_requested=bool(r["cancel_requested"]),
        importance=json.loads(r["importance"]) if r["importance"] else None, error=r["error"],
        created=r["created"], updated=r["updated"], experiment=r["experiment"],
        trials_experiment=r["trials_experiment"], job_status=r["job_status"])


# ------------------------------------------------------------------ studies


def study_exists(conn: sqlite3.Connection, name: str) -> bool:
    return fetch_one(conn, "SELECT 1 FROM studies WHERE name=?", (name,)) is not None


def get_study(conn: sqlite3.Connection, key: str | int) -> StudyRow:
    """By name, or by id when ``key`` is an int."""
    col = "s.id" if isinstance(key, int) else "s.name"
    r = fetch_one(conn, f"{_STUDY_SQL} WHERE {col}=?", (key,))
    if r is None:
        raise StudyNotFoundError(f"no study {key!r}")
    return _study(r)


def list_studies(conn: sqlite3.Connection) -> list[StudyRow]:
    """Most recently updated first."""
    return [_study(r) for r in fetch_all(conn, f"{_STUDY_SQL} ORDER BY s.updated DESC")]


def insert_study(conn: sqlite3.Connection, *, name: str, experiment_id: int | None,
                 trials_experiment_id: int, adapter: str, base_config: Mapping[str, Any],
                 space: Mapping[str, Any], settings: Mapping[str, Any], tuner: str,
                 storage: str, status: str, t: float) -> int:
    """The ``studies`` row (inside the caller's transaction); its tuner_study is its name."""
    cur = conn.execute(
        "INSERT INTO studies(name, experiment_id, trials_experiment_id, adapter, base_config,"
        " space, settings, tuner, storage, tuner_study, status, created, updated)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (name, experiment_id, trials_experiment_id, adapter, json.dumps(base_config),
         json.dumps(space), json.dumps(settings), tuner, storage, name, status, t, t))
    return inserted_id(cur)


def insert_trials_experiment(conn: sqlite3.Connection, *, name: str, adapter: str,
                             base_config: Mapping[str, Any], objective: str, direction: str,
                             notes: str, study: str, t: float) -> int:
    """The experiment a study's trial runs live in, inside the caller's transaction (the one
    that inserts the study: engine/data/experiments.py's ``create`` commits on its own)."""
    cur = conn.execute(
        "INSERT INTO experiments(name, adapter, config, objective, direction, tags, notes,"
        " origin, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (name, adapter, json.dumps(base_config), objective, direction,
         json.dumps(["study-trials"]), notes, f"study {study}", t, t))
    return inserted_id(cur)


def delete_study(conn: sqlite3.Connection, study_id: int) -> None:
    """The study's row, its trials (cascade) and, in the same transaction, its trials
    experiment with their runs."""
    with write_tx(conn):
        r = fetch_one(conn, "SELECT trials_experiment_id FROM studies WHERE id=?", (study_id,))
        conn.execute("DELETE FROM studies WHERE id=?", (study_id,))
        if r and r["trials_experiment_id"]:
            conn.execute("DELETE FROM experiments WHERE id=?", (r["trials_experiment_id"],))


def set_settings(conn: sqlite3.Connection, study_id: int, settings: Mapping[str, Any]) -> None:
    with write_tx(conn):
        conn.execute("UPDATE studies SET settings=? WHERE id=?",
                     (json.dumps(settings), study_id))


def set_status(conn: sqlite3.Connection, study_id: int, status: str, error: str | None = None,
               importance: Mapping[str, float] | None = None) -> None:
    """A new status (and error); ``importance`` is stored with it when given."""
    sql = "UPDATE studies SET status=?, updated=?, error=?"
    params: list[Any] = [status, time.time(), error]
    if importance is not None:
        sql += ", importance=?"
        params.append(json.dumps(importance))
    with write_tx(conn):
        conn.execute(sql + " WHERE id=?", (*params, study_id))


def request_cancel(conn: sqlite3.Connection, study_id: int) -> None:
    with write_tx(conn):
        conn.execute("UPDATE studies SET cancel_requested=1, updated=? WHERE id=?",
                     (time.time(), study_id))


def cancel_requested(conn: sqlite3.Connection, study_id: int) -> bool:
    r = fetch_one(conn, "SELECT cancel_requested FROM studies WHERE id=?", (study_id,))
    return bool(r and r["cancel_requested"])


def queue_study_job(conn: sqlite3.Connection, study_id: int, name: str) -> int:
    """A queued job of type "study" and the study marked queued with it, in one transaction
    (engine/data/jobs.py's ``submit`` commits on its own). Returns the job id."""
    t = time.time()
    with write_tx(conn):
        cur = conn.execute(
            "INSERT INTO jobs(type, status, target, params, created) VALUES (?,?,?,?,?)",
            ("study", "queued", f"study {name}", json.dumps({"study": name}), t))
        job_id = inserted_id(cur)
        conn.execute("UPDATE studies SET status='queued', job_id=?, cancel_requested=0,"
                     " error=NULL, updated=? WHERE id=?", (job_id, t, study_id))
    return job_id


# ------------------------------------------------------------------ the trials mirror


def upsert_trial(conn: sqlite3.Connection, study_id: int, *, number: int, state: str,
                 params: Mapping[str, Any], value: float | None,
                 intermediate: list[tuple[int, float]], run_id: int | None, pid: int | None,
                 host: str | None, started: float | None, finished: float | None,
                 error: str | None) -> None:
    """Insert or update a trial's row (inside the caller's transaction). A row re-mirrored
    without an error keeps the note labdeck wrote for the same state: a tuner is told a pruned
    trial's state only, so "pruned at step N" lives in this table alone."""
    conn.execute(
        "INSERT INTO trials(study_id, number, state, params, value, intermediate, run_id, pid,"
        " host, started, finished, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(study_id, number) DO UPDATE SET state=excluded.state,"
        " params=excluded.params, value=excluded.value, intermediate=excluded.intermediate,"
        " run_id=COALESCE(excluded.run_id, trials.run_id), pid=excluded.pid,"
        " host=excluded.host, started=COALESCE(trials.started, excluded.started),"
        " finished=excluded.finished, error=CASE WHEN excluded.error IS NULL"
        " AND excluded.state = trials.state THEN trials.error ELSE excluded.error END",
        (study_id, number, state, dumps_safe(params), value, json.dumps(intermediate), run_id,
         pid, host, started, finished, error))


def trials(conn: sqlite3.Connection, study_id: int) -> list[Trial]:
    return [Trial(number=r["number"], state=r["state"], params=json.loads(r["params"]),
                  value=r["value"],
                  intermediate=[(int(s), float(v))
                                for s, v in json.loads(r["intermediate"] or "[]")],
                  run_id=r["run_id"], pid=r["pid"], host=r["host"], started=r["started"],
                  finished=r["finished"], error=r["error"])
            for r in fetch_all(conn, f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE study_id=?"
                                     " ORDER BY number", (study_id,))]


def trial_runs_not_ended(conn: sqlite3.Connection, study_id: int) -> dict[int, int]:
    """Trial number -> run id, for the study's trials whose run is still queued or running
    (one query for the whole study)."""
    return {r["number"]: r["run_id"] for r in fetch_all(
        conn, "SELECT t.number, t.run_id FROM trials t JOIN runs r ON r.id=t.run_id"
              " WHERE t.study_id=? AND r.status IN ('running','queued') ORDER BY t.number",
        (study_id,))}


def running_trials_on(conn: sqlite3.Connection, host: str) -> list[RunningTrial]:
    """Trials mirrored as running by a worker on ``host`` (one indexed query)."""
    return [RunningTrial(study=r["name"], pid=r["pid"]) for r in fetch_all(
        conn, "SELECT s.name, t.pid FROM trials t JOIN studies s ON s.id=t.study_id"
              " WHERE t.state='running' AND t.host=?", (host,))]
