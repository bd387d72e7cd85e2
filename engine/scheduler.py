"""The job scheduler: claims queued jobs up to the concurrency limit, starts each in a worker
process (own session), watches heartbeats, applies cancel (SIGTERM to the group, grace, then
SIGKILL) and reconciles jobs whose workers died. Exactly one scheduler serves a home at a time,
through a lease row with a heartbeat.

The asyncio task runs each tick in a thread on its own sqlite3 connection, so the event loop
(the TUI) never waits on process or file-system work.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .paths import job_log_path
from .records import HOST, finish_run, now, pid_alive
from .schema import connect_sync, write_tx
from .settings import Settings


@dataclass
class _Tracked:
    job_id: int
    pid: int
    proc: subprocess.Popen | None = None  # None when adopted from an earlier scheduler
    term_sent: float | None = None
    killed: bool = False


@dataclass
class SchedulerState:
    holds_lease: bool = False
    mode: str = "embedded"
    running: int = 0
    limit: int = 1
    owner_pid: int | None = None
    owner_mode: str | None = None
    events: list[str] = field(default_factory=list)


class Scheduler:
    def __init__(self, settings: Settings, mode: str = "embedded"):
        self.settings = settings.ensure()
        self.mode = mode
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.state = SchedulerState(mode=mode, limit=settings.max_concurrency)
        self._tracked: dict[int, _Tracked] = {}
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._last_reconcile = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> asyncio.Task:
        self._task = asyncio.create_task(self.serve(), name="labdeck-scheduler")
        return self._task

    async def serve(self) -> None:
        try:
            while not self._stopping:
                await asyncio.to_thread(self.tick)
                await asyncio.sleep(self.settings.poll_s)
        finally:
            await asyncio.to_thread(self._release)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                pass

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect_sync(self.settings.db_path)
        return self._conn

    # ------------------------------------------------------------------ one tick

    def tick(self) -> SchedulerState:
        conn = self._db()
        self.state.holds_lease = self._lease(conn)
        if self.state.holds_lease:
            self._reap(conn)
            self._apply_cancels(conn)
            if time.monotonic() - self._last_reconcile > 2.0:
                self.reconcile(conn)
                self._last_reconcile = time.monotonic()
            self._claim(conn)
        self.state.running = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE status='running'").fetchone()[0]
        return self.state

    def _lease(self, conn: sqlite3.Connection) -> bool:
        t = now()
        with write_tx(conn):
            row = conn.execute(
                "SELECT owner, pid, host, mode, heartbeat FROM scheduler_lease WHERE id=1"
            ).fetchone()
            if row is None or row[0] == self.owner or self._lease_expired(row, t):
                conn.execute(
                    "INSERT INTO scheduler_lease(id, owner, pid, host, mode, heartbeat, started)"
                    " VALUES (1,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET owner=excluded.owner,"
                    " pid=excluded.pid, host=excluded.host, mode=excluded.mode,"
                    " heartbeat=excluded.heartbeat,"
                    " started=CASE WHEN scheduler_lease.owner=excluded.owner"
                    " THEN scheduler_lease.started ELSE excluded.started END",
                    (self.owner, os.getpid(), HOST, self.mode, t, t))
                self.state.owner_pid, self.state.owner_mode = os.getpid(), self.mode
                return True
            self.state.owner_pid, self.state.owner_mode = row[1], row[3]
            return False

    def _lease_expired(self, row: tuple, t: float) -> bool:
        _, pid, host, _, heartbeat = row
        if t - heartbeat > self.settings.lease_ttl_s:
            return True
        return host == HOST and not pid_alive(pid)

    def _release(self) -> None:
        if self._conn is None:
            return
        try:
            with write_tx(self._conn):
                self._conn.execute("DELETE FROM scheduler_lease WHERE owner=?", (self.owner,))
        except sqlite3.Error:
            pass
        self._conn.close()
        self._conn = None

    # ------------------------------------------------------------------ claiming

    def _claim(self, conn: sqlite3.Connection) -> None:
        running = conn.execute("SELECT COUNT(*) FROM jobs WHERE status='running'").fetchone()[0]
        free = self.settings.max_concurrency - running
        if free <= 0:
            return
        queued = conn.execute(
            "SELECT id, run_id FROM jobs WHERE status='queued' ORDER BY id LIMIT ?", (free,)
        ).fetchall()
        for job_id, run_id in queued:
            with write_tx(conn):
                cur = conn.execute(
                    "UPDATE jobs SET status='running', started=?, heartbeat=?, host=?"
                    " WHERE id=? AND status='queued' AND cancel_requested=0",
                    (now(), now(), HOST, job_id))
            if cur.rowcount == 0:
                continue
            try:
                tracked = self._spawn(job_id, run_id)
            except OSError as exc:
                self._fail(conn, job_id, f"could not start worker: {exc}")
                continue
            with write_tx(conn):
                conn.execute("UPDATE jobs SET pid=? WHERE id=?", (tracked.pid, job_id))
            self._tracked[job_id] = tracked

    def _spawn(self, job_id: int, run_id: int | None) -> _Tracked:
        log = job_log_path(self.settings, job_id, run_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "engine.worker", "--home", str(self.settings.home),
                 str(job_id)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, env=env, cwd=str(self.settings.home))
        return _Tracked(job_id=job_id, pid=proc.pid, proc=proc)

    # ------------------------------------------------------------------ watching

    def _exited(self, t: _Tracked) -> tuple[bool, int | None]:
        if t.proc is not None:
            rc = t.proc.poll()
            return rc is not None, rc
        return not pid_alive(t.pid), None

    def _reap(self, conn: sqlite3.Connection) -> None:
        for job_id, t in list(self._tracked.items()):
            done, rc = self._exited(t)
            if not done:
                continue
            del self._tracked[job_id]
            _killpg(t.pid, signal.SIGKILL)  # nothing of the group may outlive its worker
            row = conn.execute("SELECT status, cancel_requested FROM jobs WHERE id=?",
                               (job_id,)).fetchone()
            if row is None or row[0] != "running":
                continue
            if row[1]:
                self._end(conn, job_id, "cancelled", "cancelled" + (
                    " (killed after grace period)" if t.killed else ""))
            else:
                if rc is None:
                    reason = f"worker process {t.pid} is gone"
                elif rc < 0:
                    reason = f"worker killed by signal {-rc} ({_signame(-rc)})"
                else:
                    reason = f"worker exited with code {rc} without reporting a result"
                self._fail(conn, job_id, reason, rc)

    def _apply_cancels(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute(
            "SELECT id, pid FROM jobs WHERE status='running' AND cancel_requested=1").fetchall()
        for job_id, pid in rows:
            t = self._tracked.get(job_id)
            if t is None:
                if pid is None:
                    continue
                t = self._tracked[job_id] = _Tracked(job_id=job_id, pid=pid)
            if t.term_sent is None:
                _killpg(t.pid, signal.SIGTERM)
                t.term_sent = time.monotonic()
            elif not t.killed and time.monotonic() - t.term_sent > self.settings.cancel_grace_s:
                _killpg(t.pid, signal.SIGKILL)
                t.killed = True

    def reconcile(self, conn: sqlite3.Connection | None = None) -> list[int]:
        """Fail running jobs whose worker is gone; adopt live ones. Returns failed job ids."""
        conn = conn or self._db()
        failed = []
        t_now = now()
        rows = conn.execute(
            "SELECT id, pid, host, heartbeat, cancel_requested FROM jobs WHERE status='running'"
        ).fetchall()
        for job_id, pid, host, heartbeat, cancel in rows:
            if job_id in self._tracked:
                continue
            age = t_now - (heartbeat or 0)
            if host == HOST:
                if pid is not None and _is_worker(pid, job_id):
                    self._tracked[job_id] = _Tracked(job_id=job_id, pid=pid)  # adopt
                    continue
                if pid is None and age < self.settings.stale_after_s:
                    continue  # being spawned by a scheduler right now
                gone = f"worker process {pid} is gone" if pid else "worker never started"
            else:
                if age < self.settings.stale_after_s:
                    continue
                gone = f"worker on {host} stopped heartbeating"
            if cancel:
                self._end(conn, job_id, "cancelled", "cancelled")
            else:
                self._fail(conn, job_id, f"{gone} (last heartbeat {age:.0f} s ago)")
                failed.append(job_id)
        # runs logged by user scripts (no job) whose process died
        for run_id, pid in conn.execute(
                "SELECT id, pid FROM runs WHERE status='running' AND source='tracking'"
                " AND host=?", (HOST,)).fetchall():
            if not pid_alive(pid):
                finish_run(conn, run_id, "failed", f"process {pid} ended without finishing")
        # study trials whose worker died (cheap unless one did)
        try:
            from .studies.sweep import sweep_dead_trials

            sweep_dead_trials(conn, self.settings)
        except Exception as exc:  # noqa: BLE001 - a broken study must not stop the scheduler
            self.state.events.append(f"study sweep failed: {exc}")
        return failed

    def _fail(self, conn: sqlite3.Connection, job_id: int, reason: str,
              exit_code: int | None = None) -> None:
        self._end(conn, job_id, "failed", reason, exit_code)

    def _end(self, conn: sqlite3.Connection, job_id: int, status: str, reason: str,
             exit_code: int | None = None) -> None:
        with write_tx(conn):
            conn.execute(
                "UPDATE jobs SET status=?, error=?, message=?, finished=?, exit_code=?"
                " WHERE id=? AND status IN ('running','queued')",
                (status, reason if status == "failed" else None, reason, now(), exit_code,
                 job_id))
        row = conn.execute("SELECT run_id, type FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row and row[0] and row[1] == "train":
            finish_run(conn, row[0], status, reason if status == "failed" else None)
        self.state.events.append(f"job {job_id} {status}: {reason}")


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return "?"


def _is_worker(pid: int, job_id: int) -> bool:
    """A live process that is really this job's worker (guards against pid reuse)."""
    if not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read().split(b"\0")
    except OSError:
        return True
    return b"engine.worker" in args and str(job_id).encode() in args
