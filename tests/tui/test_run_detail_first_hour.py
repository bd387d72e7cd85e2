"""Run detail as a new user meets it (issue 15 item 3): the metric list opens with a row
under the cursor (the first space ticks it), unticking every metric says how to tick one,
a tick where there is no room for another chart shows the new one and says which ticked
metric is left out, and a chart's title is drawn whatever its width."""

from __future__ import annotations

from textual.geometry import Region
from textual.widgets import SelectionList, Static

from tui.app import LabdeckApp
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.metric_chart import MetricChart

from .conftest import settle, wait_for


async def open_run(pilot, run_id: int = 1) -> RunDetailScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.ready and app.screen.loaded)
    app.push_screen(RunDetailScreen(run_id))
    await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.loaded)
    await settle(pilot)
    return app.screen


def charted(screen) -> list[str]:
    return [c.key for c in screen.query(MetricChart)]


def note(screen) -> str:
    notes = screen.query("#charts .chart-note")
    return str(notes.first(Static).render()) if notes else ""


def highlight(screen, key: str) -> None:
    sl = screen.query_one("#metrics", SelectionList)
    sl.highlighted = [sl.get_option_at_index(i).value
                      for i in range(sl.option_count)].index(key)


async def test_the_first_space_ticks_the_row_under_the_cursor(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_run(pilot)
        sl = screen.query_one("#metrics", SelectionList)
        assert app.focused is sl
        assert sl.highlighted == 0
        first = sl.get_option_at_index(0).value
        assert first not in screen.chosen
        await pilot.press("space")
        await wait_for(pilot, lambda: first in screen.chosen, what="first space ticks")
        # a refill of the list (new metrics while a run trains) keeps the cursor's row
        sl.highlighted = 2
        screen._fill_metric_list()
        assert sl.highlighted == 2


async def test_unticking_every_metric_says_how_to_tick_one(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_run(pilot)  # completed, objective val/loss ticked
        assert screen.chosen == ["val/loss"]
        highlight(screen, "val/loss")
        await pilot.press("space")
        await wait_for(pilot, lambda: not screen.chosen and screen.query("#charts .empty"))
        await settle(pilot)
        text = str(screen.query_one("#charts .empty", Static).render())
        assert text == "no metric selected: tick one with space"
        assert not charted(screen)


async def test_a_tick_with_no_room_shows_the_new_chart_and_names_the_hidden(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_run(pilot)
        assert charted(screen) == ["val/loss"] and not note(screen)  # room for one chart
        # ticking a metric higher in the list: it is shown, and the line says what went
        highlight(screen, "train/loss")
        await pilot.press("space")
        await wait_for(pilot, lambda: charted(screen) == ["train/loss"] and note(screen))
        assert note(screen).startswith("no room for val/loss")
        # and a metric lower in the list: the latest tick again
        highlight(screen, "val/acc")
        await pilot.press("space")
        await wait_for(pilot, lambda: charted(screen) == ["val/acc"])
        await settle(pilot)
        assert note(screen).startswith("no room for train/loss, val/loss")
        # unticking the one shown brings back the one ticked before it
        await pilot.press("space")
        await wait_for(pilot, lambda: charted(screen) == ["train/loss"])
        await settle(pilot)
        assert note(screen).startswith("no room for val/loss")
        # a taller terminal charts both, in the list's order, and needs no line
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: charted(screen) == ["train/loss", "val/loss"])
        await settle(pilot)
        assert not note(screen)


def chart_lines(chart: MetricChart) -> list[str]:
    width, height = chart.outer_size
    return [strip.text for strip in chart.render_lines(Region(0, 0, width, height))]


async def test_a_chart_title_is_drawn_whatever_its_width(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    # 64 columns: a 42-column chart, narrower than plotext needs to centre the title line
    async with app.run_test(size=(64, 24)) as pilot:
        screen = await open_run(pilot)
        for keys in ((), ("s", "l", "a", "z")):  # and with every chart option on
            await pilot.press(*keys)
            await wait_for(pilot, lambda keys=keys: not keys or screen.zoom)
            await settle(pilot)
            (chart,) = screen.query(MetricChart)
            lines = chart_lines(chart)
            assert lines[0].strip().startswith("val/loss"), lines[:2]
            assert any("⠉" in line or "⣀" in line for line in lines)  # and the curve


def test_tick_list_reads_ticked_and_unticked_without_colour() -> None:
    """Item 8 in run detail's metric list, the metric picker and the evals list: `[x]` and
    `[ ]`, not Textual's `▐X▌` for both."""
    from textual.app import App

    from tui.widgets.tick_list import TickList

    class One(App):
        def compose(self):
            yield TickList[str](("loss", "loss", True), ("lr", "lr", False))

    async def go() -> list[str]:
        app = One()
        async with app.run_test(size=(30, 5)) as pilot:
            await pilot.pause()
            lst = app.query_one(TickList)
            return [lst.render_line(y).text for y in range(2)]

    import asyncio

    rows = asyncio.run(go())
    assert rows[0].startswith("[x] loss") and rows[1].startswith("[ ] lr"), rows
