"""The scheduler under database faults: a write lock held by another process for longer than
the busy timeout makes ticks fail. It must retry with backoff, say so, recover and keep
scheduling; a fault that persists past the limit must end `labdeck serve` with one line and a
non-zero exit, never a silent hang. Real processes, a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading

import pytest
from helpers import labdeck_env, script_command, wait_for

from engine.api import Engine


class Lines:
    """Collects a process's stderr lines from a thread, so tests can wait on them."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def has(self, text: str) -> bool:
        return any(text in ln for ln in self.lines)


def hold_write_lock(home) -> sqlite3.Connection:
    """What another process does when it sits in a write transaction."""
    conn = sqlite3.connect(str(home / "labdeck.db"), timeout=30, isolation_level=None,
                           check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def serve(home, env_extra: dict | None = None) -> tuple[subprocess.Popen, Lines]:
    env = labdeck_env(home)
    env.update(env_extra or {})
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, Lines(proc)


def lease_pid(home) -> int | None:
    conn = sqlite3.connect(str(home / "labdeck.db"), timeout=30)
    try:
        row = conn.execute("SELECT pid FROM scheduler_lease WHERE id=1").fetchone()
    finally:
        conn.close()
    return row[0] if row else None


async def test_serve_retries_while_the_database_is_locked_then_recovers(home):
    async with Engine.session(home) as engine:
        await engine.create_experiment("after", "script",
                                       {"command": script_command("--steps 5")})
    proc, err = serve(home)
    lock = None
    try:
        wait_for(lambda: err.has("serving"), timeout=60, what="serve to start")
        lock = hold_write_lock(home)
        wait_for(lambda: err.has("scheduler: database is locked; retrying in"), timeout=60,
                 what="a retry line")
        assert proc.poll() is None, err.lines
        lock.execute("COMMIT")
        lock.close()
        lock = None
        wait_for(lambda: err.has("scheduler: recovered"), timeout=60, what="recovery line")
        # still scheduling: a job queued after the fault runs, and the lease is serve's again
        async with Engine.session(home) as engine:
            _, job_id = await engine.start_run("after")
            job = await engine.wait_job(job_id, timeout=60)
            assert job.status == "completed", job.error
        assert lease_pid(home) == proc.pid
    finally:
        if lock is not None:
            lock.close()
        proc.terminate()
        proc.wait(30)


def test_serve_exits_with_one_line_when_the_fault_outlasts_the_limit(home):
    ready = subprocess.run(  # create the home and schema first
        [sys.executable, "-m", "cli", "exp", "list"], env=labdeck_env(home),
        capture_output=True, text=True, timeout=120)
    assert ready.returncode == 0, ready.stderr
    proc, err = serve(home, {"LABDECK_SCHEDULER_GIVE_UP_S": "1"})
    lock = None
    try:
        wait_for(lambda: err.has("serving"), timeout=60, what="serve to start")
        lock = hold_write_lock(home)
        try:
            rc = proc.wait(timeout=90)  # the old scheduler died silently and serve hung
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve still running after its scheduler gave up: {err.lines}")
        assert rc != 0
        wait_for(lambda: err.has("scheduler stopped"), timeout=10, what="the error line")
        final = [ln for ln in err.lines if "error" in ln]
        assert len(final) == 1 and "database is locked" in final[0], err.lines
        assert "Traceback" not in "\n".join(err.lines)
    finally:
        if lock is not None:
            lock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def test_wait_ends_when_the_embedded_scheduler_gives_up(home):
    """The embedded scheduler of a --wait command: a fatal fault must end the wait with an
    error instead of leaving it polling a job nobody will ever start."""
    from cli.job_control import wait_jobs

    async with Engine.session(home, scheduler_give_up_s=1.0) as engine:
        await engine.create_experiment("never", "script",
                                       {"command": script_command("--steps 5")})
        _, job_id = await engine.start_run("never")
        lock = hold_write_lock(home)
        try:
            with pytest.raises(RuntimeError, match="scheduler stopped: database is locked"):
                await asyncio.wait_for(wait_jobs(engine, [job_id], quiet=True), timeout=90)
        finally:
            lock.close()
