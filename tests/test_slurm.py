"""Jobs on Slurm (issue 16) against a real one-node Slurm (scripts/slurm-local.sh): submitted
with sbatch, watched with squeue/scontrol, cancelled with scancel; the worker writes a spool
and never opens the database; the scheduler applies every record exactly once, across a
scheduler killed and started again.

Skipped only where the script says Slurm cannot run on this machine (not root, no apt-get);
the gate runs as root and runs them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, labdeck_env, script_command, wait_for

pytestmark = pytest.mark.slow

SLURM_LOCAL = ROOT / "scripts" / "slurm-local.sh"


@pytest.fixture(scope="session")
def slurm() -> None:
    proc = subprocess.run([str(SLURM_LOCAL), "start"], capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        if "run as root" in out or "no apt-get" in out:
            pytest.skip(f"no local Slurm here: {out.strip().splitlines()[-1]}")
        pytest.fail(f"scripts/slurm-local.sh start failed:\n{out}")


def cli(home: Path, *args: str, check: bool = True, timeout: float = 120) -> dict:
    proc = subprocess.run([sys.executable, "-m", "cli", "--json", *args], cwd=str(ROOT),
                          env=labdeck_env(home), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"labdeck {' '.join(args)} -> {proc.returncode}\n{proc.stdout}"
                             f"\n{proc.stderr}")
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def serve(home: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", "serve"], cwd=str(ROOT),
                            env=labdeck_env(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    proc.wait(timeout=30)


def db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(home / "labdeck.db"), timeout=10)


def experiment(home: Path, name: str, *script_args: str) -> None:
    cli(home, "exp", "create", name, "--adapter", "script", "--set",
        "command=" + script_command(*script_args))


def points(home: Path, run_id: int) -> dict[str, tuple[int, int, int, int]]:
    """key -> (points, distinct steps, lowest step, highest step) of the run."""
    with db(home) as conn:
        rows = conn.execute(
            "SELECT k.key, COUNT(*), COUNT(DISTINCT m.step), MIN(m.step), MAX(m.step)"
            " FROM metrics m JOIN metric_keys k ON k.id=m.key_id WHERE k.run_id=?"
            " AND k.key NOT LIKE 'sys/%' GROUP BY k.key", (run_id,)).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def assert_exactly_once(home: Path, run_id: int, steps: int) -> None:
    want = (steps, steps, 0, steps - 1)
    assert points(home, run_id) == {"train/loss": want, "train/acc": want, "val/score": want}
    with db(home) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def squeue_state(slurm_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", slurm_id, "-o", "%T"],
                         capture_output=True, text=True, timeout=30).stdout.strip()
    if out:
        return out
    return subprocess.run(["scontrol", "-o", "show", "job", slurm_id], capture_output=True,
                          text=True, timeout=30).stdout.split("JobState=")[1].split()[0]


def test_training_on_slurm_stores_every_point_once(slurm, home):
    # the tracking API inside the job (the script's default) reports through the spool
    experiment(home, "tr", "--steps 300")
    out = cli(home, "run", "start", "tr", "--executor", "slurm", "--slurm-opt", "time=5",
              "--wait")
    assert out["status"] == "completed", out
    run_id, job_id = out["run_id"], out["job_id"]
    assert_exactly_once(home, run_id, 300)
    job = cli(home, "jobs", "show", str(job_id))
    assert job["slurm_id"] and job["slurm_id"].isdigit()
    assert job["params"]["executor"] == "slurm" and job["params"]["slurm"] == {"time": "5"}
    assert job["host"] == "vm" or job["host"]  # the node the worker ran on
    assert job["pid"] is None  # no local process to watch: the liveness reads pass it by
    assert squeue_state(job["slurm_id"]) == "COMPLETED"
    run = cli(home, "run", "show", str(run_id))
    assert run["status"] == "completed" and run["summary"]["train/loss"]["count"] == 300
    spool = home / "runs" / str(run_id) / "slurm" / f"job-{job_id}"
    assert {p.name for p in spool.iterdir()} >= {"job.json", "job.sbatch", "spool.jsonl"}
    # the job's log is the run's usual log: `run logs` reads it
    assert f"labdeck: job {job_id} completed" in (home / "runs" / str(run_id)
                                                   / f"job-{job_id}.log").read_text()


def test_cancel_of_a_running_slurm_job(slurm, home):
    experiment(home, "long", "--steps 100000 --sleep 0.02")
    sched = serve(home)
    slurm_ids: list[str] = []
    try:
        out = cli(home, "run", "start", "long", "--executor", "slurm")
        run_id, job_id = out["run_id"], out["job_id"]
        wait_for(lambda: points(home, run_id).get("train/loss", (0,))[0] > 20, timeout=60,
                 what="metrics from the Slurm job")
        slurm_ids.append(cli(home, "jobs", "show", str(job_id))["slurm_id"])
        job = wait_for(lambda: (j := cli(home, "jobs", "show", str(job_id)))["slurm_state"]
                       == "RUNNING on vm" and j, timeout=30, what="Slurm's RUNNING state")
        assert job["status"] == "running"
        assert cli(home, "jobs", "list")[0]["slurm_id"] == job["slurm_id"]
        cancelled = cli(home, "run", "cancel", str(run_id), timeout=60)
        assert cancelled["status"] == "cancelled", cancelled
        slurm_id = job["slurm_id"]
        wait_for(lambda: squeue_state(slurm_id) not in ("RUNNING", "COMPLETING"), timeout=60,
                 what="Slurm to end the job")
        assert cli(home, "run", "show", str(run_id))["status"] == "cancelled"
        with db(home) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        stop(sched)
        # a failure above must not leave a 30-minute job on the node for the next tests
        for slurm_id in filter(None, slurm_ids):
            subprocess.run(["scancel", slurm_id], capture_output=True, timeout=30)


def test_scheduler_killed_and_restarted_applies_everything_once(slurm, home):
    experiment(home, "rs", "--steps 400 --sleep 0.02")
    first = serve(home)
    try:
        out = cli(home, "run", "start", "rs", "--executor", "slurm")
        run_id, job_id = out["run_id"], out["job_id"]
        wait_for(lambda: points(home, run_id).get("train/loss", (0,))[0] > 30, timeout=60,
                 what="metrics from the Slurm job")
    finally:
        stop(first, signal.SIGKILL)  # no goodbye: its lease just lapses
    time.sleep(2)  # the job keeps writing its spool meanwhile
    assert cli(home, "jobs", "show", str(job_id))["status"] == "running"  # not taken for lost
    second = serve(home)
    try:
        wait_for(lambda: cli(home, "jobs", "show", str(job_id))["status"] != "running",
                 timeout=90, interval=0.5, what="the job to end")
    finally:
        stop(second)
    assert cli(home, "jobs", "show", str(job_id))["status"] == "completed"
    assert_exactly_once(home, run_id, 400)


def test_time_limit_ends_the_job_failed_with_slurms_reason(slurm, home):
    experiment(home, "tl", "--steps 100000 --sleep 0.05")
    out = cli(home, "run", "start", "tl", "--executor", "slurm", "--slurm-opt", "time=1",
              "--wait", check=False, timeout=300)
    assert out["status"] == "failed", out
    assert out["error"] == "slurm: TIMEOUT (TimeLimit)", out["error"]
    assert points(home, out["run_id"])["train/loss"][0] > 10  # it had run, and reported


def test_spool_read_waits_for_a_torn_line_and_stops_at_a_damaged_one(tmp_path):
    from engine.spool import SpoolWriter, encode, read_from

    spool = SpoolWriter(tmp_path)
    spool.write("beat", activity=1.0, t=1.0)
    spool.write("metrics", sync=True, points=[[{"a": 1.0}, 0, 1.0, None]])
    spool.close()
    path = tmp_path / "spool.jsonl"
    whole = path.read_bytes()
    torn = encode(3, {"kind": "beat", "activity": 2.0, "t": 2.0})
    path.write_bytes(whole + torn[:-7])  # a record being written: no newline yet
    read = read_from(path, 0)
    assert [r.seq for r in read.records] == [1, 2] and read.offset == len(whole)
    assert read_from(path, read.offset).records == []
    path.write_bytes(whole + torn)
    assert [r.seq for r in read_from(path, read.offset).records] == [3]
    damaged = torn.replace(b"2.0", b"9.0", 1)  # the checksum no longer matches
    path.write_bytes(whole + damaged + encode(4, {"kind": "beat", "activity": 3.0, "t": 3.0}))
    assert read_from(path, read.offset).records == []  # stops there while the job runs
    final = read_from(path, read.offset, final=True)  # skips it once the job has ended
    assert [r.seq for r in final.records] == [4] and len(final.bad) == 1
    assert SpoolWriter(tmp_path)._seq == 4  # a worker started again continues the numbers
