"""Chart of a 10M-point metric: first draw, redraw and live redraw from the metric rollup.

Seeds one run with ``--points`` points of one key in a temp home through the data layer
(``engine.data.metrics.append``, the metric writer's own transaction: points and rollup
buckets, 200,000 points a batch), then times, in the same process, what the run detail
screen does for a chart ``--width`` columns wide (``read_metric(max_points=2 x width)`` plus a
plotext build):

- first draw: a fresh Engine session, nothing cached (the first of them is the coldest;
  numpy is imported beforehand, as the TUI imports it at start-up);
- redraw: the same chart again, no new points (one cursor probe);
- live redraw: 1,000 new points stored by a MetricWriter before each redraw;
- zoomed first draw: the last 1 % of the steps.

Baselines in the same run: reading one screen's worth of raw points (2 x width rows by
cursor, what the cheapest possible chart reads) and drawing them; and reading the whole
series (what the first draw cost before the rollup: every point into the engine's cache;
``--no-whole`` skips it).

    .venv/bin/python bench/chart_redraw.py [--points 10000000] [--width 120] [--repeat 5]
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
from engine.data import metrics as data  # noqa: E402
from engine.data.experiments import get_or_create as get_or_create_experiment  # noqa: E402
from engine.data.runs import insert_run  # noqa: E402
from engine.metric_writer import MetricWriter  # noqa: E402
from engine.schema import connect_sync, write_tx  # noqa: E402
from engine.series import SeriesViews  # noqa: E402, F401 - numpy, as the TUI has it at start-up

KEY = "train/loss"


def curve(s: int, n: int) -> float:
    return 2 * math.exp(-s / n * 5) + 0.1 * math.sin(s / 97)


def seed(home: Path, n: int) -> int:
    conn = connect_sync(home / "labdeck.db")
    exp = get_or_create_experiment(conn, "bench", "script", {})
    with write_tx(conn):
        run_id, _ = insert_run(conn, exp, {}, "running", "bench")
    known: dict[str, int] = {}
    heads: dict = {}
    wall = time.time() - n / 1000
    batch = 200_000
    for start in range(0, n, batch):
        buf = [({KEY: curve(s, n)}, s, wall + s / 1000, None)
               for s in range(start, min(n, start + batch))]
        _, new_keys, new_heads = data.append(conn, run_id, known, buf, heads)
        known.update(new_keys)
        heads.update(new_heads)
    conn.close()
    return run_id


def draw(xs: list[float], ys: list[float], width: int, height: int = 30) -> str:
    plt = Plot()  # the same wrapper PlotextPlot uses
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.plot(xs, ys, marker="braille")
    return plt.build()


async def chart(engine: Engine, run_id: int, width: int, **kw) -> tuple[float, float, int]:
    """(seconds for the read and the draw, of which the read, points drawn)."""
    t = time.perf_counter()
    pts = await engine.read_metric(run_id, KEY, max_points=2 * width, **kw)
    read = time.perf_counter() - t
    draw(pts.x, pts.y, width)
    return time.perf_counter() - t, read, len(pts.x)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def line(what: str, times: list[tuple[float, float]]) -> str:
    total = statistics.median(t for t, _ in times)
    read = statistics.median(r for _, r in times)
    return f"{what:42s}{ms(total)}  (read {ms(read).strip()})"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--width", type=int, default=120)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-whole", action="store_true")
    args = ap.parse_args()
    n, width, repeat = args.points, args.width, args.repeat
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        t = time.perf_counter()
        run_id = await asyncio.to_thread(seed, home, n)
        size = (home / "labdeck.db").stat().st_size
        print(f"seeded {n:,} points through engine.data.metrics.append in"
              f" {time.perf_counter() - t:.1f} s ({size / 2**20:,.0f} MiB)")

        firsts, zooms = [], []
        for _ in range(repeat):  # each a fresh session: nothing cached
            async with Engine.session(home) as engine:
                total, read, drawn = await chart(engine, run_id, width)
                firsts.append((total, read))
            async with Engine.session(home) as engine:
                zooms.append((await chart(engine, run_id, width, last_n_steps=n // 100))[:2])

        writer = MetricWriter(connect_sync(home / "labdeck.db"), run_id, flush_every_s=3600)
        redraws, lives = [], []
        async with Engine.session(home) as engine:
            await chart(engine, run_id, width)
            for _ in range(repeat):
                redraws.append((await chart(engine, run_id, width))[:2])
            step = n
            for _ in range(repeat):
                writer.log_many((KEY, s, curve(s, n)) for s in range(step, step + 1000))
                writer.flush()
                step += 1000
                lives.append((await chart(engine, run_id, width))[:2])
            kid = await engine.store.run(data.key_id, run_id, KEY)
            screens = []
            for _ in range(repeat):
                t = time.perf_counter()
                rows = await engine.store.run(data.key_points_after, kid, 0, 2 * width)
                read = time.perf_counter() - t
                draw([float(r[1]) for r in rows], [r[2] for r in rows], width)
                screens.append((time.perf_counter() - t, read))
            whole = None
            if not args.no_whole:
                t = time.perf_counter()
                after, read = 0, 0
                while True:
                    rows = await engine.store.run(data.key_points_after, kid, after, 500_000)
                    read += len(rows)
                    if len(rows) < 500_000:
                        break
                    after = rows[-1][0]
                whole = time.perf_counter() - t
        writer.close()

    first = statistics.median(t for t, _ in firsts)
    redraw = statistics.median(t for t, _ in redraws)
    screen = statistics.median(t for t, _ in screens)
    print(f"chart {width} columns, max_points={2 * width} ({drawn} drawn); read = read_metric,"
          f" the rest is plotext; medians of {repeat}")
    print(line("first draw (fresh session, rollup read):", firsts)
          + f"  coldest {ms(firsts[0][0]).strip()}")
    print(line("redraw, no new points:", redraws))
    print(line("live redraw, 1,000 new points each:", lives))
    print(line("zoomed first draw (last 1 % of steps):", zooms))
    print(line(f"baseline: one screen of raw points ({2 * width} rows):", screens))
    first_read = statistics.median(r for _, r in firsts)
    redraw_read = statistics.median(r for _, r in redraws)
    screen_read = statistics.median(r for _, r in screens)
    print(f"ratio first draw / one screen of raw points: {first / screen:6.2f}x"
          f" (read only {first_read / screen_read:.2f}x)")
    print(f"ratio redraw / one screen of raw points:     {redraw / screen:6.2f}x"
          f" (read only {redraw_read / screen_read:.2f}x)")
    if whole is not None:
        print(f"baseline: the whole series read ({read:,} points, what a first draw read"
              f" before the rollup): {whole:.2f} s -> {whole / first:,.0f}x the first draw")
    print(f"target: first draw < 150 ms {'met' if first < 0.150 else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())
