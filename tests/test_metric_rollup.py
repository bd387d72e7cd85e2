"""Metric rollups (engine/metric_rollup.py) on a real SQLite file: the buckets the writer
keeps equal a brute-force aggregate of the stored points at every level (NaN, +-inf, steps out
of order and repeated, two writers on one key), survive a killed writer, are backfilled by the
migration, and the chart's series read fetches O(columns) rows however long the series."""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from helpers import ROOT

from engine.api import Engine
from engine.data import metric_rollup as rollup_data
from engine.data import metrics as data
from engine.data.experiments import get_or_create as get_or_create_experiment
from engine.data.runs import insert_run
from engine.metric_rollup import (
    MAX_LEVEL,
    STEP_MAX,
    STEP_MIN,
    Bucket,
    bucket_size,
    top_level,
)
from engine.metric_writer import MetricWriter
from engine.schema import MIGRATIONS, _split, connect_sync, write_tx
from engine.series import RAW_FACTOR

# ------------------------------------------------------------------ helpers


def _run(home) -> tuple[sqlite3.Connection, int]:
    conn = connect_sync(home / "labdeck.db")
    exp = get_or_create_experiment(conn, "rollup", "script", {})
    with write_tx(conn):
        run_id, _ = insert_run(conn, exp, {}, "running", "tracking", pid=os.getpid())
    return conn, run_id


def _brute(points: list[tuple]) -> dict[tuple[int, int], Bucket]:
    """(level, index) -> bucket, computed from (id, step, value, wall, epoch) in id order."""
    out = {}
    for level in range(top_level(len(points)) + 1):
        size = bucket_size(level)
        for idx in range(0, (len(points) + size - 1) // size):
            chunk = points[idx * size: (idx + 1) * size]
            vs = [p[2] for p in chunk if p[2] is not None]
            es = [p[4] for p in chunk if p[4] is not None]
            total = None
            if vs:
                total = math.nan if math.inf in vs and -math.inf in vs else math.fsum(vs)
            out[level, idx] = Bucket(
                len(chunk), len(chunk) - len(vs), min(vs, default=None), max(vs, default=None),
                total, min(p[1] for p in chunk), max(p[1] for p in chunk),
                min(p[3] for p in chunk), max(p[3] for p in chunk),
                min(es, default=None), max(es, default=None), chunk[0][0], chunk[-1][0])
    return out


def _same_sum(a: float | None, b: float | None, scale: float) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(1.0, scale)


def check_rollup(db) -> int:
    """Assert every key's stored buckets equal the brute-force ones; returns keys checked."""
    conn = sqlite3.connect(str(db))
    try:
        keys = [k for (k,) in conn.execute("SELECT id FROM metric_keys")]
        for kid in keys:
            points = conn.execute("SELECT id, step, value, wall, epoch FROM metrics"
                                  " WHERE key_id=? ORDER BY id", (kid,)).fetchall()
            stored = {(r[0], r[1]): rollup_data._bucket(r[2:]) for r in conn.execute(
                "SELECT level, idx, n, nans, vmin, vmax, vsum, step_lo, step_hi, wall_lo,"
                " wall_hi, epoch_lo, epoch_hi, id_lo, id_hi FROM metric_rollup"
                " WHERE key_id=?", (kid,))}
            want = _brute(points)
            assert stored.keys() == want.keys(), f"key {kid}: levels/buckets differ"
            scale = sum(abs(p[2]) for p in points if p[2] is not None and math.isfinite(p[2]))
            for where, b in want.items():
                got = stored[where]
                assert got._replace(vsum=None) == b._replace(vsum=None), (kid, where, got, b)
                assert _same_sum(got.vsum, b.vsum, scale), (kid, where, got.vsum, b.vsum)
        return len(keys)
    finally:
        conn.close()


def _value(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.03:
        return math.nan
    if r < 0.04:
        return math.inf
    if r < 0.05:
        return -math.inf
    return rng.gauss(0, 10)


# ------------------------------------------------------------------ the rollup itself


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rollup_equals_brute_force_at_every_level(home, seed):
    rng = random.Random(seed)
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id, flush_every_s=3600, max_buffer=10**9)
    step = 0
    for _ in range(60):  # batches of every size: bucket and level edges fall inside them
        for _ in range(rng.choice([1, 3, 15, 16, 17, 63, 300, 1100, 5000])):
            r = rng.random()
            if r < 0.05:
                step = max(0, step - rng.randint(1, 500))  # a resume: steps go back
            elif r > 0.1:
                step += rng.choice([1, 1, 1, 7, 1000])  # else: the same step again
            epoch = rng.choice([None, step / 100.0]) if seed else None
            w.log({"loss": _value(rng), "acc": rng.random()} if rng.random() < 0.7
                  else {"sparse": _value(rng)}, step=step, epoch=epoch)
        w.flush()
    w.log_many([("loss", STEP_MAX, 1.0), ("loss", STEP_MIN, -1.0)])  # the step extremes
    w.close()
    assert check_rollup(home / "labdeck.db") == 3
    counts = dict(conn.execute("SELECT k.key, COUNT(*) FROM metrics m JOIN metric_keys k"
                               " ON k.id=m.key_id GROUP BY k.key").fetchall())
    assert counts["loss"] > bucket_size(4)  # five levels at least were checked


def test_a_second_writer_on_the_same_key_keeps_it_whole(home):
    """Two writers (a worker and the script it runs, both logging one key): each reads the
    key's buckets again when the other has moved them."""
    conn, run_id = _run(home)
    a = MetricWriter(conn, run_id, flush_every_s=3600)
    b = MetricWriter(connect_sync(home / "labdeck.db"), run_id, flush_every_s=3600)
    for i in range(40):
        for j in range(37 * (i % 5 + 1)):
            (a if i % 2 else b).log({"shared": float(i * 1000 + j)}, step=i * 1000 + j)
        (a if i % 2 else b).flush()
    a.close()
    b.close()
    assert check_rollup(home / "labdeck.db") == 1


def test_a_rolled_back_batch_leaves_no_buckets(home):
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id, flush_every_s=3600, max_buffer=10**9)
    w.log_many(("x", i, float(i)) for i in range(1000))
    w.flush()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")  # a full disk
    w.log_many(("x", i, float(i)) for i in range(1000, 9000))
    with pytest.raises(sqlite3.OperationalError):
        w.flush()
    check_rollup(home / "labdeck.db")
    conn.execute("PRAGMA max_page_count=1073741823")
    w.log_many(("x", i, -float(i)) for i in range(9000, 9100))
    w.close()
    assert check_rollup(home / "labdeck.db") == 1
    assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 9100


CRASHING_WRITER = textwrap.dedent("""
    import math, sys
    from engine.data.experiments import get_or_create
    from engine.data.runs import insert_run
    from engine.metric_writer import MetricWriter
    from engine.schema import connect_sync, write_tx
    conn = connect_sync(sys.argv[1])
    exp = get_or_create(conn, "crash", "script", {})
    with write_tx(conn):
        run_id, _ = insert_run(conn, exp, {}, "running", "tracking")
    w = MetricWriter(conn, run_id, flush_every_s=0.001, max_buffer=700)
    i = 0
    while True:  # until killed: the flush thread commits batches meanwhile
        w.log({"loss": math.sin(i / 50) if i % 97 else math.nan, "lr": 1e-3 / (1 + i)}, step=i)
        i += 1
        if i == 20_000:
            print("ready", flush=True)
""")


def test_a_killed_writer_leaves_rollup_and_points_consistent(home):
    home.mkdir(parents=True)
    db = home / "labdeck.db"
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, str(db)],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-batch or between batches: either way
        proc.wait()
    conn = connect_sync(db)  # reopen: WAL recovery
    stored = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    assert stored >= 2 * 10_000
    assert check_rollup(db) == 2
    # a writer resuming the run continues the same buckets
    run_id = conn.execute("SELECT MAX(id) FROM runs").fetchone()[0]
    w = MetricWriter(conn, run_id, flush_every_s=3600)
    w.log_many(("loss", 10**6 + i, float(i)) for i in range(5000))
    w.close()
    assert check_rollup(db) == 2


def _schema_7_home_with_points(db) -> None:
    """A home as labdeck left it before migration 8: points, no rollup."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db), isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:7]):
        conn.execute("BEGIN")
        for stmt in _split(script):
            conn.execute(stmt)
        conn.execute(f"PRAGMA user_version={number + 1}")
        conn.execute("COMMIT")
    rng = random.Random(7)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO experiments(id, name, adapter, created, updated)"
                 " VALUES (1, 'old', 'script', 0, 0)")
    conn.execute("INSERT INTO runs(id, experiment_id, number, status, created)"
                 " VALUES (1, 1, 1, 'completed', 0)")
    rows, pid = [], 0
    for kid, (key, n) in enumerate([("big", 70_000), ("small", 5), ("edge", 256),
                                    ("one", 1), ("odd", 1025)], start=1):
        conn.execute("INSERT INTO metric_keys(id, run_id, key) VALUES (?, 1, ?)", (kid, key))
        for i in range(n):
            pid += 1
            v = _value(rng)
            rows.append((kid, pid, i - rng.randint(0, 3), None if v != v else v, 1000.0 + i,
                         None if i % 3 else i / 7))
    rng.shuffle(rows)  # ids of keys interleave, as they do when logged together
    rows.sort(key=lambda r: r[1])
    conn.executemany("INSERT INTO metrics(key_id, id, step, value, wall, epoch)"
                     " VALUES (?,?,?,?,?,?)", rows)
    conn.execute("UPDATE metric_seq SET last=?", (pid,))
    conn.execute("COMMIT")
    conn.close()


def test_the_migration_backfills_an_existing_home(home):
    db = home / "labdeck.db"
    _schema_7_home_with_points(db)
    conn = connect_sync(db)  # migrates
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert check_rollup(db) == 5
    levels = conn.execute("SELECT MAX(level) FROM metric_rollup").fetchone()[0]
    assert levels == top_level(70_000) < MAX_LEVEL
    # the writer carries on from the backfilled buckets
    w = MetricWriter(conn, 1, flush_every_s=3600)
    w.log_many((key, 10**5 + i, float(i)) for i in range(3000) for key in ("big", "one", "odd"))
    w.close()
    assert check_rollup(db) == 5


def _scanned_summary(conn: sqlite3.Connection, run_id: int) -> dict[str, dict]:
    """What a run's summary said when it scanned every point (the statements before the
    metric rollup), for comparison."""
    out = {}
    for kid, key in conn.execute("SELECT id, key FROM metric_keys WHERE run_id=?", (run_id,)):
        count, nans, vmin, vmax, last_step = conn.execute(
            "SELECT COUNT(*), SUM(value IS NULL), MIN(value), MAX(value), MAX(step) FROM metrics"
            " WHERE key_id=?", (kid,)).fetchone()
        last = conn.execute("SELECT value FROM metrics WHERE key_id=? ORDER BY step DESC,"
                            " id DESC LIMIT 1", (kid,)).fetchone()[0]
        best = vmin if key.endswith("loss") else vmax
        best_step = None if best is None else conn.execute(
            "SELECT step FROM metrics WHERE key_id=? AND value=? ORDER BY step LIMIT 1",
            (kid, best)).fetchone()[0]
        out[key] = {"last": last, "min": vmin, "max": vmax, "best": best,
                    "best_step": best_step, "count": count, "nan_count": nans,
                    "last_step": last_step}
    return out


@pytest.mark.parametrize("seed", [3, 4])
def test_a_run_summary_from_the_buckets_equals_a_scan_of_the_points(home, seed):
    rng = random.Random(seed)
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id, flush_every_s=3600, max_buffer=10**9)
    step = 0
    for _ in range(30_000):
        r = rng.random()
        step = max(0, step - rng.randint(1, 300)) if r < 0.01 else step + (r > 0.05)
        w.log({"train/loss": rng.choice([_value(rng), 0.25, 7.0]),
               "acc": rng.choice([1.0, rng.random()]), "nan_at_the_end": rng.random()},
              step=step, epoch=step / 1000)
    w.log({"nan_at_the_end": math.nan, "only_nan": math.nan}, step=step)
    w.close()
    got = data.summarize_run(conn, run_id)
    want = _scanned_summary(conn, run_id)
    assert set(got) == set(want)
    for key, expected in want.items():
        shown = {k: got[key][k] for k in expected}
        for k in ("last", "min", "max", "best"):  # the summary reads NaN for NULL
            shown[k] = None if shown[k] is None or math.isnan(shown[k]) else shown[k]
        assert shown == expected, key
    assert data.last_step(conn, run_id) == max(v["last_step"] for v in want.values())
    assert data.last_epoch(conn, run_id) == conn.execute(
        "SELECT MAX(epoch) FROM metrics").fetchone()[0]


# ------------------------------------------------------------------ reading for charts


def _seed(home, n: int, key: str = "loss") -> tuple[sqlite3.Connection, int, MetricWriter]:
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id, flush_every_s=3600, max_buffer=10**9)
    for start in range(0, n, 100_000):
        w.log_many((key, s, math.sin(s / 5000) + s / n)
                   for s in range(start, min(n, start + 100_000)))
        w.flush()
    return conn, run_id, w


def _vm_steps(conn: sqlite3.Connection, fn) -> tuple[int, object]:
    """Work SQLite does for ``fn()``: virtual machine instructions, in thousands."""
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    conn.set_progress_handler(tick, 1000)
    try:
        out = fn()
    finally:
        conn.set_progress_handler(None, 1000)
    return count[0], out


def test_a_chart_read_fetches_o_columns_rows_however_long_the_series(home):
    conn, run_id, w = _seed(home, 400_000)
    kid = data.key_id(conn, run_id, "loss")
    columns = 120
    want, raw_limit = columns, RAW_FACTOR * 2 * columns  # read_metric, 2 points a column
    work_long, full = _vm_steps(
        conn, lambda: rollup_data.read_series(conn, kid, want, raw_limit))
    assert full.level is not None and want <= len(full.buckets) <= 4 * want + 2
    assert full.fetched <= 8 * want
    assert sum(b.n for b in full.buckets) == full.count == 400_000
    # reading every point costs (in SQLite's own work) far more than the chart's read
    work_all, _ = _vm_steps(conn, lambda: data.key_points_after(conn, kid, 0, 10**9))
    assert work_long * 50 < work_all
    # a zoomed range reads only that range, at a finer level
    zoom = rollup_data.read_series(conn, kid, want, raw_limit, lo=100_000, hi=150_000)
    assert zoom.level is not None and zoom.level < full.level and zoom.fetched <= 8 * want
    assert all(b.step_hi >= 100_000 and b.step_lo <= 150_000 for b in zoom.buckets)
    # a small range: the points themselves, no more than the limit
    small = rollup_data.read_series(conn, kid, want, raw_limit, lo=200_000, hi=200_999)
    assert small.level is None and len(small.points) == 1000
    assert small.fetched <= 1000 + 8 * want  # the points in range, not the buckets around
    last = rollup_data.read_series(conn, kid, want, raw_limit, last_n=500)
    assert [p[1] for p in last.points] == list(range(399_500, 400_000))
    w.close()


def test_a_chart_read_does_not_grow_with_the_series(home):
    conn, run_id, w = _seed(home, 50_000)
    kid = data.key_id(conn, run_id, "loss")
    short, _ = _vm_steps(conn, lambda: rollup_data.read_series(conn, kid, 100, 6400))
    w.log_many(("loss", s, float(s)) for s in range(50_000, 800_000))
    w.close()
    long_, read = _vm_steps(conn, lambda: rollup_data.read_series(conn, kid, 100, 6400))
    assert read.count == 800_000
    assert long_ < 3 * short + 20  # 16x the points, about the same work


async def test_read_metric_draws_a_long_series_from_the_summary(home):
    conn, run_id, w = _seed(home, 300_000)
    w.log_many([("loss", 123_457, 50.0), ("loss", 77_777, -40.0), ("loss", 5, math.nan)])
    w.flush()
    async with Engine.session(home) as engine:
        pts = await engine.read_metric(run_id, "loss", max_points=240)
        assert pts.downsampled and len(pts.x) <= 240 and pts.total == 300_003
        assert max(pts.y) == 50.0 and min(pts.y) == -40.0  # extremes survive
        assert pts.x == sorted(pts.x) and not any(math.isnan(y) for y in pts.y)
        for x in ("wall", "epoch"):
            other = await engine.read_metric(run_id, "loss", max_points=240, x=x)
            assert other.x == sorted(other.x)
        zoom = await engine.read_metric(run_id, "loss", max_points=240, last_n_steps=1000)
        assert min(zoom.x) >= 300_000 - 1000 and len(zoom.x) <= 240
    w.close()


async def test_a_live_chart_appends_new_points_to_its_view(home):
    """The chart of a running run: each redraw reads the points past its cursor and folds them
    into the buckets it holds; what it shows equals a fresh read of the stored rollup."""
    conn, run_id, w = _seed(home, 200_000)
    async with Engine.session(home) as engine:
        first = await engine.read_metric(run_id, "loss", max_points=400)
        assert first.total == 200_000
        step = 200_000
        for batch in (1, 15, 700, 5000, 20_000):
            w.log_many(("loss", s, math.cos(s / 777) * 3) for s in range(step, step + batch))
            w.flush()
            step += batch
            live = await engine.read_metric(run_id, "loss", max_points=400)
            zoom = await engine.read_metric(run_id, "loss", max_points=400, last_n_steps=9000)
            async with Engine.session(home) as fresh_engine:
                fresh = await fresh_engine.read_metric(run_id, "loss", max_points=400)
                fresh_zoom = await fresh_engine.read_metric(run_id, "loss", max_points=400,
                                                            last_n_steps=9000)
            assert live.total == step
            assert (live.x, live.y) == (fresh.x, fresh.y)
            assert (zoom.x, zoom.y) == (fresh_zoom.x, fresh_zoom.y) and max(zoom.x) == step - 1
    w.close()
    assert check_rollup(home / "labdeck.db") == 1


async def test_a_short_series_is_read_whole_and_followed_live(home):
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id, flush_every_s=3600)
    w.log_many([("acc", 0, 0.5), ("acc", 1, math.nan), ("acc", 2, math.inf)])
    w.flush()
    async with Engine.session(home) as engine:
        pts = await engine.read_metric(run_id, "acc")
        assert (pts.x, pts.y, pts.total, pts.downsampled) == ([0, 2], [0.5, math.inf], 3, False)
        w.log_many(("acc", s, s / 10) for s in range(3, 50))
        w.flush()
        pts = await engine.read_metric(run_id, "acc")
        assert pts.x == [0, *range(2, 50)] and pts.total == 50
    w.close()
