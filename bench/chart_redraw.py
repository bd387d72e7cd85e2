"""Redraw time of a 1M-point metric: downsampled read (what the TUI does) vs raw points.

Seeds one run with 1,000,000 points of one key through engine.metric_writer.MetricWriter in a temp
home, then times, in the same process: (a) the TUI path: ``engine.read_metric(max_points=...)``
plus a plotext build at 120x30; (b) the baseline: read every point and plot them all.

    .venv/bin/python bench/chart_redraw.py [--points 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual_plotext.plot import Plot  # noqa: E402

from engine.api import Engine  # noqa: E402
from engine.data.experiments import get_or_create as get_or_create_experiment  # noqa: E402
from engine.data.runs import insert_run  # noqa: E402
from engine.metric_writer import MetricWriter  # noqa: E402
from engine.schema import connect_sync, write_tx  # noqa: E402


def seed(home: Path, n: int) -> int:
    conn = connect_sync(home / "labdeck.db")
    exp = get_or_create_experiment(conn, "bench", "script", {})
    with write_tx(conn):
        run_id, _ = insert_run(conn, exp, {}, "completed", "bench")
    writer = MetricWriter(conn, run_id, max_buffer=200_000)
    batch = 100_000
    for start in range(0, n, batch):
        writer.log_many(("train/loss", s, 2 * math.exp(-s / n * 5) + 0.1 * math.sin(s / 97))
                        for s in range(start, min(n, start + batch)))
        writer.flush()
    writer.close()
    conn.close()
    return run_id


def draw(xs: list[float], ys: list[float], width: int = 120, height: int = 30) -> str:
    plot = Plot()
    plt = plot  # the same wrapper PlotextPlot uses
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.plot(xs, ys, marker="braille")
    return plt.build()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--max-points", type=int, default=400)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        t = time.perf_counter()
        async with Engine.session(home):
            pass  # creates the schema
        run_id = await asyncio.to_thread(seed, home, args.points)
        print(f"seeded {args.points:,} points in {time.perf_counter() - t:.1f} s")
        async with Engine.session(home) as engine:
            down, raw = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                pts = await engine.read_metric(run_id, "train/loss", max_points=args.max_points)
                draw(pts.x, pts.y)
                down.append(time.perf_counter() - t)
            for _ in range(max(1, args.repeat - 1)):
                t = time.perf_counter()
                rows = await engine.all_metrics(run_id, "train/loss")
                draw([float(r[0]) for r in rows], [r[1] for r in rows])
                raw.append(time.perf_counter() - t)
        d, r = statistics.median(down[1:] or down), statistics.median(raw)
        print(f"downsampled, first draw (series loaded into the cache): {down[0] * 1000:.0f} ms")
        print(f"downsampled, redraw (read_metric max_points={args.max_points}, {len(pts.x)} drawn):"
              f" {d * 1000:.0f} ms")
        print(f"baseline raw ({len(rows):,} points read and drawn): {r * 1000:.0f} ms")
        print(f"ratio raw / downsampled: {r / d:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
