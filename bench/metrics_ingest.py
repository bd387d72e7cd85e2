"""Metric ingestion throughput and training-loop overhead of the tracking API.

    .venv/bin/python bench/metrics_ingest.py [--points 600000] [--quick]

1. Sustained ingestion: a separate process logs through `engine.tracking` as fast as it can
   (3 keys per step) while this process polls incrementally with a cursor, the way the TUI
   does. Points/s = points durably readable / wall time from the first log call to the
   last point read back.
2. Baseline in the same run: one INSERT + COMMIT per point (sqlite3, WAL, synchronous=NORMAL).
3. Overhead: a loop doing ~1 ms of work per step, with and without one `tracking.log` call
   per step (3 metrics). Overhead = extra wall time / time without logging.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WRITER = textwrap.dedent("""
    import sys, time
    from engine import tracking
    n = int(sys.argv[1])
    run = tracking.init(experiment="bench")
    print(run.id, time.time(), flush=True)
    log = tracking.log
    for i in range(n):
        log({"train/loss": 1.0 / (i + 1), "train/acc": i * 1e-6, "lr": 3e-4}, step=i)
    tracking.finish()
    print(time.time(), flush=True)
""")


def ingest(home: Path, steps: int) -> tuple[float, float, int]:
    env = dict(os.environ, LABDECK_HOME=str(home), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(steps)], env=env,
                            stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline().split()
    run_id, t_start = int(first[0]), float(first[1])
    conn = sqlite3.connect(str(home / "labdeck.db"))
    cursor, seen, polls = 0, 0, 0
    target = steps * 3
    while seen < target:
        rows = conn.execute(
            "SELECT m.id FROM metrics m JOIN metric_keys k ON k.id=m.key_id"
            " WHERE k.run_id=? AND m.id>? ORDER BY m.id", (run_id, cursor)).fetchall()
        polls += 1
        if rows:
            cursor = rows[-1][0]
            seen += len(rows)
        else:
            time.sleep(0.02)
    t_end = time.time()
    proc.wait()
    return target / (t_end - t_start), t_end - t_start, polls


def one_commit_per_point(home: Path, n: int) -> float:
    conn = sqlite3.connect(str(home / "baseline.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, key TEXT, step INTEGER, value REAL,"
                 " wall REAL)")
    conn.execute("CREATE INDEX mk ON m(key, step)")
    t0 = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO m(key, step, value, wall) VALUES (?,?,?,?)",
                     ("train/loss", i, 1.0 / (i + 1), time.time()))
        conn.execute("COMMIT")
    return n / (time.perf_counter() - t0)


def work(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    x = 0
    while time.perf_counter() < end:
        x += 1


def overhead(home: Path, steps: int) -> tuple[float, float, float]:
    os.environ["LABDECK_HOME"] = str(home)
    os.environ.pop("LABDECK_RUN_ID", None)
    from engine import tracking

    def loop(log: bool) -> float:
        run = tracking.start_run("overhead") if log else None
        t0 = time.perf_counter()
        for i in range(steps):
            work(1.0)
            if run is not None:
                run.log({"train/loss": 1.0 / (i + 1), "train/acc": 0.5, "lr": 3e-4}, step=i)
        dt = time.perf_counter() - t0
        if run is not None:
            run.finish()
        return dt

    loop(False)
    bare, logged = [], []
    for _ in range(5):  # interleaved, so machine noise hits both alike; best of each
        bare.append(loop(False))
        logged.append(loop(True))
    base, with_log = min(bare), min(logged)
    return base, with_log, (with_log - base) / base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=600_000)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    points = 60_000 if args.quick else args.points
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        rate, wall, polls = ingest(home, points // 3)
        base_n = 2_000 if args.quick else 10_000
        base = one_commit_per_point(home, base_n)
        b, logged, ovh = overhead(home, 300 if args.quick else 2000)
    print(f"ingest via tracking API, reader polling:  {rate:12,.0f} points/s "
          f"({points:,} points in {wall:.2f} s, {polls} incremental polls)")
    print(f"baseline one commit per point:           {base:12,.0f} points/s ({base_n:,} points)")
    print(f"ratio ours / baseline:                   {rate / base:12.1f}x")
    print(f"training loop 1 ms/step: {b:.3f} s bare, {logged:.3f} s with 1 log call/step "
          f"(3 metrics) -> overhead {ovh * 100:.2f} %")
    ok_rate = rate >= 200_000
    ok_ovh = ovh <= 0.01
    print(f"targets: >= 200k points/s {'met' if ok_rate else 'MISSED'}; "
          f"<= 1 % overhead {'met' if ok_ovh else 'MISSED'}")


if __name__ == "__main__":
    main()
