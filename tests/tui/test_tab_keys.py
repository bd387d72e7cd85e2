"""Every tabbed screen opens its tabs with the number keys, whatever has focus (the Studies
way), and the tab titles carry their numbers."""

from __future__ import annotations

from textual.widgets import TabbedContent

from tui.app import LabdeckApp
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
