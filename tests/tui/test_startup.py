"""The first screen paints without torch or optuna imported; user keymaps apply."""

from __future__ import annotations

import json
import subprocess
import sys

from tui.app import LabdeckApp

from .conftest import wait_for

PROBE = r"""
import asyncio, sys
from tui.app import LabdeckApp

async def main():
    app = LabdeckApp(home=sys.argv[1], scheduler=True)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            if app.ready and getattr(app.screen, "loaded", False):
                break
            await pilot.pause(0.05)
        assert app.screen.loaded, "first screen did not load"
        heavy = sorted(m for m in ("torch", "optuna") if m in sys.modules)
        print("HEAVY=" + ",".join(heavy))

asyncio.run(main())
"""


def test_first_screen_without_torch_or_optuna(seeded):
    out = subprocess.run([sys.executable, "-c", PROBE, str(seeded)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY=\n" in out.stdout or out.stdout.strip().endswith("HEAVY="), out.stdout


async def test_user_keymap_overrides_a_binding(seeded):
    (seeded / "keymap.json").write_text(json.dumps({"app.jobs": "f3"}))
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.current_mode == "jobs", what="f3 opens jobs")


async def test_help_and_theme_toggle(seeded):
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        await pilot.press("escape")
        before = app.theme
        await pilot.press("ctrl+t")
        assert app.theme != before
