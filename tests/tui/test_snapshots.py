"""Snapshots of every screen at 80x24 and 120x40 on a seeded home with a frozen clock and no
scheduler. Update with ``pytest tests/tui/test_snapshots.py --snapshot-update``."""

from __future__ import annotations

import pytest

from tui.app import LabdeckApp
from tui.areas import AREAS
from tui.screens.experiment_detail import ExperimentDetailScreen
from tui.screens.experiment_form import ExperimentForm
from tui.screens.help import HelpScreen
from tui.screens.job_detail import JobDetailScreen
from tui.screens.run_detail import RunDetailScreen

from .conftest import settle, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def _ready(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.ready and getattr(app.screen, "loaded", False))


def _area(key: str):
    async def steps(pilot):
        await _ready(pilot)
        await pilot.press(key)
        await _ready(pilot)
    return steps


def _steps(name: str):
    async def experiment(pilot):
        await _ready(pilot)
        pilot.app.push_screen(ExperimentDetailScreen("lr-sweep-1e-2"))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ExperimentDetailScreen)
                       and pilot.app.screen.loaded)
        await settle(pilot)

    async def run(pilot):
        await _ready(pilot)
        pilot.app.push_screen(RunDetailScreen(1))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunDetailScreen)
                       and pilot.app.screen.loaded)
        await settle(pilot)

    async def compare(pilot):
        await _ready(pilot)
        await pilot.app.open_compare(["lr-sweep-1e-2", "lr-sweep-3e-2", "lr-sweep-1e-1"])
        await wait_for(pilot, lambda: pilot.app.screen.comparison is not None
                       and pilot.app.screen.query("#final-table"))
        await settle(pilot)

    async def job_detail(pilot):
        await _ready(pilot)
        pilot.app.push_screen(JobDetailScreen(4))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, JobDetailScreen)
                       and pilot.app.screen.loaded)
        await pilot.press("right")  # the result tab
        await settle(pilot)

    async def help(pilot):
        await _ready(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    async def form(pilot):
        await _ready(pilot)
        pilot.app.push_screen(ExperimentForm("script"))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ExperimentForm)
                       and pilot.app.screen.query("#f-timeout_s"))
        pilot.app.screen.query_one("#f-timeout_s").value = "-1"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: pilot.app.screen.query(".field.invalid"))
        await settle(pilot)

    areas = {a.mode: _area(a.key) for a in AREAS}
    return {**areas, **locals()}[name]


# every area (search and studies have their own modules, on homes of their own), the screens
# opened from them, help and a form
ELSEWHERE = {"search": "test_search_snapshots.py", "studies": "test_studies_snapshots.py",
             "resources": "test_gpus.py"}
SCREENS = [a.mode for a in AREAS if a.mode not in ELSEWHERE] + [
    "experiment", "run", "job_detail", "help", "form"]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen_snapshot(screen, size, seeded, snap_compare):
    app = LabdeckApp(home=seeded, poll_s=60)
    assert snap_compare(app, terminal_size=size, run_before=_steps(screen))
