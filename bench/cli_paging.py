"""`labdeck run list` over 100,000 runs: one page (`--limit 50`, first and last) and the whole
list streamed as JSON (`--json`, `--jsonl`) to /dev/null, each a fresh `labdeck` process, against the baseline of
raw sqlite3 reading the same rows (each run with its experiment's name, newest first) in a
fresh `python -c` process, measured in the same run. Then the same in one process (the
engine's keyset iterator against a raw cursor) and the memory each way (the whole list built
at once, as `list_runs` does, against the iterator).

The home is seeded cheaply, straight through the data layer (engine/data), not through jobs:
10 experiments; 90,000 finished tracking runs (insert_run + finish_run, 5,000 per
transaction) and 10,000 queued training runs with their jobs (queue_training, one
transaction each).

    .venv/bin/python bench/cli_paging.py [--runs 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.api import Engine  # noqa: E402
from engine.data import experiments, jobs, runs  # noqa: E402
from engine.schema import connect_sync, write_tx  # noqa: E402

EXPERIMENTS = 10
BATCH = 5_000
# the baseline's rows: each run with its experiment's name, newest first (what a list shows
# of a run, less its training job's progress and a running run's last output)
RAW_SQL = ("SELECT r.*, e.name FROM runs r JOIN experiments e ON e.id = r.experiment_id"
           " ORDER BY r.id DESC")


def seed(home: Path, n: int) -> None:
    conn = connect_sync(home / "labdeck.db")
    try:
        exps = [experiments.get_or_create(conn, f"bench-{k}", "script", {"command": "true"})
                for k in range(EXPERIMENTS)]
        tracked = n * 9 // 10
        for start in range(0, tracked, BATCH):
            with write_tx(conn):
                for i in range(start, min(tracked, start + BATCH)):
                    config = {"lr": 10 ** -(1 + i % 4), "batch": 32, "seed": i}
                    run_id, _ = runs.insert_run(conn, exps[i % EXPERIMENTS], config, "running",
                                                "tracking")
                    runs.finish_run(conn, run_id, "completed", tx=False)
        for i in range(tracked, n):
            k = i % EXPERIMENTS
            jobs.queue_training(conn, exps[k], f"bench-{k}", {"lr": 0.01, "seed": i}, {})
    finally:
        conn.close()


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one process, its stdout to /dev/null."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
    return wall, usage.ru_maxrss / 1024


def median_of(repeat: int, cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    walls, rss = zip(*(timed(cmd, env) for _ in range(repeat)), strict=True)
    return statistics.median(walls), max(rss)


def raw_cmd(db: Path, sql: str) -> list[str]:
    code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "n = 0\nfor row in c.execute(sys.argv[2]): n += 1\nprint(n)")
    return [sys.executable, "-c", code, str(db), sql]


async def in_process(home: Path, n: int) -> list[str]:
    out = []
    async with Engine.session(home) as engine:
        t = time.perf_counter()
        count = 0
        async for _run in engine.iter_runs():
            count += 1
        ours = time.perf_counter() - t
        conn = connect_sync(home / "labdeck.db", migrate=False)
        t = time.perf_counter()
        raw = sum(1 for _ in conn.execute(RAW_SQL))
        base = time.perf_counter() - t
        conn.close()
        assert count == raw == n, (count, raw, n)
        out.append(f"in one process, {n:,} runs: engine.iter_runs {ours:.2f} s, raw sqlite3"
                   f" {base:.2f} s: ratio {ours / base:.1f}x")
        tracemalloc.start()
        whole = await engine.list_runs()
        held = tracemalloc.get_traced_memory()[1]
        del whole
        tracemalloc.stop()
        tracemalloc.start()
        async for _run in engine.iter_runs():
            pass
        streamed = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out.append(f"peak Python memory: the whole list at once (list_runs) {held / 2**20:.0f} MB,"
                   f" iter_runs (500 a page) {streamed / 2**20:.1f} MB:"
                   f" ratio {held / streamed:.0f}x")
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = args.runs
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        async with Engine.session(home):
            pass  # the home and its schema
        t = time.perf_counter()
        await asyncio.to_thread(seed, home, n)
        print(f"seeded {n:,} runs in {EXPERIMENTS} experiments through engine/data in"
              f" {time.perf_counter() - t:.1f} s ({n * 9 // 10:,} finished tracking runs,"
              f" {BATCH:,} per transaction; {n - n * 9 // 10:,} queued training runs with"
              " their jobs)")
        env = dict(os.environ, LABDECK_HOME=str(home), PYTHONPATH=str(ROOT))
        db = home / "labdeck.db"
        labdeck = [sys.executable, "-m", "cli", "run", "list"]
        cases = [
            ("run list --limit 50", labdeck + ["--limit", "50"],
             raw_cmd(db, RAW_SQL + " LIMIT 50"), args.repeat),
            (f"run list --offset {n - 50} --limit 50", labdeck + ["--offset", str(n - 50),
                                                                   "--limit", "50"],
             raw_cmd(db, RAW_SQL + f" LIMIT 50 OFFSET {n - 50}"), args.repeat),
            (f"run list --json ({n:,} runs) > /dev/null", labdeck + ["--json"],
             raw_cmd(db, RAW_SQL), max(1, args.repeat // 2)),
            (f"run list --jsonl ({n:,} runs) > /dev/null", labdeck + ["--jsonl"],
             raw_cmd(db, RAW_SQL), max(1, args.repeat // 2)),
        ]
        print(f"load average {os.getloadavg()[0]:.2f}; median of {args.repeat} fresh processes"
              f" ({max(1, args.repeat // 2)} for whole lists); baseline: python -c, raw"
              " sqlite3 reading the same rows")
        start, _ = median_of(args.repeat, [sys.executable, "-m", "cli", "--help"], env)
        print(f"{'':44} {'labdeck':>9} {'baseline':>9} {'ratio':>7} {'labdeck RSS':>12}")
        for name, ours_cmd, raw, repeat in cases:
            ours, rss = median_of(repeat, ours_cmd, env)
            base, _ = median_of(repeat, raw, env)
            print(f"{name:44} {ours * 1000:7.0f}ms {base * 1000:7.0f}ms {ours / base:6.1f}x"
                  f" {rss:9.0f} MB")
        print(f"(labdeck's own start, `labdeck --help`: {start * 1000:.0f} ms)")
        for line in await in_process(home, n):
            print(line)


if __name__ == "__main__":
    asyncio.run(main())
