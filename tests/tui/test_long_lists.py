"""Long lists are drawn a page at a time (issue 14: opening any list stays quick whatever its
length): 700 experiments or runs put one page in the table, the count line says so, moving
onto the last drawn row draws the next page, and a filter searches the whole list."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Label

from engine.data import experiments, runs
from engine.schema import connect_sync, write_tx
from engine.settings import load_settings
from tui.app import LabdeckApp
from tui.screens.experiment_detail import ExperimentDetailScreen
from tui.table_window import PAGE

from .conftest import wait_for

N = 700


def seed(home, n_experiments: int, n_runs: int) -> None:
    settings = load_settings(str(home)).ensure()
    conn = connect_sync(settings.db_path)
    try:
        for i in range(n_experiments):
            experiments.create(conn, f"exp-{i:04d}", "script", {"command": "true"}, None, None,
                               [], "", None)
        exp_id = experiments.get_or_create(conn, "many-runs")
        with write_tx(conn):
            for _ in range(n_runs):
                runs.insert_run(conn, exp_id, {"command": "true"}, "completed", "tracking")
    finally:
        conn.close()


async def test_experiments_draw_a_page_and_more_on_the_way_down(home):
    seed(home, N, 0)
    app = LabdeckApp(home=home, poll_s=60)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        table = app.screen.query_one(DataTable)
        count = app.screen.query_one("#count", Label)
        assert table.row_count == PAGE
        assert f"{N + 1:,} of {N + 1:,} experiments" in str(count.render())
        assert f"first {PAGE} drawn" in str(count.render())
        table.move_cursor(row=PAGE - 1)
        await wait_for(pilot, lambda: table.row_count == 2 * PAGE, what="the next page")
        assert f"first {2 * PAGE} drawn" in str(count.render())
        # a filter searches every experiment, not only the drawn ones
        app.screen.query_one("#filter", Input).value = "exp-069"
        await wait_for(pilot, lambda: table.row_count == 10, what="the filtered rows")
        assert "drawn" not in str(count.render())


async def test_an_experiment_with_many_runs_draws_a_page(home):
    seed(home, 0, N)
    app = LabdeckApp(home=home, poll_s=60)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        screen = ExperimentDetailScreen("many-runs")
        await app.push_screen(screen)
        await wait_for(pilot, lambda: app.screen is screen and screen.loaded)
        table = screen.query_one(DataTable)
        assert table.row_count == PAGE and len(screen.runs) == N
        table.move_cursor(row=PAGE - 1)
        await wait_for(pilot, lambda: table.row_count == 2 * PAGE, what="the next page")
        table.move_cursor(row=2 * PAGE - 1)
        await wait_for(pilot, lambda: table.row_count == N, what="the last page")
