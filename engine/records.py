"""Run and metric records written from worker processes, user scripts and the scheduler.

Synchronous on purpose: workers and the tracking API use plain sqlite3. The async engine calls
the few lifecycle functions here through ``asyncio.to_thread`` so the SQL lives in one place.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from .directions import direction_for
from .liveness import process_start_time
from .schema import write_tx

HOST = socket.gethostname()
FINAL_STATUSES = ("completed", "failed", "cancelled")


def now() -> float:
    return time.time()


def decode_value(v: float | None) -> float:
    return math.nan if v is None else v


# ------------------------------------------------------------------ experiments and runs


def get_or_create_experiment(conn: sqlite3.Connection, name: str, adapter: str = "script",
                             config: Mapping[str, Any] | None = None) -> int:
    row = conn.execute("SELECT id FROM experiments WHERE name=?", (name,)).fetchone()
    if row:
        return row[0]
    t = now()
    with write_tx(conn):
        row = conn.execute("SELECT id FROM experiments WHERE name=?", (name,)).fetchone()
        if row:
            return row[0]
        cur = conn.execute(
            "INSERT INTO experiments(name, adapter, config, created, updated) VALUES (?,?,?,?,?)",
            (name, adapter, json.dumps(dict(config or {})), t, t),
        )
        return int(cur.lastrowid)


def insert_run(conn: sqlite3.Connection, experiment_id: int, config: Mapping[str, Any],
               status: str, source: str, pid: int | None = None) -> tuple[int, int]:
    """Insert a run inside the caller's write transaction. Returns (run_id, number).
    With a pid, the process's start time is kept too, so a reused pid is not taken for it."""
    t = now()
    number = conn.execute(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM runs WHERE experiment_id=?", (experiment_id,)
    ).fetchone()[0]
    cur = conn.execute(
        "INSERT INTO runs(experiment_id, number, status, config, source, pid, pid_started, host,"
        " created, started) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (experiment_id, number, status, json.dumps(dict(config)), source, pid,
         process_start_time(pid), HOST, t, t if status == "running" else None),
    )
    conn.execute("UPDATE experiments SET updated=? WHERE id=?", (t, experiment_id))
    return int(cur.lastrowid), int(number)


def summarize_run(conn: sqlite3.Connection, run_id: int) -> dict[str, dict[str, Any]]:
    """Per key: last, min, max, best (by direction), step of best, count, nan count."""
    exp = conn.execute(
        "SELECT e.objective, e.direction FROM runs r JOIN experiments e ON e.id=r.experiment_id"
        " WHERE r.id=?", (run_id,)).fetchone()
    objective, obj_dir = (exp or (None, None))
    out: dict[str, dict[str, Any]] = {}
    keys = conn.execute("SELECT id, key FROM metric_keys WHERE run_id=?", (run_id,)).fetchall()
    for key_id, key in keys:
        count, nans, vmin, vmax, last_step = conn.execute(
            "SELECT COUNT(*), SUM(value IS NULL), MIN(value), MAX(value), MAX(step)"
            " FROM metrics WHERE key_id=?", (key_id,)).fetchone()
        if not count:
            continue
        last = conn.execute(
            "SELECT value FROM metrics WHERE key_id=? ORDER BY step DESC, id DESC LIMIT 1",
            (key_id,)).fetchone()[0]
        direction = direction_for(key, objective, obj_dir)
        best = vmin if direction == "minimize" else vmax
        best_step = None
        if best is not None:
            best_step = conn.execute(
                "SELECT step FROM metrics WHERE key_id=? AND value=? ORDER BY step LIMIT 1",
                (key_id, best)).fetchone()[0]
        out[key] = {
            "last": decode_value(last), "min": decode_value(vmin), "max": decode_value(vmax),
            "best": decode_value(best), "best_step": best_step, "direction": direction,
            "count": count, "nan_count": nans or 0, "last_step": last_step,
        }
    return out


def finish_run(conn: sqlite3.Connection, run_id: int, status: str, error: str | None = None,
               only_if_running: bool = True, tx: bool = True) -> bool:
    """Mark a run ended and store its metrics summary, duration and steps/epochs.
    ``tx=False``: inside the caller's write transaction (with its other writes)."""
    assert status in FINAL_STATUSES, status
    summary = summarize_run(conn, run_id)
    t = now()
    steps = max((s["last_step"] for s in summary.values() if s["last_step"] is not None),
                default=None)
    epochs = conn.execute(
        "SELECT MAX(m.epoch) FROM metrics m JOIN metric_keys k ON k.id=m.key_id WHERE k.run_id=?",
        (run_id,)).fetchone()[0]
    with write_tx(conn) if tx else contextlib.nullcontext():
        cond = " AND status IN ('running','queued')" if only_if_running else ""
        cur = conn.execute(
            "UPDATE runs SET status=?, finished=?, summary=?, steps=?, epochs=?, error=?"
            f" WHERE id=?{cond}",
            (status, t, json.dumps(_json_safe(summary)), steps, epochs, error, run_id))
        conn.execute("UPDATE experiments SET updated=? WHERE id=(SELECT experiment_id FROM runs"
                     " WHERE id=?)", (t, run_id))
    return cur.rowcount > 0


# ------------------------------------------------------------------ jobs and liveness


def end_job(conn: sqlite3.Connection, job_id: int, status: str, reason: str,
            exit_code: int | None = None) -> bool:
    """End a queued or running job that its worker did not end (it died, stalled, was
    cancelled before it could say so); a train job's run ends with it. False if the job had
    already ended."""
    with write_tx(conn):
        cur = conn.execute(
            "UPDATE jobs SET status=?, error=?, message=?, finished=?, exit_code=?"
            " WHERE id=? AND status IN ('running','queued')",
            (status, reason if status == "failed" else None, reason.split("\n")[0], now(),
             exit_code, job_id))
    row = conn.execute("SELECT run_id, type FROM jobs WHERE id=?", (job_id,)).fetchone()
    if row and row[0] and row[1] == "train":
        finish_run(conn, row[0], status, reason if status == "failed" else None)
    return cur.rowcount > 0


# the running jobs and tracking runs this host started:
# (kind, id, pid, pid_started, cancel requested)
RUNNING_HERE_SQL = (
    "SELECT 'job', id, pid, pid_started, cancel_requested FROM jobs"
    " WHERE status='running' AND host=? AND pid IS NOT NULL"
    " UNION ALL SELECT 'run', id, pid, pid_started, 0 FROM runs"
    " WHERE status='running' AND source='tracking' AND host=? AND pid IS NOT NULL")


def gone_end(kind: str, pid: int, cancel: bool) -> tuple[str, str]:
    """(status, reason) of a job or tracking run whose process is gone: cancelled if that was
    asked for (killed after the grace), else failed."""
    if cancel:
        return "cancelled", "cancelled"
    return "failed", (f"worker process {pid} is gone" if kind == "job"
                      else f"process {pid} ended without finishing")


def end_gone(conn: sqlite3.Connection, gone: list[tuple[str, int, int, bool]]) -> None:
    """End the jobs and tracking runs in ``gone`` ((kind, id, pid, cancel requested), whose
    process is no more), each only if it still names that pid."""
    for kind, item_id, pid, cancel in gone:
        status, reason = gone_end(kind, pid, cancel)
        if kind == "job":
            if conn.execute("SELECT 1 FROM jobs WHERE id=? AND status='running' AND pid=?",
                            (item_id, pid)).fetchone():
                end_job(conn, item_id, status, reason)
        elif conn.execute("SELECT 1 FROM runs WHERE id=? AND status='running' AND pid=?",
                          (item_id, pid)).fetchone():
            finish_run(conn, item_id, status, reason if status == "failed" else None)


def last_output_sql(run_id: str, *times: str) -> str:
    """An SQL expression: the latest of ``times`` (columns such as a job's ``activity`` and
    ``started``) and the wall time of the run's newest metric point; one index probe per
    metric key. Heartbeats are not output and never count."""
    newest_point = (f"(SELECT MAX((SELECT m.wall FROM metrics m WHERE m.key_id=k.id"
                    f" ORDER BY m.id DESC LIMIT 1)) FROM metric_keys k WHERE k.run_id={run_id})")
    parts = [f"COALESCE({t}, 0)" for t in (*times, newest_point)]
    return f"NULLIF(MAX({', '.join(parts)}), 0)"


def running_job_output(conn: sqlite3.Connection, host: str) -> list[tuple]:
    """(job id, run id, pid, last output in the database) of the running jobs on ``host``."""
    return conn.execute(
        "SELECT j.id, j.run_id, j.pid, "
        + last_output_sql("j.run_id", "j.activity", "j.started")
        + " FROM jobs j WHERE j.status='running' AND j.host=? AND j.pid IS NOT NULL",
        (host,)).fetchall()


def _json_safe(obj: Any) -> Any:
    """JSON cannot hold NaN/inf portably: encode them as strings."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def loads(text: str | None, default: Any = None) -> Any:
    """JSON written by ``dumps_safe`` (NaN/inf restored); ``default`` for empty text."""
    if not text:
        return default
    return _restore(json.loads(text))


def _restore(obj: Any) -> Any:
    if obj == "NaN":
        return math.nan
    if obj == "Infinity":
        return math.inf
    if obj == "-Infinity":
        return -math.inf
    if isinstance(obj, dict):
        return {k: _restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v) for v in obj]
    return obj


def dumps_safe(obj: Any) -> str:
    return json.dumps(_json_safe(obj))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return True
