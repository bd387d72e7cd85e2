"""Stall detection: a job whose command is alive but silent (its heartbeat thread keeps the
heartbeat fresh) is reported stalled after LABDECK_STALL_WARN_S, and failed by the scheduler
after LABDECK_STALL_FAIL_S with its last log lines, its process tree killed. Real workers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from helpers import labdeck_env

from engine.api import Engine
from engine.liveness import stalled_seconds
from engine.records import pid_alive

HANG = (f"{sys.executable} -c \"import subprocess, sys; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
        "print('CHILD_PID=%d' % p.pid); print('about to hang', flush=True); p.wait()\"")


def cli(home, *args: str, env_extra: dict) -> str:
    env = labdeck_env(home)
    env.update(env_extra)
    res = subprocess.run([sys.executable, "-m", "cli", *args], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, (args, res.stderr)
    return res.stdout


async def _gone(pids: list[int], timeout: float = 60.0) -> None:
    """Wait, letting the scheduler in this event loop tick, until no pid is alive."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if pid_alive(p)]
        await asyncio.sleep(0.1)


async def _until(engine: Engine, job_id: int, cond, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await engine.get_job(job_id)
        if cond(job):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id}: condition not met: {job}")


async def test_silent_job_is_reported_stalled(home):
    async with Engine.session(home, stall_warn_s=2.0) as engine:
        await engine.create_experiment("quiet", "script", {"command": HANG})
        run_id, job_id = await engine.start_run("quiet")
        await engine.ensure_scheduler()
        job = await _until(engine, job_id, lambda j: j.status == "running" and j.pid)
        assert job.heartbeat is not None
        job = await _until(engine, job_id, lambda j: stalled_seconds(
            j.last_output, engine.settings.stall_warn_s, time.time()) is not None)
        assert time.time() - job.heartbeat < 5, "the heartbeat stays fresh: it is no activity"
        env = {"LABDECK_STALL_WARN_S": "2"}
        listed = cli(home, "jobs", "list", env_extra=env)
        assert "stalled" in listed, listed
        (as_json,) = json.loads(cli(home, "jobs", "list", "--json", env_extra=env))
        assert as_json["stalled_s"] >= 2
        shown = cli(home, "run", "show", str(run_id), env_extra=env)
        assert "stalled" in shown, shown
        assert json.loads(cli(home, "run", "show", str(run_id), "--json",
                              env_extra=env))["stalled_s"] >= 2
        # no warning below the threshold, nor when warnings are off
        assert "stalled" not in cli(home, "jobs", "list",
                                    env_extra={"LABDECK_STALL_WARN_S": "0"})
        await engine.cancel_job(job_id)
        await _until(engine, job_id, lambda j: j.status == "cancelled", timeout=30)


async def test_scheduler_fails_a_stalled_job_and_kills_its_tree(home):
    async with Engine.session(home, stall_fail_s=5.0) as engine:
        await engine.create_experiment("stuck", "script", {"command": HANG})
        run_id, job_id = await engine.start_run("stuck")
        await engine.ensure_scheduler()
        job = await _until(engine, job_id, lambda j: j.status == "running" and j.pid)
        worker = job.pid
        deadline = time.monotonic() + 60
        while not (child := [ln for ln in await engine.log_tail(job_id=job_id)
                             if ln.startswith("CHILD_PID=")]):
            assert time.monotonic() < deadline, "the command never started its child"
            await asyncio.sleep(0.1)
        child_pid = int(child[0].split("=")[1])
        job = await _until(engine, job_id, lambda j: j.status != "running", timeout=90)
        assert job.status == "failed", job
        assert job.error.startswith("stalled: no output for "), job.error
        assert "about to hang" in job.error, "the error carries the last log lines"
        await _gone([worker, child_pid])  # the worker and what its command started
        run = await engine.get_run(run_id)
        assert run.status == "failed" and run.error.startswith("stalled")
