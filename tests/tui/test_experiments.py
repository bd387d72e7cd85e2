"""Pilot tests of the experiments area: create with a bad value, filter, sort, delete."""

from __future__ import annotations

from textual.widgets import DataTable, Input

from engine.api import Engine
from tui.app import LabdeckApp
from tui.screens.confirm import ConfirmModal
from tui.screens.experiment_form import AdapterPicker, ExperimentForm
from tui.screens.experiments import ExperimentsScreen

from .conftest import palette_shows, wait_for


def rows(app) -> list[str]:
    table = app.screen.query_one("#experiments", DataTable)
    return [str(k.value) for k in table.rows]


async def test_create_with_bad_value_then_fix(home):
    app = LabdeckApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded, what="experiments loaded")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, AdapterPicker))
        await pilot.press("enter")  # first adapter: script
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentForm))
        form = app.screen
        assert form.adapter == "script"
        form.query_one("#f-name", Input).value = "my-exp"
        form.query_one("#f-command", Input).value = "python train.py --lr {lr}"
        form.query_one("#f-timeout_s", Input).value = "-5"
        form.query_one("#f-extra", Input).value = "lr=0.01"
        await pilot.press("ctrl+s")
        err = form.query_one("#err-timeout_s")
        await wait_for(pilot, lambda: "must be >=" in str(err.render()), what="inline error")
        assert form.query_one("#row-timeout_s").has_class("invalid")
        assert app.screen is form  # not saved, still open
        async with Engine.session(home) as engine:
            assert await engine.list_experiments() == []
        form.query_one("#f-timeout_s", Input).value = "30"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen), what="saved")
        await wait_for(pilot, lambda: rows(app) == ["my-exp"], what="row appears")
    async with Engine.session(home) as engine:
        exp = await engine.get_experiment("my-exp")
        assert exp.config["timeout_s"] == 30.0 and exp.config["lr"] == 0.01


async def test_filter_and_sort(seeded):
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: len(rows(app)) == 4, what="4 experiments")
        await pilot.press("slash")
        for ch in "lr>2e-2":
            await pilot.press(ch)
        await wait_for(pilot, lambda: sorted(rows(app)) == ["lr-sweep-1e-1", "lr-sweep-3e-2"])
        app.screen.query_one("#filter", Input).value = "tag:ref"
        await wait_for(pilot, lambda: rows(app) == ["baseline"])
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(rows(app)) == 4)
        screen = app.screen
        while screen.sort_column != "name":
            await pilot.press("o")
        assert rows(app) == sorted(rows(app))
        await pilot.click(DataTable, offset=(8, 0))  # click the "name" header: reverse
        await wait_for(pilot, lambda: rows(app) == sorted(rows(app), reverse=True))


async def test_delete_with_confirm_and_duplicate(seeded):
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(rows(app)) == 4)
        app.screen.query_one("#filter", Input).value = "baseline"
        await wait_for(pilot, lambda: rows(app) == ["baseline"])
        await pilot.press("d")
        await wait_for(pilot, lambda: "baseline-2" in [e.name for e in app.screen.experiments])
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: "baseline" not in [e.name for e in app.screen.experiments],
                       what="deleted")


async def test_palette_compare_selected_and_open_areas(seeded):
    from tui.screens.compare import CompareScreen
    from tui.screens.studies import StudiesScreen

    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        screen = app.screen
        await pilot.press("space", "down", "space")
        assert len(screen.selected) == 2
        await pilot.press("ctrl+p")
        await pilot.press(*"compare selected")
        await palette_shows(pilot, "Compare selected")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen)
                       and app.screen.comparison is not None, what="compare via palette")
        assert sorted(app.compare_refs) == sorted(screen.selected)
        await pilot.press("ctrl+p")
        await pilot.press(*"open studies")
        await palette_shows(pilot, "Open studies")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen), what="studies")


async def test_last_run_shows_epoch_and_pruned(seeded):
    from engine.schema import connect_sync

    conn = connect_sync(seeded / "labdeck.db")
    with conn:  # the running run reports its epoch; a study-pruned run ends "cancelled"
        conn.execute("UPDATE jobs SET message='epoch 7/20 step 5/40' WHERE run_id=3")
        conn.execute("UPDATE runs SET status='cancelled', error='pruned at step 3' WHERE id=2")
    conn.close()
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        table = app.screen.query_one("#experiments", DataTable)
        cells = {str(table.get_row(name)[1]): str(table.get_row(name)[4])
                 for name in ("lr-sweep-1e-1", "lr-sweep-3e-2", "lr-sweep-1e-2")}
    assert cells == {"lr-sweep-1e-1": "▶ 62% e7", "lr-sweep-3e-2": "✂ pruned",
                     "lr-sweep-1e-2": "✓ completed"}
