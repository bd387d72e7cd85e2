"""The scheduler's side of jobs on Slurm (executor ``slurm``): submit, ingest, watch, cancel.

Submitting writes what the worker needs to ``<run dir>/slurm/job-<id>/job.json`` (a job with no
run: ``<home>/jobs/<id>/slurm/...``) and a batch script beside it, and runs ``sbatch``. The
worker (``engine.worker --spool``) never opens the database; it writes its spool there.

Every tick the new complete records of each running Slurm job's spool are applied with the
spool's offset in one transaction (engine/data/spool.py): exactly once, across crashes and
restarts. Slurm is asked at most every ``slurm_poll_s`` what its jobs do (one squeue for all);
its state is stored and shown. A job Slurm says has ended, whose spool (read to the end once
more) has no ``finished`` record, ends failed with Slurm's state and reason ("slurm: TIMEOUT
(TimeLimit)"), or cancelled if a cancel was asked for.

Cancel: a ``cancel`` file in the spool directory (the worker's heartbeat sees it) and SIGTERM
through ``scancel --full --signal=TERM``; after the cancel grace a plain ``scancel``. A job
still pending is just removed.

Nothing here is kept that the database does not hold, so a restarted scheduler adopts the
running Slurm jobs as they are (at worst a cancel's SIGTERM is sent again).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from .data import spool as data
from .data.jobs import end_job
from .paths import job_log_path
from .process_tree import WORKER_MARGIN_S
from .settings import Settings
from .slurm import SlurmError, SlurmState, batch_script, cancel, cancel_named, query, submit
from .spool import CANCEL_FILE, JOB_FILE, SPOOL_FILE, SpoolRead, read_from

_REPO = Path(__file__).resolve().parent.parent


def spool_dir(settings: Settings, job_id: int, run_id: int | None) -> Path:
    base = settings.run_dir(run_id) if run_id else settings.home / "jobs" / str(int(job_id))
    return base / "slurm" / f"job-{int(job_id)}"


class SpooledJobs:
    def __init__(self, settings: Settings, events: list[str]):
        self.settings = settings
        self.events = events
        self._last_poll = 0.0
        self._term_sent: dict[int, float] = {}  # job -> when SIGTERM went
        self._killed: set[int] = set()

    # ------------------------------------------------------------------ submitting

    def start(self, conn: sqlite3.Connection, job_id: int) -> None:
        if not data.claim(conn, job_id):
            return
        try:
            slurm_id = self._submit(conn, job_id)
        except (SlurmError, OSError, ValueError) as exc:
            self._end(conn, job_id, "failed", f"slurm: could not submit: {exc}")
            return
        data.submitted(conn, job_id, slurm_id)
        self.events.append(f"job {job_id} submitted to slurm as {slurm_id}")
        self._last_poll = 0.0  # say what Slurm makes of it soon

    def _submit(self, conn: sqlite3.Connection, job_id: int) -> str:
        found = data.for_submit(conn, job_id)
        if found is None:
            raise ValueError(f"job {job_id} does not exist")
        job, last_step = found
        s = self.settings
        run_dir = s.run_dir(job.run_id) if job.run_id else s.home / "jobs" / str(job_id)
        directory = spool_dir(s, job_id, job.run_id)
        directory.mkdir(parents=True, exist_ok=True)  # modes: the scheduler's umask
        spec = {"job_id": job_id, "type": job.type, "run_id": job.run_id, "params": job.params,
                "config": job.config, "adapter": job.adapter, "experiment": job.experiment,
                "run_number": job.run_number, "run_dir": str(run_dir), "home": str(s.home),
                "last_step": last_step, "heartbeat_s": s.heartbeat_s,
                "cancel_grace_s": s.cancel_grace_s, "umask": s.access.umask}
        (directory / JOB_FILE).write_text(json.dumps(spec, indent=1))
        options = dict(job.params.get("slurm") or {})
        env = {"PYTHONUNBUFFERED": "1", "LABDECK_CANCEL_GRACE": str(s.cancel_grace_s),
               "PYTHONPATH": str(_REPO) + (os.pathsep + os.environ["PYTHONPATH"]
                                           if os.environ.get("PYTHONPATH") else "")}
        log = job_log_path(s, job_id, job.run_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        script = directory / "job.sbatch"
        script.write_text(batch_script(job_id, directory, log, options, _REPO, env))
        return submit(script)

    # ------------------------------------------------------------------ watching

    def tick(self, conn: sqlite3.Connection) -> None:
        jobs = data.active(conn)
        if not jobs:
            return
        running = []
        for job in jobs:
            if job.slurm_id is None:
                self._unsubmitted(conn, job)
            elif self._ingest(conn, job, final=False) is None:
                running.append(job)
        self._cancels(conn, running)
        if running and time.monotonic() - self._last_poll >= self.settings.slurm_poll_s:
            self._last_poll = time.monotonic()
            try:
                states = query(j.slurm_id for j in running if j.slurm_id)
            except SlurmError as exc:
                self.events.append(f"slurm: {exc}")
                return
            for job in running:
                assert job.slurm_id is not None
                state = states.get(job.slurm_id)
                if state is not None:
                    self._observed(conn, job, state)

    def _unsubmitted(self, conn: sqlite3.Connection, job: data.SpooledJob) -> None:
        """Claimed but no Slurm id recorded: a scheduler died while submitting. Cancel what
        it may have submitted, and fail the job."""
        if job.started is not None and time.time() - job.started < self.settings.stale_after_s:
            return  # being submitted right now
        cancel_named(f"labdeck-{job.id}")
        self._end(conn, job.id, "cancelled" if job.cancel_requested else "failed",
                  "slurm: the submission was interrupted (the scheduler stopped)")

    def _ingest(self, conn: sqlite3.Connection, job: data.SpooledJob,
                final: bool) -> str | None:
        """Apply the spool's new records; the job's final status if it reported its end."""
        path = spool_dir(self.settings, job.id, job.run_id) / SPOOL_FILE
        read = read_from(path, job.spool_offset, final=final)
        for line in read.bad:
            self.events.append(f"job {job.id}: damaged spool line skipped: {line!r}")
        if not read.records and read.offset == job.spool_offset:
            return None
        ended = data.apply(conn, job, read.records, read.offset, self._stopped_by(job, read))
        if any(r.kind == "started" for r in read.records):
            self._last_poll = 0.0  # it runs: say where soon
        job.spool_offset = read.offset
        job.spool_seq = max([job.spool_seq, *(r.seq for r in read.records)])
        if ended is not None:
            self.events.append(f"job {job.id} {ended}")
            self._forget(job.id)
        return ended

    def _stopped_by(self, job: data.SpooledJob, read: SpoolRead) -> str | None:
        """What Slurm says of a job whose worker stopped on a SIGTERM no cancel sent (a time
        limit, a preemption): the failed job's error."""
        if job.cancel_requested or job.slurm_id is None or not any(
                r.kind == "finished" and r.data.get("status") == "cancelled"
                for r in read.records):
            return None
        try:
            state = query([job.slurm_id]).get(job.slurm_id)
        except SlurmError as exc:
            return f"stopped by Slurm (SIGTERM); its state could not be read: {exc}"
        if state is None:
            return "stopped by Slurm (SIGTERM)"
        if state.state == "COMPLETING" and state.reason == "TimeLimit":
            return "slurm: TIMEOUT (TimeLimit)"  # what it says once the job is gone
        return f"slurm: {state.text}"

    def _observed(self, conn: sqlite3.Connection, job: data.SpooledJob,
                  state: SlurmState) -> None:
        assert job.slurm_id is not None
        if not state.ended:
            if state.text != job.slurm_state:
                data.set_state(conn, job.id, job.slurm_id, state.text, state.node)
            return
        if self._ingest(conn, job, final=True) is not None:
            return
        if job.cancel_requested:
            self._end(conn, job.id, "cancelled", "cancelled" + (
                " (killed after grace period)" if job.id in self._killed else ""))
        else:
            self._end(conn, job.id, "failed", f"slurm: {state.text}")
        self._forget(job.id)

    # ------------------------------------------------------------------ cancelling

    def _cancels(self, conn: sqlite3.Connection, running: list[data.SpooledJob]) -> None:
        for job in running:
            if not job.cancel_requested or job.slurm_id is None:
                continue
            sent = self._term_sent.get(job.id)
            try:
                if sent is None:
                    self._term_sent[job.id] = time.monotonic()
                    directory = spool_dir(self.settings, job.id, job.run_id)
                    (directory / CANCEL_FILE).touch()
                    pending = (job.slurm_state or "PENDING").startswith("PENDING")
                    cancel(job.slurm_id, term=not pending)
                elif job.id not in self._killed and time.monotonic() - sent > (
                        self.settings.cancel_grace_s + WORKER_MARGIN_S):
                    self._killed.add(job.id)
                    cancel(job.slurm_id)
            except (SlurmError, OSError) as exc:
                self.events.append(f"job {job.id}: cancel: {exc}")

    def _forget(self, job_id: int) -> None:
        self._term_sent.pop(job_id, None)
        self._killed.discard(job_id)

    def _end(self, conn: sqlite3.Connection, job_id: int, status: str, reason: str) -> None:
        end_job(conn, job_id, status, reason)
        self.events.append(f"job {job_id} {status}: {reason}")

