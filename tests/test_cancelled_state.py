"""Cancelled is its own state (issue 15, item 7): a study's interrupted trial is cancelled,
not failed, in the mirror, the counts and the log; a cancelled script run's log ends with a
plain "cancelled" line, never a traceback. Real workers, a real scheduler, real commands."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
import time
from pathlib import Path

from helpers import ROOT

from engine.api import Engine
from engine.paths import job_log_path
from engine.schema import MIGRATIONS, connect_sync

PY = sys.executable


async def _wait(cond, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await cond()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def _final(engine: Engine, job_id: int):
    async def ended():
        job = await engine.get_job(job_id)
        return job if job.status in ("completed", "failed", "cancelled") else None
    return await _wait(ended, what=f"job {job_id} to end")


async def test_cancelled_script_run_log_ends_plain_without_traceback(home, tmp_path):
    """The command is stopped by a SIGTERM that comes before the worker heard of the cancel
    (here it raises the job's cancel flag and signals its own group at once): the run is
    cancelled, and its log ends with "labdeck: job N cancelled", not ``RuntimeError:
    command exited with code -15`` and a traceback."""
    script = tmp_path / "cancel_myself.py"
    script.write_text(textwrap.dedent("""
        import json, os, signal, sqlite3
        print(json.dumps({"step": 0, "loss": 1.0}), flush=True)
        db = sqlite3.connect(os.path.join(os.environ["LABDECK_HOME"], "labdeck.db"))
        with db:  # what `labdeck run cancel` writes
            db.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?",
                       (int(os.environ["LABDECK_JOB_ID"]),))
        os.killpg(os.getpgrp(), signal.SIGTERM)
    """))
    async with Engine.session(home) as engine:
        await engine.create_experiment("selfcancel", "script",
                                       {"command": f"{PY} {script}", "cwd": str(ROOT)})
        run_id, job_id = await engine.start_run("selfcancel")
        await engine.ensure_scheduler()
        job = await _final(engine, job_id)
        run = await engine.get_run(run_id)
        log = [ln for ln in await engine.log_tail(run_id, 200) if ln.strip()]
    assert job.status == "cancelled", (job, log)
    assert run.status == "cancelled"
    assert not any("Traceback" in ln or "RuntimeError" in ln for ln in log), log
    assert log[-1] == f"labdeck: job {job_id} cancelled", log


def _slow_toy(steps: int) -> dict:
    return {"command": f"{PY} -m engine.examples.toy_train --lr {{lr}} --steps {{steps}}"
                       " --sleep 0.02", "lr": 0.01, "steps": steps, "cwd": str(ROOT)}


async def _cancel_the_running_trial(engine: Engine, name: str, job_id: int) -> None:
    async def running():
        return any(t.state == "running" for t in await engine.study_trials(name))
    await _wait(running, what="a running trial")
    await engine.cancel_study(name)
    job = await _final(engine, job_id)
    assert job.status == "cancelled", job


async def test_study_cancel_twice_counts_cancelled_never_failed(home):
    """Each start-then-cancel adds one cancelled trial (no failed one), and the job log
    says the trial was cancelled."""
    async with Engine.session(home) as engine:
        await engine.create_experiment("slow", "script", _slow_toy(5000),
                                       objective="val/loss", direction="minimize")
        await engine.create_study("twice", "slow", ["lr=0.01:0.2"], n_trials=2,
                                  tuner="random")
        await engine.ensure_scheduler()
        for round_ in (1, 2):
            job_id = await engine.start_study("twice")
            await _cancel_the_running_trial(engine, "twice", job_id)
            study = await engine.get_study("twice", refresh=True)
            trials = await engine.study_trials("twice")
            assert [t.state for t in trials] == ["cancelled"] * round_
            assert study.counts["cancelled"] == round_ and study.counts["failed"] == 0
            assert study.counts["left"] == 2  # a cancelled trial uses no slot
            assert study.status == "cancelled"
            for t in trials:
                assert (await engine.get_run(t.run_id)).status == "cancelled"
        log = job_log_path(engine.settings, job_id, None).read_text()
    assert f"labdeck: trial {trials[-1].number} cancelled" in log, log
    assert "failed" not in log, log


def test_migration_turns_cancelled_failed_trials_into_cancelled(tmp_path: Path):
    """A home from before: its trials mirrored as failed with the note "cancelled" read as
    cancelled after the upgrade; real failures stay failed."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:5]):
        old.executescript(script)
        old.execute(f"PRAGMA user_version={number + 1}")
    old.execute("INSERT INTO studies(id, name, adapter, tuner, storage, tuner_study, created,"
                " updated) VALUES (1, 's', 'script', 'random', 'x', 's', 0, 0)")
    old.executemany("INSERT INTO trials(study_id, number, state, error) VALUES (1, ?, ?, ?)",
                    [(0, "complete", None), (1, "failed", "cancelled"),
                     (2, "failed", "RuntimeError: boom")])
    old.close()
    conn = connect_sync(path)
    states = conn.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
    assert states == [(0, "complete"), (1, "cancelled"), (2, "failed")]
    conn.execute("INSERT INTO trials(study_id, number, state) VALUES (1, 3, 'cancelled')")
