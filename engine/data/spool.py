"""SQL for the jobs that run on another host (a Slurm cluster, engine/slurm.py): claiming and
recording the submission, what Slurm says of them, and applying their spools
(engine/spool.py). The scheduler is the only caller; it is the single writer.

Applying a spool is exactly-once: the records and the spool's new byte offset and last record
number are written in one transaction, and a record whose number is not above the stored one
is skipped. A crash before the commit leaves the offset where it was, and the same records are
read and applied again; after it, they are never read again.

Such jobs keep ``pid`` NULL (their worker is no process of this machine, whatever its host is
called), so the liveness reads that end the jobs of dead local processes pass them by.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from ..records import dumps_safe
from ..schema import write_tx
from ..spool import Record
from . import evals, runs
from .jobs import WorkerJob, for_worker
from .metrics import append, key_ids, last_step
from .rows import fetch_all

SLURM = "json_extract(params, '$.executor') = 'slurm'"


@dataclass
class SpooledJob:
    """A running job on Slurm, and how far its spool was applied."""

    id: int
    type: str
    run_id: int | None
    slurm_id: str | None
    slurm_state: str | None
    spool_offset: int
    spool_seq: int
    cancel_requested: bool
    started: float | None


def claim(conn: sqlite3.Connection, job_id: int) -> bool:
    """Mark a queued Slurm job running (it is about to be submitted); False when it is no
    longer queued or was cancelled meanwhile."""
    t = time.time()
    with write_tx(conn):
        cur = conn.execute(
            "UPDATE jobs SET status='running', started=?, heartbeat=?, message='slurm: submitting'"
            f" WHERE id=? AND status='queued' AND cancel_requested=0 AND {SLURM}",
            (t, t, job_id))
    return cur.rowcount > 0


def for_submit(conn: sqlite3.Connection, job_id: int) -> tuple[WorkerJob, int] | None:
    """What the worker needs (job.json) and its run's last step so far."""
    job = for_worker(conn, job_id)
    if job is None:
        return None
    step = last_step(conn, job.run_id) if job.type == "train" and job.run_id else -1
    return job, step


def submitted(conn: sqlite3.Connection, job_id: int, slurm_id: str) -> None:
    state = "PENDING"
    with write_tx(conn):
        conn.execute("UPDATE jobs SET slurm_id=?, slurm_state=?, message=? WHERE id=?",
                     (slurm_id, state, f"slurm {slurm_id} {state}", job_id))


def active(conn: sqlite3.Connection) -> list[SpooledJob]:
    """The running Slurm jobs (with or without a Slurm id yet)."""
    return [SpooledJob(id=r["id"], type=r["type"], run_id=r["run_id"], slurm_id=r["slurm_id"],
                       slurm_state=r["slurm_state"], spool_offset=r["spool_offset"],
                       spool_seq=r["spool_seq"], cancel_requested=bool(r["cancel_requested"]),
                       started=r["started"])
            for r in fetch_all(conn, "SELECT id, type, run_id, slurm_id, slurm_state,"
                                     " spool_offset, spool_seq, cancel_requested, started"
                                     f" FROM jobs WHERE status='running' AND {SLURM}")]


def set_state(conn: sqlite3.Connection, job_id: int, slurm_id: str, state: str,
              node: str | None) -> None:
    """What Slurm says now ("PENDING (Resources)", "RUNNING on node1"); shown as the job's
    message too until the job reports a message of its own."""
    text = f"slurm {slurm_id} {state}"
    with write_tx(conn):
        conn.execute(
            "UPDATE jobs SET slurm_state=?, host=COALESCE(?, host), heartbeat=?,"
            " message=CASE WHEN message IS NULL OR message='' OR message LIKE 'slurm %'"
            " THEN ? ELSE message END WHERE id=? AND status='running'",
            (state, node, time.time(), text, job_id))


def apply(conn: sqlite3.Connection, job: SpooledJob, records: list[Record],
          offset: int, stopped: str | None = None) -> str | None:
    """Apply the spool's new records and store ``offset`` with them, in one transaction.
    Returns the job's final status when a ``finished`` record was applied. A worker that
    stopped on a SIGTERM nobody asked for (Slurm's, at a time limit or a preemption) says
    "cancelled": the job fails, with ``stopped`` (what Slurm says) as its error."""
    ended = None
    with write_tx(conn):
        seq = job.spool_seq
        keys: dict[str, int] | None = None
        for record in records:
            if record.seq <= seq:
                continue  # applied before (a spool read again from an older offset)
            seq = record.seq
            d = record.data
            if record.kind == "started":
                _started(conn, job, d)
            elif record.kind == "metrics" and job.run_id is not None:
                keys = key_ids(conn, job.run_id) if keys is None else keys
                buf = [(m, int(step), float(wall), epoch) for m, step, wall, epoch in d["points"]]
                _, new_keys, _ = append(conn, job.run_id, keys, buf)
                keys.update(new_keys)
            elif record.kind == "beat":
                if "progress" in d:
                    conn.execute("UPDATE jobs SET heartbeat=?, activity=?, progress=?, message=?"
                                 " WHERE id=?", (d["t"], d["activity"], float(d["progress"]),
                                                 str(d["message"]), job.id))
                else:
                    conn.execute("UPDATE jobs SET heartbeat=?, activity=? WHERE id=?",
                                 (d["t"], d["activity"], job.id))
            elif record.kind == "finished":
                ended = _finished(conn, job, d, stopped)
        conn.execute("UPDATE jobs SET spool_offset=?, spool_seq=? WHERE id=?",
                     (offset, seq, job.id))
    return ended


def _started(conn: sqlite3.Connection, job: SpooledJob, d: dict[str, Any]) -> None:
    t = float(d["t"])
    conn.execute("UPDATE jobs SET host=?, heartbeat=?, started=COALESCE(started, ?) WHERE id=?",
                 (d["host"], t, t, job.id))
    if job.type == "train" and job.run_id:
        runs.mark_running(conn, job.run_id, int(d["pid"]), None, str(d["host"]), t)


def _finished(conn: sqlite3.Connection, job: SpooledJob, d: dict[str, Any],
              stopped: str | None) -> str:
    """What the local worker writes at its end (engine/worker.py), and what it would have
    stored itself (an eval result, an index)."""
    status, result, error = d["status"], d.get("result"), d.get("error")
    if status == "cancelled" and not job.cancel_requested:
        status, error = "failed", stopped or "stopped by a signal, not by a cancel"
    if job.run_id is not None and "eval" in d:
        e = d["eval"]
        result_id = evals.add_eval_result(conn, job.run_id, job.id, e["checkpoint"],
                                          e["view_type"], e["data"], e["summary"])
        result = {"eval_result_id": result_id, "view_type": e["view_type"],
                  "summary": e["summary"], "data": e["data"]}
    if job.run_id is not None and "index" in d:
        x = d["index"]
        index_id = evals.replace_index(conn, job.run_id, x["checkpoint"], x["path"], job.id,
                                       x["info"])
        result = {"index_id": index_id, "path": x["path"], **x["info"]}
    if job.type == "train" and job.run_id:
        runs.finish_run(conn, job.run_id, status, error, tx=False)
    conn.execute(
        "UPDATE jobs SET status=?, finished=?, result=?, error=?, exit_code=?,"
        " progress=CASE WHEN ?='completed' THEN 1.0 ELSE progress END,"
        " message=CASE WHEN ?='completed' AND (message='' OR message LIKE 'slurm %')"
        " THEN 'done' ELSE message END WHERE id=? AND status='running'",
        (status, float(d["t"]), dumps_safe(result) if result is not None else None, error,
         0 if status == "completed" else 1, status, status, job.id))
    return str(status)
