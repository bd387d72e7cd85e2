"""`?` at 80x24, opened on Compare: Compare's keys first (its tab keys among them), under a
heading row per screen; keys written as a person types them; every id whole (the table is no
wider than the dialog, so nothing is cut off at the right)."""

from __future__ import annotations

from textual.widgets import DataTable

from tui.app import LabdeckApp
from tui.areas import AREAS
from tui.screens.compare import CompareScreen
from tui.screens.help import HelpScreen, sections

from .conftest import settle, wait_for


async def test_help_on_compare_at_80x24_shows_its_keys_first_and_ids_whole(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await app.open_compare(["lr-sweep-1e-2", "lr-sweep-3e-2"])
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen)
                       and app.screen.comparison is not None)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen)
                       and app.screen.query_one(DataTable).row_count)
        await settle(pilot)
        table = app.screen.query_one(DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows[0] == ["compare", "", ""]  # a heading, then this screen's keys
        ids = [b.id for b in CompareScreen.BINDINGS]
        assert [r[2] for r in rows[1:len(ids) + 1]] == ids
        assert ["1", "Config diff tab", "compare.tab_1"] in rows
        headings = [r[0] for r in rows if not r[1]]
        assert headings[:2] == ["compare", "global"]
        assert len(headings) == len(sections(CompareScreen, app.BINDINGS, AREAS))
        # every id whole: no column is cut, the table fits the dialog
        assert table.virtual_size.width <= table.scrollable_content_region.width, (
            table.virtual_size, table.scrollable_content_region)
        longest = max((r[2] for r in rows), key=len)
        assert table.columns[table.ordered_columns[2].key].get_render_width(table) >= len(
            longest) + 2
        keys = {r[0] for r in rows if r[1]}
        assert {"?", "/", "[", "]", "esc", "ctrl+p", "1"} <= keys
        assert not any(name in k for k in keys
                       for name in ("question_mark", "slash", "square_bracket", "escape"))
