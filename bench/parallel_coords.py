"""Draw time of the study detail's parallel coordinates: 1,000 trials x 6 parameters against
the same draw with 10 trials (the baseline), at the sizes the view gets on an 80x24 terminal
(its tab: 80x18 cells) and on a 120x40 one (120x34).

Times, in this process, ``ParallelCoords.draw`` (every braille dot, the shading, the best and
highlighted lines and markers, the strips Textual paints) from scratch ("first draw": new
data or a new size) and after a key moves the highlighted trial ("key": the lines' raster is
kept, only the two drawn-over lines and the markers are redone). Optionally (``--plotext``)
the same 1,000 polylines through plotext, one line per trial, for comparison.

    .venv/bin/python bench/parallel_coords.py [--repeat 15] [--plotext]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.widgets.parallel_coords import Axis, ParallelCoords, TrialLine  # noqa: E402

AXES = [Axis("lr", "float", 1e-5, 1e-1, log=True), Axis("wd", "float", 1e-6, 1e-2, log=True),
        Axis("dropout", "float", 0.0, 0.5), Axis("layers", "int", 1, 12),
        Axis("opt", "categorical", choices=("adam", "adamw", "sgd", "rmsprop")),
        Axis("batch", "categorical", choices=(16, 32, 64, 128)), Axis("val/loss", note="↓")]


def trials(n: int, seed: int = 0) -> list[TrialLine]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        lr, wd = 10 ** rng.uniform(-5, -1), 10 ** rng.uniform(-6, -2)
        dropout, layers = rng.uniform(0, 0.5), rng.randint(1, 12)
        opt, batch = rng.choice(AXES[4].choices), rng.choice(AXES[5].choices)
        loss = (0.1 + 0.2 * (math.log10(lr) + 3) ** 2 + abs(dropout - 0.2) + 0.01 * layers
                + (0.1 if opt == "sgd" else 0.0) + 0.05 * rng.random())
        out.append(TrialLine(i, (lr, wd, dropout, layers, opt, batch, loss)))
    return sorted(out, key=lambda t: t.values[-1])  # best first, as the screen hands them


def timed(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(n: int, width: int, height: int, repeat: int) -> tuple[float, float]:
    lines = trials(n)
    view = ParallelCoords()
    view.show(AXES, lines, lines[0].number)

    def first_draw() -> None:
        view._raster = None  # as after new data or a resize
        view.draw(width, height)

    def key() -> None:
        view.step_trial(1)
        view.draw(width, height)

    return timed(first_draw, repeat), timed(key, repeat)


def plotext_draw(n: int, width: int, height: int) -> float:
    """The same polylines (the widget's own axis positions) through plotext, one plot call
    per trial."""
    from textual_plotext.plot import Plot

    view = ParallelCoords()
    view.show(AXES, trials(n), None)
    xs = list(range(len(AXES)))
    t0 = time.perf_counter()
    plt = Plot()
    plt.clear_figure()
    plt.plotsize(width, height)
    for row in view.pos:
        plt.plot(xs, [float(y) for y in row], marker="braille")
    plt.build()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--plotext", action="store_true",
                    help="also time 1,000 polylines drawn through plotext (slow)")
    args = ap.parse_args()
    print(f"parallel coordinates, {len(AXES) - 1} parameters + objective, "
          f"median of {args.repeat}")
    for width, height, where in ((80, 18, "80x24 tab"), (120, 34, "120x40")):
        small_first, small_key = measure(10, width, height, args.repeat)
        big_first, big_key = measure(1000, width, height, args.repeat)
        print(f"{where} ({width}x{height} cells):")
        print(f"  first draw  10 trials {small_first * 1e3:6.1f} ms   1,000 trials "
              f"{big_first * 1e3:6.1f} ms   ratio {big_first / small_first:4.1f}x")
        print(f"  key (↑/↓)   10 trials {small_key * 1e3:6.1f} ms   1,000 trials "
              f"{big_key * 1e3:6.1f} ms   ratio {big_key / small_key:4.1f}x")
    if args.plotext:
        t = plotext_draw(1000, 120, 34)
        print(f"plotext, the same 1,000 polylines at 120x34: {t * 1e3:.0f} ms (one draw)")


if __name__ == "__main__":
    main()
