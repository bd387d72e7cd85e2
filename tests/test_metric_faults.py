"""Metric writes under faults: a full disk, values and steps SQLite cannot hold, huge keys.

A full disk is a real SQLite condition: ``PRAGMA max_page_count`` on the writer's connection,
set to the current size (no page may be added), then raised again.
"""

from __future__ import annotations

import math
import os
import sqlite3

import pytest
from helpers import wait_for

from engine.data.experiments import get_or_create as get_or_create_experiment
from engine.data.runs import insert_run
from engine.metric_writer import MAX_KEY_LENGTH, MetricWriter
from engine.schema import connect_sync, write_tx
from engine.tracking import MetricWriteError, TrackedRun

NO_LIMIT = 1_073_741_823


def _run(home) -> tuple[sqlite3.Connection, int]:
    conn = connect_sync(home / "labdeck.db")
    exp = get_or_create_experiment(conn, "faults", "script", {})
    with write_tx(conn):
        run_id, _ = insert_run(conn, exp, {}, "running", "tracking", pid=os.getpid())
    return conn, run_id


def _disk_full(conn: sqlite3.Connection) -> None:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")


def _space_freed(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA max_page_count={NO_LIMIT}")


def _counts(home, run_id) -> dict[str, int]:
    conn = sqlite3.connect(str(home / "labdeck.db"))
    try:
        return dict(conn.execute(
            "SELECT k.key, COUNT(*) FROM metrics m JOIN metric_keys k ON k.id=m.key_id"
            " WHERE k.run_id=? GROUP BY k.key", (run_id,)).fetchall())
    finally:
        conn.close()


def _status(home, run_id) -> tuple[str, str | None]:
    conn = sqlite3.connect(str(home / "labdeck.db"))
    try:
        return conn.execute("SELECT status, error FROM runs WHERE id=?", (run_id,)).fetchone()
    finally:
        conn.close()


def test_a_rolled_back_write_forgets_its_new_keys_and_keeps_its_points(home):
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id, flush_every_s=3600, max_buffer=10**9)
    for i in range(1000):
        w.log({"old": float(i)}, step=i)
    w.flush()
    _disk_full(conn)
    for i in range(1000, 4000):
        w.log({"old": float(i), "new": float(i)}, step=i)
    with pytest.raises(sqlite3.OperationalError, match="full"):
        w.flush()  # the error itself, not a failed ROLLBACK hiding it
    assert w.pending == 6000
    _space_freed(conn)
    assert w.flush() == 6000
    w.close()
    assert _counts(home, run_id) == {"old": 4000, "new": 3000}


def test_the_flush_thread_survives_a_full_disk_and_reports_it_once(home, capfd):
    conn, run_id = _run(home)
    begins: list[str] = []
    conn.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
    w = MetricWriter(conn, run_id, flush_every_s=0.01)
    w.log({"loss": 1.0}, step=0)
    wait_for(lambda: _counts(home, run_id) == {"loss": 1}, what="the first flush")
    _disk_full(conn)
    tried = len(begins)
    for i in range(1, 3001):
        w.log({"loss": 1 / i, "acc": i / 3000}, step=i)
    wait_for(lambda: len(begins) >= tried + 4, what="several failed retries")
    err = capfd.readouterr().err
    assert err.count("cannot store the metrics") == 1 and "full" in err
    assert _counts(home, run_id) == {"loss": 1}
    _space_freed(conn)
    wait_for(lambda: _counts(home, run_id) == {"loss": 3001, "acc": 3000}, timeout=30,
             what="the retried points")
    w.log({"loss": 0.0}, step=3001)  # the thread is still alive and flushing
    wait_for(lambda: _counts(home, run_id)["loss"] == 3002, what="a later point")
    assert "stored again" in capfd.readouterr().err
    w.close()


def test_finish_after_a_recovered_failure_stores_everything(home):
    conn, run_id = _run(home)
    run = TrackedRun(run_id, MetricWriter(conn, run_id, flush_every_s=3600), False, conn)
    for i in range(1000):
        run.log({"old": float(i)}, step=i)
    run.flush()
    _disk_full(conn)
    for i in range(1000, 4000):
        run.log({"old": float(i), "new": 1.0}, step=i)
    with pytest.raises(sqlite3.OperationalError):
        run.flush()
    _space_freed(conn)
    run.finish()
    assert _counts(home, run_id) == {"old": 4000, "new": 3000}
    assert _status(home, run_id) == ("completed", None)


def test_finish_on_a_still_full_disk_fails_clearly_and_can_be_retried(home):
    conn, run_id = _run(home)
    run = TrackedRun(run_id, MetricWriter(conn, run_id, flush_every_s=3600), False, conn)
    run.log({"x": 0.0}, step=0)
    run.flush()
    _disk_full(conn)
    for i in range(1, 3000):
        run.log({"x": float(i), "y": 2.0}, step=i)
    with pytest.raises(MetricWriteError, match=r"5998 metric points .* full"):
        run.finish()
    assert _status(home, run_id)[0] != "completed"
    _space_freed(conn)
    run.finish()
    assert _counts(home, run_id) == {"x": 3000, "y": 2999}
    assert _status(home, run_id) == ("completed", None)


def test_a_value_no_float_holds_is_refused_at_log_and_takes_nothing_with_it(home):
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id, flush_every_s=0.01)
    for i in range(100):
        w.log({"ok": float(i)}, step=i)
    with pytest.raises(ValueError, match="'x'.*too large"):
        w.log({"x": 10**400, "ok": 1.0}, step=100)
    w.log({"big": 10**300, "inf": math.inf}, step=100)  # fits a float / stored as inf
    for i in range(101, 200):
        w.log({"ok": float(i)}, step=i)
    wait_for(lambda: _counts(home, run_id).get("ok") == 199, what="the valid points")
    w.close()
    assert _counts(home, run_id) == {"ok": 199, "big": 1, "inf": 1}


def test_a_step_outside_int64_is_refused_at_log(home):
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id, flush_every_s=0.01)
    w.log({"a": 1.0}, step=0)
    for bad in (2**63, -(2**63) - 1, 10**5000):
        with pytest.raises(ValueError, match="step .*64-bit"):
            w.log({"a": 2.0}, step=bad)
    with pytest.raises(ValueError, match="step"):
        w.log({"a": 2.0}, step=math.nan)
    w.log({"a": 3.0}, step=2**63 - 1)
    with pytest.raises(ValueError, match="step .*64-bit"):
        w.log({"a": 4.0})  # the next step would overflow
    w.log({"a": 5.0}, step=1)
    w.close()
    assert _counts(home, run_id) == {"a": 3}


def test_metric_keys_are_capped(home):
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id)
    w.log({"k" * MAX_KEY_LENGTH: 1.0}, step=0)
    with pytest.raises(ValueError, match=f"10000000 characters long; the limit is {MAX_KEY_LENGTH}"):
        w.log({"k" * 10_000_000: 1.0}, step=1)
    with pytest.raises(ValueError, match="the limit"):
        w.log_many([("ok", 2, 1.0), ("k" * (MAX_KEY_LENGTH + 1), 2, 1.0)])
    w.close()
    assert _counts(home, run_id) == {"k" * MAX_KEY_LENGTH: 1}


def test_a_logged_dict_changed_afterwards_keeps_the_logged_values(home):
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id, flush_every_s=3600)
    m = {}
    for i in range(3):
        m["loss"] = float(i)
        w.log(m, step=i)
    w.close()
    assert [v for (v,) in conn.execute("SELECT value FROM metrics ORDER BY step")] == [0, 1, 2]
