"""Studies across processes: k workers make exactly n_trials; a SIGKILLed worker's trial is
failed and the study goes on. Real processes, real Optuna storage, real SQLite."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, labdeck_env, wait_for
from test_studies import make_toy

from engine.api import Engine

PY = sys.executable


def worker_proc(home: Path, study: str) -> subprocess.Popen:
    return subprocess.Popen([PY, "-m", "cli", "--home", str(home), "study", "worker",
                             study, "--json"], env=labdeck_env(home), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_three_workers_make_exactly_n_trials(home: Path, tmp_path: Path) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path / 'shared' / 'opt.db'}"  # a URL given by the user
    async with Engine.session(home) as engine:
        # ~2 s a trial, so the three workers (started together) all get work even when the
        # machine is loaded: with 0.2 s trials one worker could take all seven before the
        # others had imported their libraries
        await make_toy(engine, steps=40, sleep=0.05)
        await engine.create_study("par", "toy", ["lr=0.001:0.3:log"], n_trials=7,
                                  storage=storage, seed=5)
    procs = [worker_proc(home, "par") for _ in range(3)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out))
    ran = [n for o in outs for n in o["trials_run"]]
    assert sorted(ran) == list(range(7))  # every trial once, none twice
    assert sum(1 for o in outs if o["trials_run"]) >= 2  # the work was shared
    ostudy = optuna.load_study(study_name="par", storage=storage)
    assert len(ostudy.trials) == 7
    assert {t.state.name for t in ostudy.trials} == {"COMPLETE"}
    async with Engine.session(home) as engine:
        study = await engine.get_study("par", refresh=True)
        trials = await engine.study_trials("par")
        assert study.status == "completed" and study.storage == storage
        assert [t.number for t in trials] == list(range(7))
        assert len({t.pid for t in trials}) == sum(1 for o in outs if o["trials_run"])
        assert study.best_value == min(t.value for t in ostudy.trials)


async def test_killed_worker_trial_fails_and_study_goes_on(home: Path) -> None:
    async with Engine.session(home) as engine:
        await make_toy(engine, steps=100, sleep=0.03)  # ~3 s per trial
        await engine.create_study("kill", "toy", ["lr=0.01:0.2"], n_trials=4)
        victim = worker_proc(home, "kill")
        db = sqlite3.connect(str(home / "labdeck.db"))

        def victim_trial():
            return db.execute("SELECT number, run_id FROM trials WHERE pid=? AND"
                              " state='running'", (victim.pid,)).fetchone()

        number, run_id = wait_for(victim_trial, timeout=60, what="the victim's trial")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        # the study job carries on (its worker sweeps the dead trial), alone
        job_id = await engine.start_study("kill")
        await engine.ensure_scheduler()
        job = await engine.wait_job(job_id, timeout=120)
        assert job.status == "completed", job.error
        study = await engine.get_study("kill", refresh=True)
        trials = {t.number: t for t in await engine.study_trials("kill")}
        db.close()
    assert len(trials) == 4 and study.status == "completed"
    dead = trials[number]
    assert dead.state == "failed" and f"worker process {victim.pid}" in dead.error
    assert (await_run_status(home, run_id)) == "failed"
    assert sorted(t.state for t in trials.values()) == ["complete"] * 3 + ["failed"]


def await_run_status(home: Path, run_id: int) -> str:
    db = sqlite3.connect(str(home / "labdeck.db"))
    try:
        return db.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()[0]
    finally:
        db.close()


async def test_dead_trial_swept_with_no_worker_alive(home: Path) -> None:
    """Nobody else runs the study: `study show` (refresh) fails the orphaned trial."""
    async with Engine.session(home) as engine:
        await make_toy(engine, steps=200, sleep=0.03)
        await engine.create_study("orphan", "toy", ["lr=0.01:0.2"], n_trials=2)
        victim = worker_proc(home, "orphan")
        db = sqlite3.connect(str(home / "labdeck.db"))
        wait_for(lambda: db.execute("SELECT 1 FROM trials WHERE state='running'").fetchone(),
                 timeout=60, what="a running trial")
        db.close()
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        study = await engine.get_study("orphan", refresh=True)
        trials = await engine.study_trials("orphan")
    assert [t.state for t in trials] == ["failed"]
    assert study.counts == {"running": 0, "complete": 0, "pruned": 0, "failed": 1,
                            "cancelled": 0, "left": 1}


@pytest.mark.slow
async def test_job_with_two_workers(home: Path) -> None:
    async with Engine.session(home) as engine:
        await make_toy(engine, steps=40)
        await engine.create_study("w2", "toy", ["lr=0.001:0.3:log"], n_trials=6, workers=2)
        job_id = await engine.start_study("w2")
        await engine.ensure_scheduler()
        job = await engine.wait_job(job_id, timeout=180)
        assert job.status == "completed", job.error
        trials = await engine.study_trials("w2")
    assert [t.number for t in trials] == list(range(6))
    assert len({t.pid for t in trials}) == 2
