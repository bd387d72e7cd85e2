"""Compare as a new user meets it in the first hour (issue 15): an experiment whose latest run
was cancelled before it started stands for its run with metrics, and the screen says so; a
long command is cut so every run's column shows at 80x24, and the cell under the cursor shows
it whole; the curves' legend is a line of its own, not drawn over the data; only results get
a ★; metric names sort naturally."""

from __future__ import annotations

import pytest
from compare_home import BITS, CANCELLED, COMMAND, EXPERIMENTS, seed_compare_home
from textual.geometry import Region
from textual.widgets import DataTable, Label, Static

from tui.app import LabdeckApp
from tui.screens.compare import CompareScreen
from tui.widgets.metric_chart import MetricChart

from .conftest import settle, wait_for

NAMES = [name for name, _ in EXPERIMENTS]


@pytest.fixture
def cmp_home(home, frozen_clock):
    return seed_compare_home(home)


async def _open(pilot, size_ready=True) -> CompareScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.ready and app.screen.loaded)
    await app.open_compare(NAMES)
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen)
                   and app.screen.comparison is not None and app.screen.query("#final-table")
                   and app.screen.query_one("#final-table", DataTable).row_count,
                   what="comparison")
    await settle(pilot)
    return app.screen


def _rows(table: DataTable) -> dict[str, list[str]]:
    rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
    return {r[0].split()[0]: r[1:] for r in rows}


async def test_compare_takes_the_run_with_metrics_and_says_which(cmp_home):
    app = LabdeckApp(home=cmp_home, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        cmp = await _open(pilot)
        assert cmp.comparison.columns == [f"{name} › run 1" for name in NAMES]
        notes = cmp.query_one("#compare-notes", Label)
        assert notes.display
        assert f"{CANCELLED}: run 1, its latest with metrics (run 2 cancelled" in str(
            notes.render())
        final = _rows(cmp.query_one("#final-table", DataTable))
        assert "-" not in final["val/loss"] and sum("★" in v for v in final["val/loss"]) == 1


async def test_a_long_command_is_cut_and_shown_whole_under_the_cursor(cmp_home):
    app = LabdeckApp(home=cmp_home, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        cmp = await _open(pilot)
        await pilot.press("d")  # all keys, the command among them
        table = cmp.query_one("#config-diff", DataTable)
        await wait_for(pilot, lambda: table.row_count == len(cmp.comparison.config_keys))
        await settle(pilot)
        # every run's column shows: the table is no wider than its pane
        assert table.virtual_size.width <= table.size.width, (table.virtual_size, table.size)
        command_row = cmp.comparison.config_keys.index("command")
        cells = [str(c) for c in table.get_row_at(command_row)]
        assert all(c.endswith("…") and len(c) < len(COMMAND) for c in cells[1:])
        table.focus()
        table.move_cursor(row=command_row, column=2)
        value = cmp.query_one("#config-value", Static)
        await wait_for(pilot, lambda: f"{NAMES[1]} › run 1" in str(value.render()),
                       what="the cell under the cursor")
        assert COMMAND in str(value.render())  # whole


async def test_legend_is_a_line_of_its_own(cmp_home):
    app = LabdeckApp(home=cmp_home, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        cmp = await _open(pilot)
        charts = list(cmp.query(MetricChart))
        assert len(charts) == 3 and all(len(c.series) == 3 for c in charts)
        legend = str(cmp.query_one(".legend", Static).render())
        assert all(label in legend for label in cmp.comparison.columns)
        for chart in charts:
            drawn = "\n".join(s.text for s in chart.render_lines(Region(0, 0, *chart.size)))
            assert chart.key in drawn  # the chart did draw
            assert not any(name in drawn for name in NAMES), drawn


async def test_only_results_get_a_star_and_metrics_sort_naturally(cmp_home):
    from tui.screens.metric_picker import MetricPicker

    app = LabdeckApp(home=cmp_home, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        cmp = await _open(pilot)
        final = _rows(cmp.query_one("#final-table", DataTable))
        for key in ("train/lr", "epoch"):
            assert not any("★" in v for v in final[key]), (key, final[key])
        assert sum("★" in v for v in final["train/loss"]) == 1
        maps = [f"val/map_{b}" for b in BITS]
        assert [k for k in final if k.startswith("val/map")] == maps
        assert "train/lr" not in cmp.curves and "epoch" not in cmp.curves  # default charts
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricPicker))
        assert [k for k in app.screen.keys if k.startswith("val/map")] == maps
