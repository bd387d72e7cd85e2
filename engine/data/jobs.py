"""SQL on the ``jobs`` table: submitting and listing jobs, the scheduler's claim and watch,
a worker's start, heartbeat and end, cancel, and the liveness reads that end the jobs (and the
tracking runs) whose process is gone. A job status means what these statements make it mean:
queued -> running (claimed, or started by its worker) -> completed, failed or cancelled.

Resources: a job's ``gpus`` / ``gpu_mem_mb`` are what it asks for; NULL means inherited, read
through ``_INHERITED`` (an eval or index job asks what its run's training job asked, a study
job what its experiment asks, a training job what its experiment asks) and fixed on the job
when it is claimed, with the ``devices`` it was given (JSON list of NVML indices) and when.
The running jobs' ``devices`` are the assignment table: nothing else is kept, so a restarted
scheduler knows who holds what, and a job that ended holds nothing."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..models import Job
from ..records import dumps_safe, gone_end, loads
from ..schema import write_tx
from . import experiments, runs
from .metrics import last_output_sql
from .rows import Page, fetch_all, fetch_one, inserted_id, page_of, scalar

# [gpus, gpu_mem_mb] a job with no request of its own inherits (JSON), evaluated only for it
_INHERITED = (
    "CASE WHEN jobs.gpus IS NULL THEN COALESCE("
    "(SELECT json_array(t.gpus, t.gpu_mem_mb) FROM jobs t WHERE t.run_id=jobs.run_id"
    " AND t.type='train' AND t.id<>jobs.id AND t.gpus IS NOT NULL ORDER BY t.id DESC LIMIT 1),"
    " (SELECT json_array(e.gpus, e.gpu_mem_mb) FROM runs r JOIN experiments e"
    " ON e.id=r.experiment_id WHERE r.id=jobs.run_id),"
    " (SELECT json_array(e.gpus, e.gpu_mem_mb) FROM studies s JOIN experiments e"
    " ON e.id=COALESCE(s.experiment_id, s.trials_experiment_id) WHERE s.job_id=jobs.id))"
    " END")
# a job this machine runs (not one on Slurm, engine/data/spool.py: the cluster places and
# runs those, and the scheduler watches them apart)
_LOCAL = "COALESCE(json_extract(params, '$.executor'), 'local') <> 'slurm'"
_JOB_SQL = ("SELECT id, type, status, run_id, target, params, progress, message, result, error,"
            " exit_code, pid, host, heartbeat, cancel_requested, created, started, finished,"
            " gpus, gpu_mem_mb, devices, devices_at, resource_note, slurm_id, slurm_state, "
            + _INHERITED + " AS inherited, CASE WHEN status='running' THEN "
            + last_output_sql("jobs.run_id", "jobs.activity", "jobs.started")
            + " END AS recorded_output FROM jobs")


def _request(r: sqlite3.Row) -> tuple[int, int | None]:
    """(gpus, gpu_mem_mb) the job asks for: its own, or inherited; none at all: the CPU."""
    if r["gpus"] is not None:
        return int(r["gpus"]), r["gpu_mem_mb"]
    inherited = loads(r["inherited"]) or [0, None]
    return int(inherited[0] or 0), inherited[1]


def _job(r: sqlite3.Row) -> Job:
    """A Job; while running, ``last_output`` is what the database recorded (the API adds the
    log file's last write)."""
    gpus, gpu_mem_mb = _request(r)
    return Job(id=r["id"], type=r["type"], status=r["status"], run_id=r["run_id"],
               target=r["target"], params=loads(r["params"], {}), progress=r["progress"],
               message=r["message"], result=loads(r["result"]), error=r["error"],
               exit_code=r["exit_code"], pid=r["pid"], host=r["host"],
               heartbeat=r["heartbeat"], cancel_requested=bool(r["cancel_requested"]),
               created=r["created"], started=r["started"], finished=r["finished"],
               last_output=r["recorded_output"], gpus=gpus, gpu_mem_mb=gpu_mem_mb,
               devices=loads(r["devices"]), devices_at=r["devices_at"],
               resource_note=r["resource_note"], slurm_id=r["slurm_id"],
               slurm_state=r["slurm_state"])


# ------------------------------------------------------------------ reading


def list_jobs(conn: sqlite3.Connection, status: str | None = None, type: str | None = None,
              limit: int = 500) -> list[Job]:
    """Newest first, optionally of one status and/or type."""
    sql = _JOB_SQL + " WHERE 1=1"
    params: list[Any] = []
    if status:
        sql += " AND status=?"
        params.append(status)
    if type:
        sql += " AND type=?"
        params.append(type)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [_job(r) for r in fetch_all(conn, sql, params)]


def _filters(status: str | None, type: str | None) -> tuple[list[str], list[Any]]:
    where, params = [], []
    if status:
        where.append("status=?")
        params.append(status)
    if type:
        where.append("type=?")
        params.append(type)
    return where, params


def jobs_page(conn: sqlite3.Connection, status: str | None = None, type: str | None = None,
              after: int | None = None, limit: int = 500, offset: int = 0) -> Page[Job]:
    """Up to ``limit`` jobs newest first (by id), optionally of one status and/or type,
    starting after job ``after`` (the page before's ``next``) and ``offset`` further. Only
    the ids are stepped over; the rows are built for the page alone."""
    where, params = _filters(status, type)
    if after is not None:
        where.append("id<?")
        params.append(after)
    keys = "SELECT id FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
    rows = fetch_all(conn, f"{_JOB_SQL} WHERE id IN ({keys} ORDER BY id DESC LIMIT ? OFFSET ?)"
                           " ORDER BY id DESC", [*params, limit, offset])
    return page_of([_job(r) for r in rows], limit, lambda job: job.id)


def count_jobs(conn: sqlite3.Connection, status: str | None = None,
               type: str | None = None) -> int:
    where, params = _filters(status, type)
    return int(scalar(conn, "SELECT COUNT(*) FROM jobs"
                            + (" WHERE " + " AND ".join(where) if where else ""), params))


def get_job(conn: sqlite3.Connection, job_id: int) -> Job | None:
    row = fetch_one(conn, _JOB_SQL + " WHERE id=?", (job_id,))
    return None if row is None else _job(row)


def count(conn: sqlite3.Connection, status: str) -> int:
    return int(scalar(conn, "SELECT COUNT(*) FROM jobs WHERE status=?", (status,)))


def active_job_of_run(conn: sqlite3.Connection, run_id: int) -> int | None:
    """The run's newest queued or running job."""
    return scalar(conn, "SELECT id FROM jobs WHERE run_id=? AND status IN ('queued','running')"
                        " ORDER BY id DESC LIMIT 1", (run_id,))


def train_job_of_run(conn: sqlite3.Connection, run_id: int) -> int | None:
    """The run's newest training job."""
    return scalar(conn, "SELECT MAX(id) FROM jobs WHERE run_id=? AND type='train'", (run_id,))


def run_of_job(conn: sqlite3.Connection, job_id: int) -> int | None:
    return scalar(conn, "SELECT run_id FROM jobs WHERE id=?", (job_id,))


def active_in_experiment(conn: sqlite3.Connection, experiment_id: int) -> int:
    """How many queued or running jobs work on the experiment's runs."""
    return int(scalar(conn, "SELECT COUNT(*) FROM jobs j JOIN runs r ON r.id=j.run_id"
                            " WHERE r.experiment_id=? AND j.status IN ('queued','running')",
                      (experiment_id,)))


# ------------------------------------------------------------------ submitting and cancelling


def _insert(conn: sqlite3.Connection, job_type: str, run_id: int | None, target: str,
            params: Mapping[str, Any], t: float, gpus: int | None = None,
            gpu_mem_mb: int | None = None) -> int:
    cur = conn.execute(
        "INSERT INTO jobs(type, status, run_id, target, params, created, gpus, gpu_mem_mb)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (job_type, "queued", run_id, target, dumps_safe(params), t, gpus, gpu_mem_mb))
    return inserted_id(cur)


def submit(conn: sqlite3.Connection, job_type: str, run_id: int | None,
           params: Mapping[str, Any], target: str, gpus: int | None = None,
           gpu_mem_mb: int | None = None) -> int:
    """Queue a job; its id. ``gpus`` None: it asks what it inherits (module docstring)."""
    with write_tx(conn):
        return _insert(conn, job_type, run_id, target, params, time.time(), gpus, gpu_mem_mb)


def queue_training(conn: sqlite3.Connection, experiment_id: int, experiment: str,
                   config: Mapping[str, Any], params: Mapping[str, Any],
                   gpus: int | None = None, gpu_mem_mb: int | None = None) -> tuple[int, int]:
    """A new queued run of the experiment and the training job that runs it, in one
    transaction. Returns (run_id, job_id)."""
    t = time.time()
    with write_tx(conn):
        run_id, number = runs.insert_queued(conn, experiment_id, config, t)
        job_id = _insert(conn, "train", run_id, f"{experiment} › run {number}", params, t,
                         gpus, gpu_mem_mb)
        experiments.touch(conn, experiment_id, t)
    return run_id, job_id


def request_cancel(conn: sqlite3.Connection, job: Job) -> None:
    """Raise the job's cancel flag; a job (and a training job's run) that has not started is
    cancelled at once."""
    with write_tx(conn):
        conn.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job.id,))
        conn.execute(
            "UPDATE jobs SET status='cancelled', finished=?, message='cancelled before start'"
            " WHERE id=? AND status='queued'", (time.time(), job.id))
        if job.type == "train" and job.run_id:
            runs.cancel_queued(conn, job.run_id, time.time())


# ------------------------------------------------------------------ the scheduler's side


@dataclass
class QueuedJob:
    """A queued job, what it asks for, and the note stored on it (why it waits)."""

    id: int
    run_id: int | None
    type: str
    target: str
    gpus: int
    gpu_mem_mb: int | None
    note: str | None
    executor: str = "local"  # or "slurm": the cluster places it (engine/spooled_jobs.py)


@dataclass
class RunningJob:
    """What the scheduler needs to know of a running job's worker."""

    id: int
    pid: int | None
    host: str | None
    heartbeat: float | None
    cancel_requested: bool


@dataclass
class JobWorker:
    id: int
    pid: int | None  # None until the scheduler recorded the worker it started


@dataclass
class JobOutput:
    """A running job and the last output the database recorded for it (progress, metrics,
    start); heartbeats are not output."""

    id: int
    run_id: int | None
    pid: int | None
    recorded: float | None


def queued(conn: sqlite3.Connection, limit: int) -> list[QueuedJob]:
    """The oldest ``limit`` queued jobs, oldest first, with what each asks for."""
    out = []
    for r in fetch_all(conn, "SELECT id, run_id, type, target, gpus, gpu_mem_mb,"
                             " resource_note, json_extract(params, '$.executor') AS executor, "
                             + _INHERITED + " AS inherited FROM jobs"
                             " WHERE status='queued' ORDER BY id LIMIT ?", (limit,)):
        gpus, gpu_mem_mb = _request(r)
        out.append(QueuedJob(id=r["id"], run_id=r["run_id"], type=r["type"], target=r["target"],
                             gpus=gpus, gpu_mem_mb=gpu_mem_mb, note=r["resource_note"],
                             executor=r["executor"] or "local"))
    return out


def cpu_running(conn: sqlite3.Connection) -> int:
    """Running jobs that hold no GPU (they count against the CPU concurrency limit)."""
    return int(scalar(conn, "SELECT COUNT(*) FROM jobs WHERE status='running'"
                            " AND (devices IS NULL OR devices='[]') AND " + _LOCAL))


def gpu_holders(conn: sqlite3.Connection, host: str) -> dict[int, list[int]]:
    """NVML index -> the running jobs of ``host`` that hold that GPU: the assignment table."""
    out: dict[int, list[int]] = {}
    for r in fetch_all(conn, "SELECT id, devices FROM jobs WHERE status='running' AND host=?"
                             " AND devices IS NOT NULL AND devices<>'[]'", (host,)):
        for index in loads(r["devices"], []):
            out.setdefault(int(index), []).append(r["id"])
    return out


def set_notes(conn: sqlite3.Connection, notes: Mapping[int, str]) -> None:
    """Why each of these queued jobs waits (only while it is queued)."""
    with write_tx(conn):
        conn.executemany("UPDATE jobs SET resource_note=? WHERE id=? AND status='queued'",
                         [(note, job_id) for job_id, note in notes.items()])


def claim(conn: sqlite3.Connection, job_id: int, host: str, devices: Sequence[int] | None = None,
          gpus: int | None = None, gpu_mem_mb: int | None = None, note: str = "") -> bool:
    """Mark a queued job running on ``host`` (its worker is about to start) with the GPUs it
    was given (``devices``: NVML indices; [] the CPU on a machine with GPUs; None no GPU
    here) and what it asked for; False when it is no longer queued or was cancelled
    meanwhile."""
    t = time.time()
    with write_tx(conn):
        cur = conn.execute(
            "UPDATE jobs SET status='running', started=?, heartbeat=?, host=?,"
            " gpus=COALESCE(?, gpus), gpu_mem_mb=CASE WHEN ? IS NULL THEN gpu_mem_mb ELSE ? END,"
            " devices=?, devices_at=?, resource_note=?"
            " WHERE id=? AND status='queued' AND cancel_requested=0",
            (t, t, host, gpus, gpus, gpu_mem_mb,
             None if devices is None else json.dumps(list(devices)),
             None if devices is None else t, note or None, job_id))
    return cur.rowcount > 0


def record_worker(conn: sqlite3.Connection, job_id: int, pid: int,
                  pid_started: float | None) -> None:
    """The worker process the scheduler started for the job."""
    with write_tx(conn):
        conn.execute("UPDATE jobs SET pid=?, pid_started=? WHERE id=?",
                     (pid, pid_started, job_id))


def status_and_cancel(conn: sqlite3.Connection, job_id: int) -> tuple[str, bool] | None:
    """(status, cancel requested) of a job; None when there is no such job."""
    row = fetch_one(conn, "SELECT status, cancel_requested FROM jobs WHERE id=?", (job_id,))
    return None if row is None else (row["status"], bool(row["cancel_requested"]))


def running_jobs(conn: sqlite3.Connection) -> list[RunningJob]:
    return [RunningJob(id=r["id"], pid=r["pid"], host=r["host"], heartbeat=r["heartbeat"],
                       cancel_requested=bool(r["cancel_requested"]))
            for r in fetch_all(conn, "SELECT id, pid, host, heartbeat, cancel_requested"
                                     " FROM jobs WHERE status='running' AND " + _LOCAL)]


def cancelling(conn: sqlite3.Connection, host: str) -> list[JobWorker]:
    """The running jobs of ``host`` whose cancel was asked for."""
    return [JobWorker(id=r["id"], pid=r["pid"])
            for r in fetch_all(conn, "SELECT id, pid FROM jobs WHERE status='running'"
                                     " AND cancel_requested=1 AND host=? AND " + _LOCAL,
                               (host,))]


def running_output(conn: sqlite3.Connection, host: str) -> list[JobOutput]:
    """The running jobs of ``host`` that have a worker pid, and their recorded output."""
    return [JobOutput(id=r["id"], run_id=r["run_id"], pid=r["pid"], recorded=r["recorded"])
            for r in fetch_all(
                conn, "SELECT j.id, j.run_id, j.pid, "
                + last_output_sql("j.run_id", "j.activity", "j.started")
                + " AS recorded FROM jobs j WHERE j.status='running' AND j.host=?"
                " AND j.pid IS NOT NULL", (host,))]


def end_job(conn: sqlite3.Connection, job_id: int, status: str, reason: str,
            exit_code: int | None = None) -> bool:
    """End a queued or running job that its worker did not end (it died, stalled, was
    cancelled before it could say so); a train job's run ends with it. False if the job had
    already ended."""
    with write_tx(conn):
        cur = conn.execute(
            "UPDATE jobs SET status=?, error=?, message=?, finished=?, exit_code=?"
            " WHERE id=? AND status IN ('running','queued')",
            (status, reason if status == "failed" else None, reason.split("\n")[0], time.time(),
             exit_code, job_id))
    row = fetch_one(conn, "SELECT run_id, type FROM jobs WHERE id=?", (job_id,))
    if row and row["run_id"] and row["type"] == "train":
        runs.finish_run(conn, row["run_id"], status, reason if status == "failed" else None)
    return cur.rowcount > 0


# ------------------------------------------------------------------ processes gone


@dataclass
class LiveItem:
    """A running job or tracking run of this host and the process it names."""

    kind: str  # "job" or "run"
    id: int
    pid: int
    pid_started: float | None
    cancel_requested: bool


def running_here(conn: sqlite3.Connection, host: str) -> list[LiveItem]:
    """The running jobs and tracking runs that ``host`` started (one indexed query)."""
    return [LiveItem(kind=r["kind"], id=r["id"], pid=r["pid"], pid_started=r["pid_started"],
                     cancel_requested=bool(r["cancel_requested"]))
            for r in fetch_all(
                conn, "SELECT 'job' AS kind, id, pid, pid_started, cancel_requested FROM jobs"
                " WHERE status='running' AND host=? AND pid IS NOT NULL"
                " UNION ALL SELECT 'run', id, pid, pid_started, 0 FROM runs"
                " WHERE status='running' AND source='tracking' AND host=? AND pid IS NOT NULL",
                (host, host))]


def end_gone(conn: sqlite3.Connection, gone: list[LiveItem]) -> None:
    """End the jobs and tracking runs in ``gone``, whose process is no more, each only if it
    still names that pid."""
    for item in gone:
        status, reason = gone_end(item.kind, item.pid, item.cancel_requested)
        if item.kind == "job":
            if scalar(conn, "SELECT 1 FROM jobs WHERE id=? AND status='running' AND pid=?",
                      (item.id, item.pid)):
                end_job(conn, item.id, status, reason)
        elif runs.running_as(conn, item.id, item.pid):
            runs.finish_run(conn, item.id, status, reason if status == "failed" else None)


# ------------------------------------------------------------------ the worker's side


@dataclass
class WorkerJob:
    """What a worker needs to run its job: the job, its run's config and its adapter."""

    type: str
    run_id: int | None
    params: dict[str, Any]
    config: dict[str, Any]
    adapter: str | None
    experiment: str | None
    run_number: int | None


def for_worker(conn: sqlite3.Connection, job_id: int) -> WorkerJob | None:
    r = fetch_one(conn, "SELECT j.type, j.run_id, j.params, r.config, e.adapter,"
                        " e.name AS experiment, r.number AS run_number FROM jobs j"
                        " LEFT JOIN runs r ON r.id=j.run_id LEFT JOIN experiments e"
                        " ON e.id=r.experiment_id WHERE j.id=?", (job_id,))
    if r is None:
        return None
    return WorkerJob(type=r["type"], run_id=r["run_id"], params=json.loads(r["params"] or "{}"),
                     config=json.loads(r["config"] or "{}"), adapter=r["adapter"],
                     experiment=r["experiment"], run_number=r["run_number"])


def worker_started(conn: sqlite3.Connection, job_id: int, pid: int, pid_started: float | None,
                   host: str, train_run: int | None) -> None:
    """The worker runs the job (and the training run ``train_run``, if given)."""
    with write_tx(conn):
        conn.execute(
            "UPDATE jobs SET status='running', pid=?, pid_started=?, host=?, heartbeat=?,"
            " started=COALESCE(started, ?) WHERE id=? AND status IN ('queued','running')",
            (pid, pid_started, host, time.time(), time.time(), job_id))
        if train_run:
            runs.mark_running(conn, train_run, pid, pid_started, host, time.time())


def heartbeat(conn: sqlite3.Connection, job_id: int, activity: float,
              progress: tuple[float, str] | None = None) -> bool:
    """The worker lives (and last reported anything at ``activity``; ``progress``: its new
    (fraction, message)). Returns whether the job's cancel was asked for."""
    with write_tx(conn):
        if progress is not None:
            conn.execute(
                "UPDATE jobs SET heartbeat=?, activity=?, progress=?, message=? WHERE id=?",
                (time.time(), activity, progress[0], progress[1], job_id))
        else:
            conn.execute("UPDATE jobs SET heartbeat=?, activity=? WHERE id=?",
                         (time.time(), activity, job_id))
        cancel = scalar(conn, "SELECT cancel_requested FROM jobs WHERE id=?", (job_id,))
    return bool(cancel)


def worker_finished(conn: sqlite3.Connection, job_id: int, status: str, result: Any,
                    error: str | None) -> None:
    """The worker's end of its job (only if still running: a cancel may have ended it);
    a completed job shows full progress and, if it said nothing, "done"."""
    with write_tx(conn):
        conn.execute(
            "UPDATE jobs SET status=?, finished=?, result=?, error=?, exit_code=?,"
            " progress=CASE WHEN ?='completed' THEN 1.0 ELSE progress END,"
            " message=CASE WHEN ?='completed' AND message='' THEN 'done' ELSE message END"
            " WHERE id=? AND status='running'",
            (status, time.time(), dumps_safe(result) if result is not None else None, error,
             0 if status == "completed" else 1, status, status, job_id))
