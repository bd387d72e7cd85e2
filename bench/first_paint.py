"""Time to first paint of the labdeck TUI (the experiments table loaded), in fresh processes.

Baseline in the same run: a bare Textual app with one Static, measured the same way.
Each sample is a new interpreter, timed from before the first import to the first screen.

    .venv/bin/python bench/first_paint.py [--repeat 5] [--home PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LABDECK = r"""
import time; t0 = time.perf_counter()
import asyncio, sys
from tui.app import LabdeckApp
async def main():
    app = LabdeckApp(home=sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        while not (app.ready and getattr(app.screen, "loaded", False)):
            await pilot.pause(0.005)
        print(time.perf_counter() - t0, "torch" in sys.modules or "optuna" in sys.modules)
asyncio.run(main())
"""

BARE = r"""
import time; t0 = time.perf_counter()
import asyncio
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("hello")
async def main():
    app = Bare()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0)
        print(time.perf_counter() - t0, False)
asyncio.run(main())
"""


def sample(code: str, home: str) -> tuple[float, bool]:
    out = subprocess.run([sys.executable, "-c", code, home], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    t, heavy = out.stdout.split()[-2:]
    return float(t), heavy == "True"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--home", default=None, help="an existing home (default: a seeded temp one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home
        if home is None:
            sys.path.insert(0, str(ROOT))
            from engine.api import Engine

            async def seed() -> None:
                async with Engine.session(tmp) as engine:
                    for i in range(20):
                        await engine.create_experiment(
                            f"exp-{i}", "script", {"command": "python t.py --lr {lr}", "lr": i})

            asyncio.run(seed())
            home = tmp
        sample(LABDECK, home)  # warm the OS file cache and .pyc files
        ours = [sample(LABDECK, home) for _ in range(args.repeat)]
        bare = [sample(BARE, home) for _ in range(args.repeat)]
    t_ours = statistics.median(t for t, _ in ours)
    t_bare = statistics.median(t for t, _ in bare)
    print(f"labdeck first paint (experiments loaded): {t_ours * 1000:.0f} ms median of "
          f"{args.repeat} (torch/optuna imported: {any(h for _, h in ours)})")
    print(f"baseline bare Textual app: {t_bare * 1000:.0f} ms")
    print(f"ratio labdeck / bare: {t_ours / t_bare:.2f}x   target < 1000 ms: "
          f"{'met' if t_ours < 1.0 else 'missed'}")


if __name__ == "__main__":
    main()
