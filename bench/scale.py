"""labdeck at scale (issue 14): the TUI and the metric chart on a big home, each figure against
the same measurement on the smallest home that has everything measured, seeded in the same run.

The big home (``--scale 1``): 10,000 experiments; 100,000 runs, 10,000 of them in one
experiment; one run with a 10M-point metric; a finished 1,000-trial Optuna study. The
baseline home: 5 experiments, 14 runs (2 in "the big experiment"), a 10-point metric, a
10-trial study. ``--scale F`` multiplies every count of the big home (not below the
baseline's), to try the bench quickly.

Seeding is cheap (no training) and goes through labdeck's own code: the public API for the
experiments that matter (``Engine.create_experiment``), for the study (``create_study``, and
``get_study(refresh=True)``, which mirrors the tuner's trials into labdeck's tables and, the
study being done, stores its parameter importance as a study's last worker does) and for the
10M-point run (``engine.tracking.start_run``: its run, its first 10,000 points, its end).
The bulk goes straight through the data layer (engine/data), as bench/cli_paging.py does:
the other experiments (``experiments.create``), the runs (``insert_run`` + ``finish_run``,
5,000 a transaction), their points (``metrics.append``, the metric writer's own
transaction: each run of the big experiment logs train/loss and val/loss for 3 epochs, the
compared runs 50 steps, the long run the rest of its points 200,000 a batch). The study's
trials are put in its Optuna storage with Optuna's API (``Study.add_trials`` of finished
``FrozenTrial``s with params, values, intermediate values and the worker attributes labdeck
stores, each with its labdeck run; the study's slot tokens used up as workers use them).

Measured, each TUI figure in a fresh process (``python bench/scale.py probe ...``, a headless
``LabdeckApp.run_test`` at 120x40; medians of ``--repeat``):

- first paint: from before the first import to the Experiments table loaded (the screen's
  ``loaded``, bench/first_paint.py's measure), and on to painted: its DataTable measured the
  rows (it does so when idle, after they were added) and a frame drew them (the target is
  judged on painted);
- filter as you type: ``/`` then 10 characters, each key event from being sent until the
  frame that paints the refilled table (the filter has no debounce: the screen refilters
  the list and refills the table on every ``Input.Changed``), and, apart, until the table
  was refilled;
- sort: ``o`` through every sort column, the same way;
- opening the big experiment (its runs), the study (trials table, chart, importance), the
  comparison of the compared runs, and the long run's detail (its charts drawn): from the
  screen pushed until it says ``loaded``, none of its workers runs and it was painted;
- memory: the process's RSS once the Experiments table is loaded, and after a tour through
  the screens above (the target is judged on the latter); idle CPU: the process's CPU time
  over ``--idle-s`` seconds on the Experiments screen (its 0.5 s data-version poll running;
  headless, so without a terminal's output) divided by the wall time.

The chart of the long metric is timed in this process as bench/chart_redraw.py times it
(its functions: ``read_metric(max_points=2 x 120)`` plus the plotext build), the first draw
in a fresh Engine session, the redraw in the same session.

    .venv/bin/python bench/scale.py [--scale 1.0] [--home PATH] [--repeat 3] [--idle-s 5]

``--home PATH`` keeps the big home: seeded when PATH is empty or missing, reused when it was
seeded at the same scale (``scale-bench.json`` in it says so); the baseline home is always
made afresh. Seeding the full scale takes minutes: progress is printed.
"""

# ruff: noqa: E402 - the imports come after T0, a probe's first paint counting from there

from __future__ import annotations

import time

T0 = time.perf_counter()  # a probe's first paint counts from here: before any other import

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from scale_seed import BIG_EXP, MARKER, STUDY, Counts, big_home, say, seed

SIZE = (120, 40)
TYPED = "resnet-001"  # the filter typed, a key at a time

# ------------------------------------------------------------------ TUI probes (subprocess)


async def until(cond, what: str, timeout: float = 600.0) -> None:
    """Poll ``cond`` every millisecond (the app runs on this loop meanwhile)."""
    end = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        await asyncio.sleep(0.001)


def settled(app: Any, cls: type) -> bool:
    """The screen on top is a ``cls``, loaded, and none of its workers still runs."""
    screen = app.screen
    return (isinstance(screen, cls) and getattr(screen, "loaded", False)
            and not any(w.node is screen and not w.is_finished for w in app.workers))


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def painted(screen: Any) -> None:
    """Until every table of ``screen`` measured its new rows (a DataTable does it when idle,
    after the rows were added: for 10,000 rows that is no small part; the flag is Textual
    8.2.8's, pinned) and a frame painted the screen after that."""
    from textual.widgets import DataTable

    tables = list(screen.query(DataTable))
    await until(lambda: not any(t._require_update_dimensions for t in tables),
                "the tables measured")
    await screen.wait_for_refresh()


async def keys_timed(app: Any, screen: Any,
                     keys: list[tuple[str, str | None]]) -> list[tuple[float, float]]:
    """(seconds until the table was rebuilt, until it was painted) from each key event sent
    to the Experiments screen."""
    from textual import events

    rebuilt: list[float] = []
    rebuild = screen._render_table  # the table's one refill: timed where it ends

    def timed_rebuild() -> None:
        rebuild()
        rebuilt.append(time.perf_counter())

    screen._render_table = timed_rebuild
    out = []
    try:
        for key, char in keys:
            before = len(rebuilt)
            event = events.Key(key, char)
            event.set_sender(app)
            t = time.perf_counter()
            app.post_message(event)
            await until(lambda b=before: len(rebuilt) > b, f"the table after {key!r}")
            await painted(screen)
            out.append((rebuilt[-1] - t, time.perf_counter() - t))
            await asyncio.sleep(0.01)  # a typist's pace
    finally:
        screen._render_table = rebuild
    return out


async def probe(what: str, home: str, arg: str) -> dict[str, Any]:
    from tui.app import LabdeckApp

    app = LabdeckApp(home=home)
    out: dict[str, Any] = {}
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.ready and getattr(app.screen, "loaded", False), "first paint")
        out["loaded_s"] = time.perf_counter() - T0
        screen = app.screen
        await painted(screen)
        out["paint_s"] = time.perf_counter() - T0
        out["heavy"] = "torch" in sys.modules or "optuna" in sys.modules
        if what != "paint":
            # the first data-version poll reloads the list once: let it pass before timing
            await pilot.pause(1.0)
            await until(lambda: settled(app, type(screen)), "the first poll's reload")
            await painted(screen)
        if what == "paint":
            pass
        elif what == "sort":
            from tui.screens.experiments import SORT_KEYS

            out["times"] = await keys_timed(app, screen, [("o", "o")] * len(SORT_KEYS))
        elif what == "filter":
            await pilot.press("slash")
            await pilot.pause()
            names = {"-": "minus"}
            out["times"] = await keys_timed(app, screen, [(names.get(ch, ch), ch)
                                                          for ch in TYPED])
            out["shown"] = screen.query_one("DataTable").row_count
        elif what == "resident":
            out["rss_mb"] = rss_mb()
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.sleep(float(arg))
            out["idle_cpu"] = (time.process_time() - cpu) / (time.perf_counter() - wall)
            info = json.loads(Path(home, MARKER).read_text())
            for kind, target in (("experiment", BIG_EXP), ("study", STUDY),
                                 ("run", str(info["long_run"]))):
                await open_screen(app, kind, target)
                await app.pop_screen()
                await pilot.pause()
            await open_screen(app, "compare", json.dumps(info["compare"]))
            await pilot.pause()
            out["tour_rss_mb"], out["hwm_mb"] = rss_mb(), rss_mb("VmHWM")
        else:
            out["open_s"] = await open_screen(app, what, arg)
    return out


async def open_screen(app: Any, kind: str, target: str) -> float:
    """Seconds from a screen opened until it settled and was painted."""
    from tui.screens.compare import CompareScreen
    from tui.screens.experiment_detail import ExperimentDetailScreen
    from tui.screens.run_detail import RunDetailScreen
    from tui.screens.study_detail import StudyDetailScreen

    t = time.perf_counter()
    if kind == "compare":
        cls: type = CompareScreen
        await app.open_compare(json.loads(target))
    else:
        cls = {"experiment": ExperimentDetailScreen, "study": StudyDetailScreen,
               "run": RunDetailScreen}[kind]
        app.push_screen(cls(int(target) if kind == "run" else target))
    await until(lambda: settled(app, cls), f"the {kind} screen")
    await painted(app.screen)
    return time.perf_counter() - t


def run_probe(what: str, home: Path, arg: str = "") -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "probe", what,
                          str(home), arg], capture_output=True, text=True, cwd=ROOT,
                         timeout=1800)
    results = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not results:
        raise SystemExit(f"probe {what} on {home} failed ({out.returncode}):\n"
                         f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return json.loads(results[-1].removeprefix("RESULT "))


# ------------------------------------------------------------------ measuring


async def chart_times(home: Path, run_id: int, repeat: int) -> tuple[float, float]:
    """(first draw, redraw) medians, as bench/chart_redraw.py times them."""
    from chart_redraw import chart

    from engine.api import Engine

    width = SIZE[0]
    firsts, redraws = [], []
    for _ in range(repeat):
        async with Engine.session(home) as engine:  # nothing cached
            firsts.append((await chart(engine, run_id, width))[0])
            for _ in range(3):
                redraws.append((await chart(engine, run_id, width))[0])
    return statistics.median(firsts), statistics.median(redraws)


def measure(home: Path, info: dict[str, Any], repeat: int, idle_s: float,
            label: str) -> dict[str, Any]:
    t = time.perf_counter()
    say(f"measuring the {label} home ...")
    run_probe("paint", home)  # warm the OS file cache and the .pyc files
    paints = [run_probe("paint", home) for _ in range(repeat)]
    m: dict[str, Any] = {"loaded": statistics.median(p["loaded_s"] for p in paints),
                         "paint": statistics.median(p["paint_s"] for p in paints),
                         "heavy": any(p["heavy"] for p in paints)}
    sort = [shown for _, shown in run_probe("sort", home)["times"]]
    m["sort"], m["sort_max"] = statistics.median(sort), max(sort)
    typed = run_probe("filter", home)["times"]
    m["filter"] = statistics.median(shown for _, shown in typed)
    m["filter_max"] = max(shown for _, shown in typed)
    m["filter_rebuilt_max"] = max(rebuilt for rebuilt, _ in typed)
    for kind, target in (("experiment", BIG_EXP), ("study", STUDY),
                         ("compare", json.dumps(info["compare"])),
                         ("run", str(info["long_run"]))):
        m[kind] = statistics.median(run_probe(kind, home, target)["open_s"]
                                    for _ in range(repeat))
    resident = run_probe("resident", home, str(idle_s))
    m.update(rss=resident["rss_mb"], tour_rss=resident["tour_rss_mb"],
             hwm=resident["hwm_mb"], idle=resident["idle_cpu"] * 100)
    m["chart_first"], m["chart_redraw"] = asyncio.run(
        chart_times(home, info["long_run"], repeat))
    say(f"  done in {time.perf_counter() - t:.0f} s")
    return m


def report(big: dict[str, Any], base: dict[str, Any], c: Counts, repeat: int,
           idle_s: float) -> None:
    def ms(v: float) -> str:
        return f"{v * 1000:8.1f} ms"

    def mb(v: float) -> str:
        return f"{v:8.0f} MB"

    def pct(v: float) -> str:
        return f"{v:9.2f} %"

    rows = [
        ("TUI start to Experiments loaded", "loaded", ms, None),
        ("TUI first paint (Experiments painted)", "paint", ms,
         ("<= 1.5x baseline", big["paint"] <= 1.5 * base["paint"])),
        (f"filter keystroke, median of {len(TYPED)}", "filter", ms, None),
        (f"filter keystroke, slowest of {len(TYPED)}", "filter_max", ms,
         ("< 50 ms", big["filter_max"] < 0.050)),
        ("  of which until the table was refilled", "filter_rebuilt_max", ms, None),
        ("sort (o), median over the columns", "sort", ms, None),
        ("sort (o), slowest column", "sort_max", ms, None),
        (f"open {BIG_EXP} ({c.big_runs:,} runs)", "experiment", ms,
         ("< 200 ms", big["experiment"] < 0.200)),
        (f"open study ({c.trials:,} trials)", "study", ms, ("< 200 ms", big["study"] < 0.200)),
        (f"open compare ({c.compared:,} runs)", "compare", ms,
         ("< 200 ms", big["compare"] < 0.200)),
        (f"open the long run ({c.points:,} points)", "run", ms, None),
        ("chart first draw (fresh session)", "chart_first", ms,
         ("< 150 ms", big["chart_first"] < 0.150)),
        ("chart redraw", "chart_redraw", ms, None),
        ("TUI RSS, Experiments loaded", "rss", mb, None),
        ("TUI RSS after the screens above", "tour_rss", mb,
         ("< 300 MB", big["tour_rss"] < 300)),
        ("TUI peak RSS (VmHWM)", "hwm", mb, None),
        (f"TUI idle CPU over {idle_s:g} s", "idle", pct, ("< 1 %", big["idle"] < 1.0)),
    ]
    say("")
    say(f"big home: {c.describe()}")
    say(f"baseline home: {Counts.baseline().describe()}")
    say(f"load average {os.getloadavg()[0]:.2f}; TUI figures from fresh processes at"
        f" {SIZE[0]}x{SIZE[1]}, medians of {repeat}; torch/optuna imported at start-up:"
        f" {big['heavy'] or base['heavy']}")
    say(f"filter: typed {TYPED!r} after /; no debounce (every keystroke refilters the list"
        " and refills the table); a keystroke counts until the frame that paints it")
    say(f"{'':42} {'big home':>11} {'baseline':>11} {'ratio':>8}  target")
    for name, key, fmt, target in rows:
        ratio = big[key] / base[key] if base[key] else float("nan")
        verdict = "" if target is None else f"{target[0]}: {'met' if target[1] else 'MISSED'}"
        say(f"{name:42} {fmt(big[key]):>11} {fmt(base[key]):>11} {ratio:7.2f}x  {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every count")
    ap.add_argument("--home", default=None, help="keep the big home here (seeded if empty)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--idle-s", type=float, default=5.0)
    args = ap.parse_args()
    c = Counts.scaled(args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.home) if args.home else Path(tmp) / "big"
        reused = (path / MARKER).exists()
        info = asyncio.run(big_home(path, c))
        base_info = asyncio.run(seed(Path(tmp) / "baseline", Counts.baseline()))
        base = measure(Path(tmp) / "baseline", base_info, args.repeat, args.idle_s,
                       "baseline")
        big = measure(path, info, args.repeat, args.idle_s, "big")
    report(big, base, c, args.repeat, args.idle_s)
    est = info["seed_s"] / args.scale if args.scale < 1 else info["seed_s"]
    say(f"seeding the big home took {info['seed_s']:.1f} s{' (reused)' if reused else ''}"
        + (f" (at --scale 1, at most about {est / 60:.0f} min: it grows linearly, less its"
           " fixed start-up costs)"
           if args.scale < 1 else ""))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "probe":
        result = asyncio.run(probe(sys.argv[2], sys.argv[3], sys.argv[4]))
        print("RESULT " + json.dumps(result), flush=True)
    else:
        main()
