"""Pilot tests of compare (three experiments, export) and jobs (filter, detail, result)."""

from __future__ import annotations

import json

from textual.widgets import DataTable

from tui.app import LabdeckApp
from tui.screens.compare import CompareScreen
from tui.screens.job_detail import JobDetailScreen
from tui.screens.jobs import JobsScreen
from tui.widgets.result_view import ResultView

from .conftest import wait_for


async def test_compare_three_and_export(seeded):
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#experiments", DataTable).row_count == 4)
        screen = app.screen
        screen.query_one("#filter").value = "sweep"
        await wait_for(pilot, lambda: screen.query_one("#experiments", DataTable).row_count == 3)
        for _ in range(3):
            await pilot.press("space", "down")
        assert len(screen.selected) == 3
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        cmp = app.screen
        await wait_for(pilot, lambda: cmp.comparison is not None and cmp.query("#final-table"),
                       what="comparison")
        final = cmp.query_one("#final-table", DataTable)
        await wait_for(pilot, lambda: final.row_count >= 3)
        assert len(final.columns) == 4  # metric + three runs
        stars = [str(final.get_row_at(i)).count("★") for i in range(final.row_count)]
        assert all(s == 1 for s in stars)
        assert set(cmp.comparison.differing) == {"lr"}
        diff = cmp.query_one("#config-diff", DataTable)
        assert diff.row_count == 1
        await pilot.press("d")
        await wait_for(pilot, lambda: diff.row_count == len(cmp.comparison.config_keys))
        await pilot.press("b", "e")
        await wait_for(pilot, lambda: list((seeded / "exports").glob("*.json")), what="export")
        data = json.loads(next((seeded / "exports").glob("*.json")).read_text())
        assert data["which"] == "best" and len(data["rows"]) >= 3
        assert list((seeded / "exports").glob("*.csv"))


async def test_compare_tabs_at_80x24(seeded):
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        await app.open_compare(["lr-sweep-1e-2", "lr-sweep-3e-2"])
        await wait_for(pilot, lambda: app.screen.query("#compare-tabs")
                       and app.screen.query("#final-table"), what="tabs")


async def test_jobs_filter_detail_and_result_table(seeded):
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        await pilot.press("J")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.loaded)
        jobs = app.screen
        table = jobs.query_one("#jobs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        jobs.status_filter, jobs.type_filter = None, "eval"  # what the f dialog returns
        await pilot.press("f")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: table.row_count == 1, what="filtered to eval")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.loaded)
        detail = app.screen
        await wait_for(pilot, lambda: detail.query(ResultView))
        result = detail.query_one("#result-table", DataTable)
        assert result.row_count == 5
        last = str(result.get_row_at(4))
        assert last.count("★") == 3  # 128 bits best on every metric column


async def test_compare_metric_picker(seeded):
    from textual.widgets import SelectionList

    from tui.screens.metric_picker import MetricPicker
    from tui.widgets.metric_chart import MetricChart

    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        await app.open_compare(["lr-sweep-1e-2", "lr-sweep-3e-2"])
        cmp = app.screen
        await wait_for(pilot, lambda: len(cmp.query(MetricChart)) == 3
                       and cmp.query(MetricChart).first().series, what="default charts")
        # the shared objective first, then train/loss, then the rest
        assert list(cmp.curves) == ["val/loss", "train/loss", "val/acc"]
        colours = [s.rgb for s in cmp.query(MetricChart).first().series]
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricPicker))
        picker = app.screen
        sel = picker.query_one(SelectionList)
        assert picker.keys == ["train/loss", "val/acc", "val/loss"]  # grouped by prefix
        assert set(sel.selected) == {"val/loss", "train/loss", "val/acc"}
        sel.deselect("val/acc")
        sel.deselect("train/loss")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: list(cmp.curves) == ["val/loss"]
                       and len(cmp.query(MetricChart)) == 1
                       and cmp.query(MetricChart).first().series, what="one chart")
        assert [s.rgb for s in cmp.query(MetricChart).first().series] == colours
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricPicker))
        app.screen.query_one(SelectionList).select("val/acc")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: list(cmp.curves) == ["val/loss", "val/acc"],
                       what="kept order, new one appended")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricPicker))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is cmp)
        assert list(cmp.curves) == ["val/loss", "val/acc"]
