"""Pilot tests with a real worker process: launch a run and watch metrics arrive; cancel."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from engine.api import Engine
from tui.app import LabdeckApp
from tui.screens.confirm import ConfirmModal
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.metric_chart import MetricChart

from .conftest import wait_for
from .seed import toy_config


async def _make(home, name: str, steps: int) -> None:
    async with Engine.session(home) as engine:
        await engine.create_experiment(name, "script", toy_config(0.05, steps),
                                       objective="val/loss", direction="minimize")


def chart_points(app) -> int:
    charts = app.screen.query(MetricChart)
    return sum(len(s.x) for c in charts for s in c.series)


@pytest.mark.slow
async def test_launch_run_and_see_metrics_live(home, monkeypatch):
    await _make(home, "live", 300)
    app = LabdeckApp(home=home, scheduler=True, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#experiments", DataTable).row_count)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.screen.experiments[0].runs == 1, what="run queued")
        await pilot.press("g")  # straight to the latest run's curves
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        screen = app.screen
        await wait_for(pilot, lambda: chart_points(app) > 0, timeout=30, what="first points")
        first = chart_points(app)
        await wait_for(pilot, lambda: chart_points(app) > first, timeout=30,
                       what="more points while training")
        assert screen.run.status in ("running", "completed")
        await wait_for(pilot, lambda: screen.run.status == "completed", timeout=60,
                       what="run completed")
        await wait_for(pilot, lambda: screen.query_one("#summary", DataTable).row_count >= 2)
        # the chart options redraw from downsampled data
        for key in ("s", "l", "a", "z"):
            await pilot.press(key)
        await wait_for(pilot, lambda: screen.x_axis == "epoch" and screen.log_y)


@pytest.mark.slow
async def test_cancel_running_run(home, monkeypatch):
    monkeypatch.setenv("LABDECK_CANCEL_GRACE", "2")
    await _make(home, "long", 100_000)
    async with Engine.session(home) as engine:
        run_id, _ = await engine.start_run("long")
    app = LabdeckApp(home=home, scheduler=True, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        app.push_screen(RunDetailScreen(run_id))
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.run is not None and screen.run.status == "running",
                       timeout=30, what="running")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.run.status == "cancelled", timeout=30,
                       what="cancelled")


async def test_delete_checkpoint(seeded):
    ckpt = seeded / "runs" / "1" / "checkpoints" / "best.pt"
    assert ckpt.exists()
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        app.push_screen(RunDetailScreen(1))
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.loaded)
        table = app.screen.query_one("#checkpoints", DataTable)
        assert [str(k.value) for k in table.rows] == ["best.pt", "last.pt"]
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: not ckpt.exists(), what="file deleted")
        await wait_for(pilot, lambda: [str(k.value) for k in table.rows] == ["last.pt"])
