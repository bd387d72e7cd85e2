"""Snapshots of every screen at 80x24 and 120x40 on a seeded home with a frozen clock and no
scheduler. Update with ``pytest tests/tui/test_snapshots.py --snapshot-update``."""

from __future__ import annotations

import pytest

from tui.app import LabdeckApp
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


def _steps(name: str):
    async def experiments(pilot):
        await _ready(pilot)

    async def experiment(pilot):
        await _ready(pilot)
        pilot.app.push_screen(ExperimentDetailScreen("lr-sweep-1e-2"))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ExperimentDetailScreen)
                       and pilot.app.screen.loaded)

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

    async def jobs(pilot):
        await _ready(pilot)
        await pilot.press("J")
        await _ready(pilot)

    async def job_detail(pilot):
        await _ready(pilot)
        pilot.app.push_screen(JobDetailScreen(4))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, JobDetailScreen)
                       and pilot.app.screen.loaded)
        await pilot.press("right")  # the result tab
        await settle(pilot)

    async def search(pilot):
        await _ready(pilot)
        await pilot.press("S")

    async def studies(pilot):
        await _ready(pilot)
        await pilot.press("T")

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

    return locals()[name]


SCREENS = ["experiments", "experiment", "run", "compare", "jobs", "job_detail",  # search: its own team
           "help", "form"]  # studies: test_studies_snapshots.py


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen_snapshot(screen, size, seeded, snap_compare):
    app = LabdeckApp(home=seeded, poll_s=60)
    assert snap_compare(app, terminal_size=size, run_before=_steps(screen))
