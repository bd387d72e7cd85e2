"""Every tabbed screen opens its tabs with the number keys, whatever has focus (the Studies
way), and the tab titles carry their numbers."""

from __future__ import annotations

from textual.widgets import TabbedContent

from tui.app import LabdeckApp
from tui.screens.compare import CompareScreen
from tui.screens.job_detail import JobDetailScreen
from tui.screens.run_detail import RunDetailScreen

from .conftest import wait_for


async def _press_tabs(pilot, screen, tabs_id: str, expected: list[str]) -> None:
    tabs = screen.query_one(f"#{tabs_id}", TabbedContent)
    titles = [str(t.label) for t in tabs.query("Tab")]
    assert [t.split(" ", 1)[0] for t in titles] == [str(i) for i in range(1, len(expected) + 1)]
    for i in [*range(len(expected), 0, -1), 1]:
        await pilot.press(str(i))
        await wait_for(pilot, lambda i=i: tabs.active == expected[i - 1],
                       what=f"key {i} opens {expected[i - 1]}")


async def test_run_detail_tabs_open_with_1_to_4(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        app.push_screen(RunDetailScreen(1))
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.loaded)
        screen = app.screen
        assert screen.focused is not None and screen.focused.id == "metrics"  # not the tab bar
        await _press_tabs(pilot, screen, "run-tabs",
                          ["tab-summary", "tab-checkpoints", "tab-log", "tab-config"])
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.check_action("resume", ()) is True,
                       what="resume offered on the checkpoints tab")


async def test_job_detail_tabs_open_with_1_to_3(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        app.push_screen(JobDetailScreen(4))
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.loaded)
        await _press_tabs(pilot, app.screen, "job-tabs", ["tab-log", "tab-result", "tab-params"])


async def test_compare_tabs_open_with_1_to_3_and_take_the_keys(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await app.open_compare(["lr-sweep-1e-2", "lr-sweep-3e-2"])
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen)
                       and app.screen.comparison is not None
                       and app.screen.query("#compare-tabs #final-table"), what="tabs")
        screen = app.screen
        await _press_tabs(pilot, screen, "compare-tabs",
                          ["tab-pane-config", "tab-pane-charts", "tab-pane-final"])
        await pilot.press("3")
        await wait_for(pilot, lambda: screen.focused is screen.query_one("#final-table"))
        await pilot.press("1")
        await wait_for(pilot, lambda: screen.focused is screen.query_one("#config-diff"))


async def test_compare_stacked_1_and_3_focus_the_tables(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await app.open_compare(["lr-sweep-1e-2", "lr-sweep-3e-2"])
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen)
                       and app.screen.comparison is not None
                       and app.screen.query("#final-table"), what="stacked panes")
        screen = app.screen
        assert not screen.query("#compare-tabs")
        await pilot.press("3")
        await wait_for(pilot, lambda: screen.focused is screen.query_one("#final-table"))
        await pilot.press("1")
        await wait_for(pilot, lambda: screen.focused is screen.query_one("#config-diff"))
