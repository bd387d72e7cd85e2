"""The public tracking API in a user's own script, outside any labdeck job."""

import sqlite3
import subprocess
import sys
import textwrap

from helpers import labdeck_env


def _runs(home):
    conn = sqlite3.connect(str(home / "labdeck.db"))
    try:
        return conn.execute(
            "SELECT r.id, e.name, r.status, r.error, r.source FROM runs r JOIN experiments e"
            " ON e.id=r.experiment_id ORDER BY r.id").fetchall()
    finally:
        conn.close()


def _count(home, run_id):
    conn = sqlite3.connect(str(home / "labdeck.db"))
    try:
        return conn.execute("SELECT COUNT(*) FROM metrics m JOIN metric_keys k ON k.id=m.key_id"
                            " WHERE k.run_id=?", (run_id,)).fetchone()[0]
    finally:
        conn.close()


def _script(home, body):
    code = textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], env=labdeck_env(home),
                          capture_output=True, text=True, timeout=60)


def test_standalone_script_creates_and_finishes_a_run(home):
    res = _script(home, """
        from engine import tracking
        run = tracking.init(experiment="mine", config={"lr": 0.1})
        for i in range(500):
            tracking.log({"loss": 1 / (i + 1), "acc": i / 500}, step=i)
        tracking.finish()
    """)
    assert res.returncode == 0, res.stderr
    (run,) = _runs(home)
    assert run[1:] == ("mine", "completed", None, "tracking")
    assert _count(home, run[0]) == 1000


def test_buffer_is_flushed_at_exit_without_finish(home):
    res = _script(home, """
        from engine import tracking
        tracking.init(experiment="nofinish")
        for i in range(300):
            tracking.log({"loss": float(i)}, step=i)
    """)
    assert res.returncode == 0, res.stderr
    (run,) = _runs(home)
    assert run[2] == "completed" and _count(home, run[0]) == 300


def test_crashing_script_leaves_run_failed(home):
    res = _script(home, """
        from engine import tracking
        tracking.init(experiment="crash")
        tracking.log({"loss": 1.0}, step=0)
        raise ValueError("diverged")
    """)
    assert res.returncode == 1
    (run,) = _runs(home)
    assert run[2] == "failed" and "diverged" in run[3]
    assert _count(home, run[0]) == 1


def test_killed_script_is_failed_by_the_sweep(home):
    res = _script(home, """
        import os, signal
        from engine import tracking
        tracking.init(experiment="killed")
        tracking.log({"loss": 1.0}, step=0)
        tracking.flush = None
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert res.returncode == -9
    assert _runs(home)[0][2] == "running"
    from engine.scheduler import Scheduler
    from engine.settings import load_settings

    Scheduler(load_settings(home)).tick()
    Scheduler(load_settings(home)).reconcile()
    run = _runs(home)[0]
    assert run[2] == "failed" and "ended without finishing" in run[3]
