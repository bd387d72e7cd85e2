"""Integration: real worker processes, a real SQLite file, the real scheduler."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from helpers import group_members, labdeck_env, script_command, wait_for

from engine.api import Engine
from engine.records import pid_alive


def integrity_ok(home) -> None:
    conn = sqlite3.connect(str(home / "labdeck.db"))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


async def _wait_status(engine: Engine, job_id: int, statuses, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await engine.get_job(job_id)
        if job.status in statuses:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {statuses}: {job.status}")


async def _child_pids(engine: Engine, run_id: int, timeout=20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = await engine.log_tail(run_id, 50)
        pids = [int(m.group(1)) for ln in lines if (m := re.search(r"(?:CHILD|SCRIPT)_PID=(\d+)", ln))]
        if len(pids) >= 2:
            return pids
        await asyncio.sleep(0.05)
    raise AssertionError("script never printed its pids")


@pytest.mark.parametrize("mode", ["tracking", "json"])
async def test_script_run_logs_three_metrics_over_100_steps(home, mode):
    async with Engine.session(home) as engine:
        await engine.create_experiment(
            "e", "script", {"command": script_command("--steps {steps} --mode", mode), "steps": 100},
            objective="train/loss", direction="minimize")
        run_id, job_id = await engine.start_run("e")
        await engine.ensure_scheduler()
        job = await engine.wait_job(job_id, timeout=60)
        assert job.status == "completed", (job.error, await engine.log_tail(run_id))
        assert job.exit_code == 0
        keys = [k for k in await engine.metric_keys(run_id) if not k.startswith("sys/")]
        assert keys == ["train/acc", "train/loss", "val/score"]
        for key in keys:
            pts = await engine.all_metrics(run_id, key)
            assert [s for s, _ in pts] == list(range(100))
        run = await engine.get_run(run_id)
        assert run.status == "completed" and run.steps == 99
        s = run.summary
        assert s["train/loss"]["last"] == pytest.approx(1 / 100)
        assert s["train/loss"]["best"] == pytest.approx(1 / 100)
        assert s["train/loss"]["best_step"] == 99
        assert s["train/loss"]["max"] == pytest.approx(1.0)
        assert s["train/acc"]["direction"] == "maximize"
        assert s["train/acc"]["best"] == pytest.approx(0.99)
        assert s["val/score"]["best"] == 6.0 and s["val/score"]["best_step"] == 6
        assert all(v["count"] == 100 for v in s.values())
        assert run.duration and run.duration > 0
    integrity_ok(home)


async def test_cancel_kills_the_whole_process_group(home):
    async with Engine.session(home) as engine:
        await engine.create_experiment(
            "slow", "script", {"command": script_command("--steps 100000 --sleep 0.01 --child")})
        run_id, job_id = await engine.start_run("slow")
        await engine.ensure_scheduler()
        pids = await _child_pids(engine, run_id)
        job = await engine.get_job(job_id)
        worker = job.pid
        await engine.cancel_job(job_id)
        # bounded by the wait's timeout, not timed: a loaded machine may take seconds longer
        job = await _wait_status(engine, job_id, ("cancelled", "failed", "completed"), timeout=30)
        assert job.status == "cancelled", job
        for pid in [worker, *pids]:
            wait_for(lambda p=pid: not pid_alive(p), timeout=5, what=f"pid {pid} gone")
        wait_for(lambda: not group_members(worker), timeout=5, what="process group empty")
        run = await engine.get_run(run_id)
        assert run.status == "cancelled" and run.summary is not None
    integrity_ok(home)


async def test_sigterm_ignoring_command_is_killed_after_grace(home):
    cmd = (f"{sys.executable} -c \"import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
           " print('SCRIPT_PID=0'); print('CHILD_PID=0', flush=True); time.sleep(600)\"")
    async with Engine.session(home, cancel_grace_s=1.0) as engine:
        await engine.create_experiment("stubborn", "script", {"command": cmd})
        run_id, job_id = await engine.start_run("stubborn")
        await engine.ensure_scheduler()
        await _child_pids(engine, run_id)
        pid = (await engine.get_job(job_id)).pid
        await engine.cancel_job(job_id)
        job = await _wait_status(engine, job_id, ("cancelled", "failed"), timeout=15)
        assert job.status == "cancelled"
        wait_for(lambda: not pid_alive(pid), timeout=5)
        # nothing of the group survives
        wait_for(lambda: not group_members(pid), timeout=5, what="process group empty")
    integrity_ok(home)


async def test_kill_9_worker_fails_job_with_reason(home):
    async with Engine.session(home) as engine:
        await engine.create_experiment(
            "victim", "script", {"command": script_command("--steps 100000 --sleep 0.01")})
        run_id, job_id = await engine.start_run("victim")
        await engine.ensure_scheduler()
        job = await _wait_status(engine, job_id, ("running",))
        while not (await engine.metric_keys(run_id)):
            await asyncio.sleep(0.05)
        os.kill(job.pid, signal.SIGKILL)
        job = await _wait_status(engine, job_id, ("failed",), timeout=30)
        assert "signal 9" in job.error or "gone" in job.error, job.error
        run = await engine.get_run(run_id)
        assert run.status == "failed" and run.error
    integrity_ok(home)


def _serve(home, *extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", *extra], env=labdeck_env(home),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _db(home):
    conn = sqlite3.connect(str(home / "labdeck.db"), timeout=10)
    return conn


def _job_row(home, job_id):
    conn = _db(home)
    try:
        return conn.execute("SELECT status, pid, error FROM jobs WHERE id=?", (job_id,)).fetchone()
    finally:
        conn.close()


async def _queue(home, name, steps, sleep):
    async with Engine.session(home) as engine:
        await engine.create_experiment(
            name, "script", {"command": script_command(f"--steps {steps} --sleep {sleep}")})
        return await engine.start_run(name)


async def test_scheduler_killed_while_job_runs_then_adopts(home):
    run_id, job_id = await _queue(home, "adopt", 150, 0.02)
    first = _serve(home)
    try:
        wait_for(lambda: _job_row(home, job_id) and _job_row(home, job_id)[0] == "running"
                 and _job_row(home, job_id)[1], timeout=20, what="job running")
        worker = _job_row(home, job_id)[1]
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert pid_alive(worker), "worker must survive its scheduler"
        second = _serve(home)
        try:
            wait_for(lambda: _job_row(home, job_id)[0] != "running", timeout=40,
                     what="adopted job to end")
            assert _job_row(home, job_id)[0] == "completed", _job_row(home, job_id)
        finally:
            second.terminate()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    async with Engine.session(home) as engine:
        assert len(await engine.all_metrics(run_id, "train/loss")) == 150
    integrity_ok(home)


async def test_two_schedulers_only_one_runs_jobs(home):
    ids = [await _queue(home, f"x{i}", 30, 0.01) for i in range(3)]
    a, b = _serve(home), _serve(home)
    try:
        owners = set()
        max_running = 0

        def all_done():
            nonlocal max_running
            conn = _db(home)
            try:
                rows = conn.execute("SELECT status FROM jobs").fetchall()
                lease = conn.execute("SELECT pid FROM scheduler_lease").fetchall()
            finally:
                conn.close()
            owners.update(r[0] for r in lease)
            max_running = max(max_running, sum(r[0] == "running" for r in rows))
            return all(r[0] == "completed" for r in rows)

        wait_for(all_done, timeout=60, what="all jobs completed")
        assert max_running <= 1  # concurrency 1, one scheduler claiming
        assert len(owners) == 1 and owners <= {a.pid, b.pid}
    finally:
        for p in (a, b):
            p.terminate()
            p.wait(10)
    assert len(ids) == 3
    integrity_ok(home)


async def test_reconcile_fails_orphaned_running_job(home):
    """A job left 'running' by a worker that no longer exists fails at scheduler start."""
    run_id, job_id = await _queue(home, "orphan", 10, 0)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    conn = _db(home)
    conn.execute("UPDATE jobs SET status='running', pid=?, host=(SELECT host FROM runs LIMIT 1),"
                 " heartbeat=0 WHERE id=?", (dead.pid, job_id))
    conn.execute("UPDATE jobs SET host=? WHERE id=?", (__import__("socket").gethostname(), job_id))
    conn.commit()
    conn.close()
    async with Engine.session(home) as engine:
        await engine.ensure_scheduler()
        job = await _wait_status(engine, job_id, ("failed",), timeout=15)
        assert "gone" in job.error
        assert (await engine.get_run(run_id)).status == "failed"
    integrity_ok(home)
