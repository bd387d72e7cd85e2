"""Jobs: list, inspect, cancel, submit eval / index builds, wait for an end.

Reading jobs (and runs) first settles what is gone: a running job or tracking run of this
host whose process died, or whose pid now names another process, is failed right there, so no
command or screen shows a dead process as running, whether or not a scheduler runs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from .experiments import NotFoundError
from .liveness import last_output, same_process
from .models import EvalRecord, IndexRecord, Job, dumps, loads
from .paths import job_log_path
from .process_tree import ProcessTree, job_marker
from .records import FINAL_STATUSES as FINAL
from .records import HOST, RUNNING_HERE_SQL, end_gone, gone_end, last_output_sql, now
from .registry import get_adapter_class
from .schema import connect_sync
from .settings import Settings
from .store import Store

_JOB_SQL = ("SELECT id, type, status, run_id, target, params, progress, message, result, error,"
            " exit_code, pid, host, heartbeat, cancel_requested, created, started, finished,"
            " CASE WHEN status='running' THEN "
            + last_output_sql("jobs.run_id", "jobs.activity", "jobs.started") + " END"
            " FROM jobs")

# what a read found gone: (kind "job" or "run", id) -> (status, reason) it ends with
Gone = dict[tuple[str, int], tuple[str, str]]


def _job(row: tuple, settings: Settings, gone: Gone) -> Job:
    job = Job(id=row[0], type=row[1], status=row[2], run_id=row[3], target=row[4],
              params=loads(row[5], {}), progress=row[6], message=row[7], result=loads(row[8]),
              error=row[9], exit_code=row[10], pid=row[11], host=row[12], heartbeat=row[13],
              cancel_requested=bool(row[14]), created=row[15], started=row[16],
              finished=row[17])
    if job.status == "running":
        end = gone.get(("job", job.id))
        if end is not None:  # the database refused the update (a fault): say it anyway
            job.status, job.message = end
            job.error = job.message if job.status == "failed" else None
        else:
            job.last_output = last_output(row[18], job_log_path(settings, job.id, job.run_id))
    return job


def _end_gone(settings: Settings, gone: list[tuple[str, int, int, bool]]) -> None:
    conn = connect_sync(settings.db_path, migrate=False)
    try:
        conn.execute("PRAGMA busy_timeout=1000")  # a read must not hang on a locked database
        end_gone(conn, gone)
    finally:
        conn.close()
    # a dead worker's job may have left processes (a setsid'd descendant): nothing of a job
    # outlives it, whoever notices the death
    for kind, job_id, _pid, _cancel in gone:
        if kind == "job":
            try:
                ProcessTree(marker=job_marker(settings.home, job_id)).kill()
            except OSError:
                pass


class JobsMixin:
    store: Store
    settings: Settings

    async def settle_gone(self) -> Gone:
        """Fail the running jobs and tracking runs of this host whose process is gone (or is
        another process now: its start time differs). One indexed query and a /proc read per
        running item. Returns what was gone, for a read to mask if the write failed."""
        rows = await self.store.fetchall(RUNNING_HERE_SQL, (HOST, HOST))
        gone = [(kind, item, pid, bool(cancel)) for kind, item, pid, started, cancel in rows
                if not same_process(pid, started)]
        if not gone:
            return {}
        try:
            await asyncio.to_thread(_end_gone, self.settings, gone)
        except (sqlite3.Error, OSError):
            pass  # the rows stay running in the database; the reads show them ended
        return {(kind, item): gone_end(kind, pid, cancel) for kind, item, pid, cancel in gone}

    async def list_jobs(self, status: str | None = None, type: str | None = None,
                        limit: int = 500) -> list[Job]:
        gone = await self.settle_gone()
        sql, params = _JOB_SQL + " WHERE 1=1", []
        if status:
            sql += " AND status=?"
            params.append(status)
        if type:
            sql += " AND type=?"
            params.append(type)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_job(r, self.settings, gone) for r in await self.store.fetchall(sql, params)]

    async def get_job(self, job_id: int) -> Job:
        gone = await self.settle_gone()
        row = await self.store.fetchone(_JOB_SQL + " WHERE id=?", (int(job_id),))
        if row is None:
            raise NotFoundError(f"no job {job_id}")
        return _job(row, self.settings, gone)

    async def cancel_job(self, job_id: int) -> Job:
        """Ask a job to stop. A queued job is cancelled at once; a running one gets the flag:
        its worker sees it with its next heartbeat, the scheduler sends the worker SIGTERM,
        and the job's processes get the grace period before SIGKILL (engine/process_tree.py
        says who signals what, so that each gets exactly one SIGTERM)."""
        job = await self.get_job(job_id)
        if job.status in FINAL:
            return job
        async with self.store.write() as db:
            await db.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job.id,))
            await db.execute(
                "UPDATE jobs SET status='cancelled', finished=?, message='cancelled before start'"
                " WHERE id=? AND status='queued'", (now(), job.id))
            if job.type == "train" and job.run_id:
                await db.execute(
                    "UPDATE runs SET status='cancelled', finished=? WHERE id=? AND status='queued'",
                    (now(), job.run_id))
        return await self.get_job(job.id)

    async def submit_job(self, job_type: str, run_id: int | None, params: dict[str, Any],
                         target: str) -> int:
        async with self.store.write() as db:
            cur = await db.execute(
                "INSERT INTO jobs(type, status, run_id, target, params, created)"
                " VALUES (?,?,?,?,?,?)", (job_type, "queued", run_id, target, dumps(params), now()))
            return int(cur.lastrowid)

    async def _run_job(self, job_type: str, run_ref: int | str, checkpoint: str | None,
                       capability: str) -> int:
        run = await self.get_run(run_ref)  # type: ignore[attr-defined]
        cls = get_adapter_class(run.adapter)
        if not cls.supports(capability):
            raise ValueError(f"adapter {run.adapter} does not support {capability}")
        ckpts = await self.list_checkpoints(run.id)  # type: ignore[attr-defined]
        names = [c["name"] for c in ckpts]
        if checkpoint is None:
            checkpoint = "best.pt" if "best.pt" in names else (names[-1] if names else None)
        if checkpoint is None or checkpoint not in names:
            raise NotFoundError(f"run {run.label} has no checkpoint {checkpoint or ''!r}"
                                f" (available: {', '.join(names) or 'none'})")
        return await self.submit_job(job_type, run.id, {"checkpoint": checkpoint},
                                     f"{run.label} › {checkpoint}")

    async def start_eval(self, run_ref: int | str, checkpoint: str | None = None) -> int:
        return await self._run_job("eval", run_ref, checkpoint, "evaluate")

    async def start_index_build(self, run_ref: int | str, checkpoint: str | None = None) -> int:
        return await self._run_job("index_build", run_ref, checkpoint, "index")

    async def wait_job(self, job_id: int, timeout: float | None = None,
                       poll_s: float = 0.2) -> Job:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            job = await self.get_job(job_id)
            if job.status in FINAL:
                return job
            if deadline is not None and loop.time() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            await asyncio.sleep(poll_s)

    # ------------------------------------------------------------------ results

    async def list_eval_results(self, run_id: int | None = None) -> list[EvalRecord]:
        sql = ("SELECT v.id, v.run_id, v.job_id, v.checkpoint, v.view_type, v.data, v.summary,"
               " v.created, e.name, r.number FROM eval_results v JOIN runs r ON r.id=v.run_id"
               " JOIN experiments e ON e.id=r.experiment_id")
        params: tuple = ()
        if run_id is not None:
            sql += " WHERE v.run_id=?"
            params = (run_id,)
        rows = await self.store.fetchall(sql + " ORDER BY v.id DESC", params)
        return [EvalRecord(id=r[0], run_id=r[1], job_id=r[2], checkpoint=r[3], view_type=r[4],
                           data=loads(r[5], {}), summary=loads(r[6], {}), created=r[7],
                           experiment=r[8], run_number=r[9]) for r in rows]

    async def list_indexes(self, run_id: int | None = None) -> list[IndexRecord]:
        sql = "SELECT id, run_id, checkpoint, path, job_id, info, created FROM indexes"
        params: tuple = ()
        if run_id is not None:
            sql += " WHERE run_id=?"
            params = (run_id,)
        rows = await self.store.fetchall(sql + " ORDER BY id DESC", params)
        return [IndexRecord(id=r[0], run_id=r[1], checkpoint=r[2], path=r[3], job_id=r[4],
                            info=loads(r[5], {}), created=r[6]) for r in rows]
