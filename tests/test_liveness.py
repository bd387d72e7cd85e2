"""No command or screen shows a dead process as running, even when no scheduler runs: the
read paths check the pid and its start time (pid reuse) and fail what is gone. Real worker
processes, real CLI processes, a real SQLite file; no scheduler after the launch."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from helpers import labdeck_env, script_command, wait_for

from engine.api import Engine


def cli(home, *args: str) -> dict | list:
    res = subprocess.run([sys.executable, "-m", "cli", *args, "--json"],
                         env=labdeck_env(home), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, (args, res.stderr)
    return json.loads(res.stdout)


def row(home, sql: str, params=()) -> tuple | None:
    conn = sqlite3.connect(str(home / "labdeck.db"), timeout=30)
    try:
        return conn.execute(sql, params).fetchone()
    finally:
        conn.close()


def write(home, sql: str, params=()) -> None:
    conn = sqlite3.connect(str(home / "labdeck.db"), timeout=30)
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


def launch_slow(home) -> tuple[int, int, int]:
    """`labdeck run start` without --wait: the worker is started and nothing watches it.
    Returns (run_id, job_id, worker pid) once the script is logging."""
    cli(home, "exp", "create", "slow", "--adapter", "script",
        "--set", "command=" + script_command("--steps 100000 --sleep 0.05"))
    started = cli(home, "run", "start", "slow")
    run_id, job_id = started["run_id"], started["job_id"]
    wait_for(lambda: row(home, "SELECT COUNT(*) FROM metric_keys WHERE run_id=?", (run_id,))[0],
             timeout=60, what="the script to log")
    pid = row(home, "SELECT pid FROM jobs WHERE id=?", (job_id,))[0]
    assert row(home, "SELECT pid FROM scheduler_lease") is None, "no scheduler may be left"
    return run_id, job_id, pid


def kill_group(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not _running(pid), timeout=10, what=f"pid {pid} to die")


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_dead_worker_of_a_plain_run_start_is_shown_failed(home):
    run_id, job_id, pid = launch_slow(home)
    kill_group(pid)
    job = cli(home, "jobs", "show", str(job_id))
    assert job["status"] == "failed" and f"worker process {pid} is gone" in job["error"], job
    run = cli(home, "run", "show", str(run_id))
    assert run["status"] == "failed" and run["worker_pid"] is None, run
    # reconciled in the database, not only masked in one view
    assert row(home, "SELECT status FROM jobs WHERE id=?", (job_id,))[0] == "failed"
    assert row(home, "SELECT status FROM runs WHERE id=?", (run_id,))[0] == "failed"
    assert [j["status"] for j in cli(home, "jobs", "list")] == ["failed"]


async def test_a_reused_pid_is_not_taken_for_the_worker(home):
    run_id, job_id, pid = launch_slow(home)
    started = row(home, "SELECT started FROM jobs WHERE id=?", (job_id,))[0]
    kill_group(pid)
    # the kernel hands the dead worker's pid to an unrelated, later process
    wait_for(lambda: time.time() > started + 2.5, timeout=10, what="a later start time")
    other = subprocess.Popen(["sleep", "600"])
    try:
        write(home, "UPDATE jobs SET pid=? WHERE id=?", (other.pid, job_id))
        write(home, "UPDATE runs SET pid=? WHERE id=?", (other.pid, run_id))
        async with Engine.session(home) as engine:  # the TUI's door
            run = await engine.get_run(run_id)
            assert run.status == "failed", run
            job = await engine.get_job(job_id)
            assert job.status == "failed" and f"worker process {other.pid} is gone" in job.error
        assert other.poll() is None, "the unrelated process is left alone"
    finally:
        other.kill()
        other.wait()


def _tracking_script(home, body: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(body)], env=labdeck_env(home),
                          capture_output=True, text=True, timeout=60)


def test_tracking_run_of_a_dead_or_replaced_process_is_shown_failed(home):
    body = """
        import os, signal
        from engine import tracking
        run = tracking.init(experiment="mine")
        tracking.log({"loss": 1.0}, step=0)
        run.flush()
        print(run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
    res = _tracking_script(home, body)
    assert res.returncode == -9
    run_id = int(res.stdout.split()[0])
    run = cli(home, "run", "show", str(run_id))
    assert run["status"] == "failed" and "ended without finishing" in run["error"], run

    res = _tracking_script(home, body)
    second = int(res.stdout.split()[0])
    started = row(home, "SELECT started FROM runs WHERE id=?", (second,))[0]
    wait_for(lambda: time.time() > started + 2.5, timeout=10, what="a later start time")
    other = subprocess.Popen(["sleep", "600"])
    try:
        write(home, "UPDATE runs SET pid=? WHERE id=?", (other.pid, second))
        runs = {r["id"]: r for r in cli(home, "run", "list")}
        assert runs[second]["status"] == "failed", runs[second]
    finally:
        other.kill()
        other.wait()
