"""The job scheduler: claims queued jobs as resources allow (engine/placement.py: CPU slots up
to the concurrency limit, GPUs by device), starts each in a worker process (own session) that
sees only the GPUs it was given, watches heartbeats, applies cancel (SIGTERM to the worker's
group; the job stops itself within the grace, and the scheduler kills whatever of its process
tree is left: engine/process_tree.py) and reconciles jobs whose workers died. Exactly one
scheduler serves a home at a time, through a lease row with a heartbeat.

Jobs with the executor ``slurm`` are no business of the placement policy: they are submitted
to the cluster, and their spools ingested, by engine/spooled_jobs.py, every tick.

Which job holds which GPU is read from the running jobs in the database at every claim, so a
restarted scheduler needs no table of its own, and a job that ended (or died, and was failed)
holds nothing. NVML is read at most every ``Settings.gpu_probe_s`` and only while jobs are
queued.

The asyncio task runs each tick in a thread on its own sqlite3 connection, so the event loop
(the TUI) never waits on process or file-system work. A tick that meets a transient database
fault (locked, busy, disk full, I/O error) is retried with capped exponential backoff, and the
state says so (``problem``); a fault it cannot wait out ends the task with ``stopped`` set, so
whoever runs it (``labdeck serve``, a --wait command, the TUI) can say so and act.
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

from .data import jobs, lease, runs
from .data.lease import Lease
from .faults import describe_fault
from .liveness import last_output, process_start_time, same_process
from .paths import job_log_path
from .placement import Decision, Request, annotate, place
from .process_tree import WORKER_MARGIN_S, ProcessTree, is_worker, job_marker, killpg, signame
from .records import HOST, now, pid_alive
from .resources import GPU_INDICES_ENV, GpuState, ProbeCache, owners
from .runs import tail_lines
from .schema import SchemaTooNewError, connect_sync, set_busy_timeout
from .settings import Settings
from .spooled_jobs import SpooledJobs

FIRST_RETRY_S = 2.0
MAX_RETRY_S = 30.0
QUEUE_SCAN = 1000  # queued jobs looked at per tick, oldest first


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
    problem: str | None = None  # a transient fault being retried ("database is locked")
    stopped: str | None = None  # the fault that ended the scheduler


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
        self._last_good = time.monotonic()
        self._failures = 0
        self._wake: asyncio.Event | None = None
        self._ticked: asyncio.Event | None = None
        self._stall_kills: dict[int, tuple[int, float]] = {}  # pid -> (job, when SIGTERM went)
        self._probes = ProbeCache(settings.gpu_probe_s)
        self._pid_jobs: tuple[object, dict[int, int]] = (None, {})  # (probe, pid -> job)
        self._spooled = SpooledJobs(self.settings, self.state.events)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> asyncio.Task:
        self._ticked, self._wake = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(self.serve(), name="labdeck-scheduler")
        return self._task

    async def first_tick(self) -> SchedulerState:
        """Wait until the first tick was tried (or the task ended); the state says how."""
        if self._ticked is not None and self._task is not None:
            await self._ticked.wait()
        return self.state

    @property
    def ended(self) -> bool:
        return self._task is not None and self._task.done()

    async def wait_ended(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the task to end; whether it has."""
        if self._task is None:
            return True
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        return bool(done)

    def take_events(self) -> list[str]:
        """The events since the last call (job ends, faults, recovery), oldest first."""
        out = []
        while self.state.events:
            out.append(self.state.events.pop(0))
        return out

    async def serve(self) -> None:
        """Tick until stopped, or until a fault it cannot wait out (``state.stopped``)."""
        wake = self._wake = self._wake or asyncio.Event()
        try:
            while not self._stopping:
                delay = await self._guarded_tick()
                if self._ticked is not None:
                    self._ticked.set()
                if delay is None:
                    break
                try:
                    await asyncio.wait_for(wake.wait(), delay)
                except TimeoutError:
                    pass
        finally:
            if self._ticked is not None:
                self._ticked.set()
            await asyncio.to_thread(self._release)

    async def _guarded_tick(self) -> float | None:
        """One tick; the seconds until the next, or None when the scheduler must stop."""
        try:
            await asyncio.to_thread(self.tick)
        except Exception as exc:  # noqa: BLE001 - every fault is classified below
            return self._fault(exc)
        self._last_good = time.monotonic()
        self._failures = 0
        if self.state.problem is not None:
            self.state.problem = None
            self.state.events.append("scheduler: recovered")
        return self.settings.poll_s

    def _fault(self, exc: Exception) -> float | None:
        self._drop_connection()  # the next tick starts on a fresh one
        problem, transient = describe_fault(exc)
        down = time.monotonic() - self._last_good
        if not transient or down > self.settings.scheduler_give_up_s:
            self.state.problem = None
            self.state.stopped = problem if not transient else (
                f"{problem} (unresolved for {down:.0f} s)")
            return None
        self._failures += 1
        delay = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** (self._failures - 1))
        if problem != self.state.problem:
            self.state.events.append(f"scheduler: {problem}; retrying in {delay:g} s")
        self.state.problem = problem
        return delay

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    async def stop(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                pass
            except Exception:  # noqa: BLE001 - a fault was reported through state.stopped
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
            self._spooled.tick(conn)
            self._apply_cancels(conn)
            if time.monotonic() - self._last_reconcile > 2.0:
                self.reconcile(conn)
                self._fail_stalled(conn)
                self._last_reconcile = time.monotonic()
            self._finish_stall_kills()
            self._claim(conn)
        self.state.running = jobs.count(conn, "running")
        return self.state

    def tick_once(self) -> SchedulerState:
        """One tick from a process that will not stay to serve (a command that queues work and
        exits): claim and launch what is queued, then give the lease back."""
        try:
            return self.tick()
        finally:
            self._release()

    def _lease(self, conn: sqlite3.Connection) -> bool:
        t = now()
        me = Lease(owner=self.owner, pid=os.getpid(), host=HOST, mode=self.mode, heartbeat=t)
        held = lease.acquire(conn, me, lambda other: self._lease_expired(other, t))
        self.state.owner_pid, self.state.owner_mode = held.pid, held.mode
        return held is me

    def _lease_expired(self, held: Lease, t: float) -> bool:
        if t - held.heartbeat > self.settings.lease_ttl_s:
            return True
        return held.host == HOST and not pid_alive(held.pid)

    def _release(self) -> None:
        """Give the lease back, briefly: after a fault this may fail, and the lease then
        lapses by itself (its pid is gone, its heartbeat ages)."""
        try:
            conn = self._db()
            set_busy_timeout(conn, 1000)
            lease.release(conn, self.owner)
        except (sqlite3.Error, SchemaTooNewError, OSError):
            pass
        self._drop_connection()

    # ------------------------------------------------------------------ claiming

    def _claim(self, conn: sqlite3.Connection) -> None:
        """Start what the placement policy lets start (oldest first), fail what can never
        run here, and store on each job that waits why (written only when it changes)."""
        queue = jobs.queued(conn, QUEUE_SCAN)
        for q in [q for q in queue if q.executor == "slurm"]:
            self._spooled.start(conn, q.id)
        queue = [q for q in queue if q.executor != "slurm"]
        if not queue:
            return
        gpus, nvml = self.gpus(conn)
        decisions = place([Request(q.id, q.gpus, q.gpu_mem_mb) for q in queue], gpus,
                          jobs.cpu_running(conn), self.settings, nvml)
        by_id = {q.id: q for q in queue}
        notes = {}
        for d in decisions:
            job = by_id[d.job_id]
            if d.action == "wait":
                if job.note != d.note:
                    notes[d.job_id] = d.note
            elif d.action == "fail":
                self._fail(conn, d.job_id, d.note)
            else:
                self._start(conn, job, d)
        if notes:
            jobs.set_notes(conn, notes)

    def gpus(self, conn: sqlite3.Connection) -> tuple[list[GpuState], str]:
        """The machine's GPUs as the placement policy sees them (NVML read at most every
        ``gpu_probe_s``; who holds which from the running jobs now), and NVML's status."""
        probe = self._probes.get()
        if self._pid_jobs[0] is not probe:  # a fresh probe: whose are its processes
            workers = {item.pid: item.id for item in jobs.running_here(conn, HOST)
                       if item.kind == "job"}
            pids = [p.pid for g in probe.gpus for p in g.processes]
            self._pid_jobs = (probe, owners(pids, workers, self.settings.home) if pids else {})
        if not probe.gpus:
            return [], probe.status
        return (annotate(probe.gpus, jobs.gpu_holders(conn, HOST), self._pid_jobs[1],
                         self.settings), probe.status)

    def _start(self, conn: sqlite3.Connection, job: jobs.QueuedJob, d: Decision) -> None:
        if not jobs.claim(conn, job.id, HOST, d.devices, job.gpus, job.gpu_mem_mb, d.note):
            return
        try:
            tracked = self._spawn(job.id, job.run_id, d.devices)
        except OSError as exc:
            self._fail(conn, job.id, f"could not start worker: {exc}")
            return
        self._tracked[job.id] = tracked  # watched even if recording its pid fails
        jobs.record_worker(conn, job.id, tracked.pid, process_start_time(tracked.pid))

    def _spawn(self, job_id: int, run_id: int | None,
               devices: tuple[int, ...] | None = None) -> _Tracked:
        log = job_log_path(self.settings, job_id, run_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["LABDECK_CANCEL_GRACE"] = str(self.settings.cancel_grace_s)  # the grace we apply
        if devices is not None:  # a machine with GPUs: the job sees its own, or none
            visible = ",".join(str(i) for i in devices)
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # CUDA numbers devices as NVML does
            env["CUDA_VISIBLE_DEVICES"] = visible
            env[GPU_INDICES_ENV] = visible
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
            self._kill_tree(t)  # nothing of the job may outlive its worker
            found = jobs.status_and_cancel(conn, job_id)
            if found is None or found[0] != "running":
                continue
            if found[1]:
                self._end(conn, job_id, "cancelled", "cancelled" + (
                    " (killed after grace period)" if t.killed else ""))
            else:
                if rc is None:
                    reason = f"worker process {t.pid} is gone"
                elif rc < 0:
                    reason = f"worker killed by signal {-rc} ({signame(-rc)})"
                else:
                    reason = f"worker exited with code {rc} without reporting a result"
                self._fail(conn, job_id, reason, rc)

    def _apply_cancels(self, conn: sqlite3.Connection) -> None:
        """One SIGTERM to the worker's process group (the worker, and what an in-process
        adapter started; a script's command has a group of its own, which its adapter stops
        with the grace). The worker gets the grace plus WORKER_MARGIN_S to record its end;
        after that the job's whole process tree is killed."""
        for job in jobs.cancelling(conn, HOST):
            job_id, pid = job.id, job.pid
            t = self._tracked.get(job_id)
            if t is None:
                if pid is None or not is_worker(pid, job_id):
                    continue  # not started yet, or gone: reconcile ends it
                t = self._tracked[job_id] = _Tracked(job_id=job_id, pid=pid)
            if t.term_sent is None:
                killpg(t.pid, signal.SIGTERM)
                t.term_sent = time.monotonic()
            elif not t.killed and time.monotonic() - t.term_sent > (
                    self.settings.cancel_grace_s + WORKER_MARGIN_S):
                self._kill_tree(t)
                t.killed = True

    def _kill_tree(self, t: _Tracked) -> None:
        """SIGKILL a job's processes: the worker if it still runs and its descendants, its
        process group, and every process that carries the job's marker in its environment."""
        worker_alive = not self._exited(t)[0]
        tree = ProcessTree(root=t.pid if worker_alive else None, group=t.pid,
                           marker=job_marker(self.settings.home, t.job_id))
        try:
            tree.kill()
        except Exception as exc:  # noqa: BLE001 - /proc unreadable: at least the group
            self.state.events.append(f"job {t.job_id}: could not scan its processes: {exc}")
            killpg(t.pid, signal.SIGKILL)

    def reconcile(self, conn: sqlite3.Connection | None = None) -> list[int]:
        """Fail running jobs whose worker is gone; adopt live ones. Returns failed job ids."""
        conn = conn or self._db()
        failed = []
        t_now = now()
        for job in jobs.running_jobs(conn):
            job_id, pid, host, heartbeat = job.id, job.pid, job.host, job.heartbeat
            if job_id in self._tracked:
                continue
            age = t_now - (heartbeat or 0)
            if host == HOST:
                if pid is not None and is_worker(pid, job_id):
                    self._tracked[job_id] = _Tracked(job_id=job_id, pid=pid)  # adopt
                    continue
                if pid is None and age < self.settings.stale_after_s:
                    continue  # being spawned by a scheduler right now
                gone = f"worker process {pid} is gone" if pid else "worker never started"
            else:
                if age < self.settings.stale_after_s:
                    continue
                gone = f"worker on {host} stopped heartbeating"
            if job.cancel_requested:
                self._end(conn, job_id, "cancelled", "cancelled")
            else:
                self._fail(conn, job_id, f"{gone} (last heartbeat {age:.0f} s ago)")
                failed.append(job_id)
        # runs logged by user scripts (no job) whose process died
        for run in runs.running_tracking_runs(conn, HOST):
            if not same_process(run.pid, run.pid_started):
                runs.finish_run(conn, run.id, "failed",
                                f"process {run.pid} ended without finishing")
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
        jobs.end_job(conn, job_id, status, reason, exit_code)
        self.state.events.append(f"job {job_id} {status}: {reason}")

    # ------------------------------------------------------------------ stalls

    def _fail_stalled(self, conn: sqlite3.Connection) -> None:
        """Fail running jobs of this host with no output (metrics, progress, log lines) for
        ``stall_fail_s``, their last log lines in the error, and kill their process group.
        The heartbeat is no output: a hung command's heartbeat thread keeps it fresh."""
        limit = self.settings.stall_fail_s
        if limit <= 0:
            return
        t = now()
        for job in jobs.running_output(conn, HOST):
            job_id, run_id, pid = job.id, job.run_id, job.pid
            if pid is None:  # running rows always carry their worker's pid
                continue
            log = job_log_path(self.settings, job_id, run_id)
            last = last_output(job.recorded, log)
            if last is None or t - last < limit:
                continue
            tail = [ln.strip() for ln in (tail_lines(log, 5) if log.exists() else [])
                    if ln.strip()]
            reason = f"stalled: no output for {t - last:.0f} s" + (
                f" (last log lines: {' | '.join(tail)})" if tail else "")
            self._fail(conn, job_id, reason)
            killpg(pid, signal.SIGTERM)
            self._stall_kills[pid] = (job_id, time.monotonic())

    def _finish_stall_kills(self) -> None:
        """After the grace, a stalled job's whole tree goes, as on cancel (process_tree.py)."""
        for pid, (job_id, sent) in list(self._stall_kills.items()):
            if time.monotonic() - sent > self.settings.cancel_grace_s:
                self._kill_tree(_Tracked(job_id=job_id, pid=pid))
                del self._stall_kills[pid]
