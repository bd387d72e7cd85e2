"""The TUI says when something is unwell: the header when the embedded scheduler is retrying
a database fault (a real SQLite lock held by another connection) and when it has recovered; a
job row and the run header when a running job has said nothing for the warning time."""

from __future__ import annotations

import asyncio
import sqlite3

from textual.widgets import DataTable, Label

from tui.app import LabdeckApp
from tui.screens.jobs import JobsScreen
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.header import LabdeckHeader

from .conftest import wait_for


def _header(app) -> str:
    return app.screen.query_one(LabdeckHeader).render().plain


async def test_header_shows_the_scheduler_retrying_and_recovering(home):
    app = LabdeckApp(home=home, scheduler=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded, timeout=30)
        await wait_for(pilot, lambda: "embedded" in app.header_state[1], timeout=30)
        lock = sqlite3.connect(str(home / "labdeck.db"), timeout=30, isolation_level=None,
                               check_same_thread=False)
        await asyncio.to_thread(lock.execute, "BEGIN IMMEDIATE")
        try:
            await wait_for(pilot, lambda: "sched retrying (database is locked)" in _header(app),
                           timeout=60, what="the degraded state in the header")
        finally:
            lock.execute("COMMIT")
            lock.close()
        await wait_for(pilot, lambda: "retrying" not in _header(app)
                       and "embedded" in app.header_state[1], timeout=60, what="recovery")


async def test_a_silent_running_job_reads_stalled(seeded, monkeypatch):
    # the seeded run 3 is running and last reported 2 minutes before the frozen "now"
    monkeypatch.setenv("LABDECK_STALL_WARN_S", "60")
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await pilot.press("J")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.loaded)
        table = app.screen.query_one("#jobs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        rows = {str(table.get_row_at(i)[0]): table.get_row_at(i) for i in range(table.row_count)}
        assert str(rows["3"][3]) == "▶ stalled 2m"
        assert "stalled" not in str(rows["1"][3])  # completed: never stalled
        await app.push_screen(RunDetailScreen(3))
        await wait_for(pilot, lambda: "stalled 2m" in str(
            app.screen.query_one("#run-status", Label).render()), what="the run header")
