"""SQL on the ``runs`` table: the run row the API shows (with its experiment and its training
job's progress), inserting a run (a queued job's, a tracking script's, a study trial's), its
start and its end (the metrics summary stored with it)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..liveness import process_start_time
from ..models import Run
from ..records import FINAL_STATUSES, HOST, dumps_safe, loads
from ..schema import write_tx
from . import experiments
from .metrics import last_epoch, last_output_sql, summarize_run
from .rows import Page, fetch_all, fetch_one, inserted_id, page_of, scalar

_RUN_SQL = """
SELECT r.id, r.experiment_id, e.name AS experiment, r.number, r.status, r.config, r.source,
       r.pid, r.created, r.started, r.finished, r.summary, r.steps, r.epochs, r.error,
       e.objective, e.direction, e.adapter, j.id AS job_id, j.progress, j.message,
       CASE WHEN r.status = 'running' THEN {last_output} END AS recorded_output
FROM runs r JOIN experiments e ON e.id = r.experiment_id
LEFT JOIN jobs j ON j.id = (SELECT MAX(id) FROM jobs WHERE run_id = r.id AND type = 'train')
""".format(last_output=last_output_sql("r.id", "j.activity", "j.started", "r.started"))


def _run(r: sqlite3.Row) -> Run:
    """A Run; while running, ``last_output`` is what the database recorded (the API adds the
    log file's last write)."""
    return Run(id=r["id"], experiment_id=r["experiment_id"], experiment=r["experiment"],
               number=r["number"], status=r["status"], config=loads(r["config"], {}),
               source=r["source"], pid=r["pid"], created=r["created"], started=r["started"],
               finished=r["finished"], summary=loads(r["summary"]), steps=r["steps"],
               epochs=r["epochs"], error=r["error"], objective=r["objective"],
               direction=r["direction"], adapter=r["adapter"], job_id=r["job_id"],
               progress=r["progress"], message=r["message"] or "",
               last_output=r["recorded_output"])


def get_run(conn: sqlite3.Connection, run_id: int) -> Run | None:
    row = fetch_one(conn, _RUN_SQL + " WHERE r.id=?", (run_id,))
    return None if row is None else _run(row)


def find_run(conn: sqlite3.Connection, experiment: str, number: int) -> Run | None:
    """Run ``number`` of the experiment named ``experiment``."""
    row = fetch_one(conn, _RUN_SQL + " WHERE e.name=? AND r.number=?", (experiment, number))
    return None if row is None else _run(row)


def list_runs(conn: sqlite3.Connection, experiment_id: int | None = None) -> list[Run]:
    """Every run, newest first; or one experiment's, highest number first."""
    if experiment_id is None:
        rows = fetch_all(conn, _RUN_SQL + " ORDER BY r.id DESC")
    else:
        rows = fetch_all(conn, _RUN_SQL + " WHERE r.experiment_id=? ORDER BY r.number DESC",
                         (experiment_id,))
    return [_run(r) for r in rows]


def runs_page(conn: sqlite3.Connection, experiment_id: int | None = None,
              after: int | None = None, limit: int = 500, offset: int = 0) -> Page[Run]:
    """Up to ``limit`` runs in ``list_runs``'s order (every run newest first, by id; one
    experiment's highest number first), starting after the run whose key is ``after`` (the
    page before's ``next``) and ``offset`` runs further. Only the keys are stepped over (an
    index scan) and the rows are built for the page alone, so a page deep in 100,000 runs
    costs what the first does."""
    if experiment_id is None:
        keys, params = "SELECT id FROM runs", []
        if after is not None:
            keys += " WHERE id < ?"
            params.append(after)
        keys += " ORDER BY id DESC"
        order = " ORDER BY r.id DESC"
    else:
        keys, params = "SELECT id FROM runs WHERE experiment_id = ?", [experiment_id]
        if after is not None:
            keys += " AND number < ?"
            params.append(after)
        keys += " ORDER BY number DESC"
        order = " ORDER BY r.number DESC"
    rows = fetch_all(conn, f"{_RUN_SQL} WHERE r.id IN ({keys} LIMIT ? OFFSET ?){order}",
                     [*params, limit, offset])
    items = [_run(r) for r in rows]
    return page_of(items, limit, (lambda run: run.id) if experiment_id is None
                   else (lambda run: run.number))


def count_runs(conn: sqlite3.Connection, experiment_id: int | None = None) -> int:
    if experiment_id is None:
        return int(scalar(conn, "SELECT COUNT(*) FROM runs"))
    return int(scalar(conn, "SELECT COUNT(*) FROM runs WHERE experiment_id = ?",
                      (experiment_id,)))


def run_ids(conn: sqlite3.Connection, experiment_id: int) -> list[int]:
    return [r["id"] for r in fetch_all(conn, "SELECT id FROM runs WHERE experiment_id=?",
                                       (experiment_id,))]


# ------------------------------------------------------------------ a run's life


def _next_number(conn: sqlite3.Connection, experiment_id: int) -> int:
    return int(scalar(conn, "SELECT COALESCE(MAX(number), 0) + 1 FROM runs"
                            " WHERE experiment_id=?", (experiment_id,)))


def insert_queued(conn: sqlite3.Connection, experiment_id: int, config: Mapping[str, Any],
                  t: float) -> tuple[int, int]:
    """A queued run of a training job (its worker fills in pid, host and start); inside the
    caller's transaction. Returns (run_id, number)."""
    number = _next_number(conn, experiment_id)
    cur = conn.execute(
        "INSERT INTO runs(experiment_id, number, status, config, source, created)"
        " VALUES (?,?,?,?,?,?)", (experiment_id, number, "queued", dumps_safe(config), "job", t))
    return inserted_id(cur), number


def insert_run(conn: sqlite3.Connection, experiment_id: int, config: Mapping[str, Any],
               status: str, source: str, pid: int | None = None) -> tuple[int, int]:
    """Insert a run of this host inside the caller's write transaction. Returns (run_id,
    number). With a pid, the process's start time is kept too, so a reused pid is not taken
    for it."""
    t = time.time()
    number = _next_number(conn, experiment_id)
    cur = conn.execute(
        "INSERT INTO runs(experiment_id, number, status, config, source, pid, pid_started, host,"
        " created, started) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (experiment_id, number, status, json.dumps(dict(config)), source, pid,
         process_start_time(pid), HOST, t, t if status == "running" else None),
    )
    experiments.touch(conn, experiment_id, t)
    return inserted_id(cur), int(number)


def mark_running(conn: sqlite3.Connection, run_id: int, pid: int, pid_started: float | None,
                 host: str, t: float) -> None:
    """A worker started the run; inside the caller's transaction."""
    conn.execute("UPDATE runs SET status='running', pid=?, pid_started=?, host=?, started=?"
                 " WHERE id=?", (pid, pid_started, host, t, run_id))


def cancel_queued(conn: sqlite3.Connection, run_id: int, t: float) -> None:
    """Cancel the run if it has not started; inside the caller's transaction."""
    conn.execute("UPDATE runs SET status='cancelled', finished=? WHERE id=? AND status='queued'",
                 (t, run_id))


def finish_run(conn: sqlite3.Connection, run_id: int, status: str, error: str | None = None,
               only_if_running: bool = True, tx: bool = True) -> bool:
    """Mark a run ended and store its metrics summary, duration and steps/epochs.
    ``tx=False``: inside the caller's write transaction (with its other writes)."""
    assert status in FINAL_STATUSES, status
    summary = summarize_run(conn, run_id)
    t = time.time()
    steps = max((s["last_step"] for s in summary.values() if s["last_step"] is not None),
                default=None)
    epochs = last_epoch(conn, run_id)
    with write_tx(conn) if tx else contextlib.nullcontext():
        cond = " AND status IN ('running','queued')" if only_if_running else ""
        cur = conn.execute(
            "UPDATE runs SET status=?, finished=?, summary=?, steps=?, epochs=?, error=?"
            f" WHERE id=?{cond}",
            (status, t, dumps_safe(summary), steps, epochs, error, run_id))
        experiments.touch_for_run(conn, run_id, t)
    return cur.rowcount > 0


# ------------------------------------------------------------------ liveness


@dataclass
class TrackingProcess:
    """A running run that a user's script logs to (no job): the process behind it."""

    id: int
    pid: int | None
    pid_started: float | None


def running_tracking_runs(conn: sqlite3.Connection, host: str) -> list[TrackingProcess]:
    return [TrackingProcess(id=r["id"], pid=r["pid"], pid_started=r["pid_started"])
            for r in fetch_all(conn, "SELECT id, pid, pid_started FROM runs"
                                     " WHERE status='running' AND source='tracking' AND host=?",
                               (host,))]


def running_as(conn: sqlite3.Connection, run_id: int, pid: int) -> bool:
    """The run is running and still names process ``pid``."""
    return bool(scalar(conn, "SELECT 1 FROM runs WHERE id=? AND status='running' AND pid=?",
                       (run_id, pid)))
