"""The areas are declared once (tui.areas) and everything that lists them agrees; `?` lists
the keys of every screen and dialog, the current screen's first, written as a person writes
them, with the user's keymap applied."""

from __future__ import annotations

import json

from textual.widgets import DataTable

from tui.app import LabdeckApp
from tui.areas import AREAS
from tui.screens.help import HelpScreen, key_display
from tui.screens.jobs import JobsScreen
from tui.widgets.header import LabdeckHeader

from .conftest import palette_shows, wait_for

# one binding id of each dialog, none of which an area screen declares
DIALOG_IDS = ("confirm.yes", "jobfilter.apply", "metricpicker.apply", "search.pick_cancel",
              "search.path_complete", "picker.cancel", "form.save", "study-picker.cancel",
              "study-form.save")


async def _help_rows(pilot) -> list[tuple[str, str, str, str]]:
    app = pilot.app
    await pilot.press("question_mark")
    await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen)
                   and app.screen.query_one(DataTable).row_count)
    table = app.screen.query_one(DataTable)
    rows, area = [], ""
    for i in range(table.row_count):
        key, action, binding_id = (str(c) for c in table.get_row_at(i))
        if not action:  # a heading: the screen whose keys follow
            area = key
            continue
        rows.append((area, key, action, binding_id))
    return rows


def test_key_display_is_what_a_person_types():
    assert key_display("question_mark") == "?"
    assert key_display("slash") == "/"
    assert key_display("left_square_bracket") == "["
    assert key_display("ctrl+p") == "ctrl+p"
    assert key_display("escape,question_mark,q") == "esc, ?, q"
    assert key_display("delete,D") == "del, D"
    assert key_display("enter") == "enter"


async def test_every_area_key_header_and_palette_come_from_the_areas(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        line = app.screen.query_one(LabdeckHeader).render().plain
        assert all(a.label in line for a in AREAS), line
        assert "s[T]udies" in line and "[E]xperiments" in line
        for a in [*AREAS[1:], AREAS[0]]:
            await pilot.press(a.key)
            await wait_for(pilot, lambda a=a: app.current_mode == a.mode
                           and isinstance(app.screen, a.screen), what=f"{a.key} opens {a.mode}")
        await pilot.press("ctrl+p")
        await pilot.press(*"open studies")
        await palette_shows(pilot, "Open Studies")


async def test_help_lists_every_dialog_current_screen_first(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await pilot.press("J")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.loaded)
        rows = await _help_rows(pilot)
        ids = {r[3] for r in rows}
        assert set(DIALOG_IDS) <= ids, set(DIALOG_IDS) - ids
        assert [r[3] for r in rows[:3]] == [b.id for b in JobsScreen.BINDINGS]  # this screen first
        sections = list(dict.fromkeys(r[0] for r in rows))
        assert sections[:2] == ["jobs", "global"]
        assert sections.count("jobs") == 1  # not listed twice
        keys = {r[1] for r in rows}
        assert {"?", "/", "[", "]", "ctrl+p"} <= keys
        assert not any(name in k for k in keys
                       for name in ("question_mark", "slash", "square_bracket"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is not None and not isinstance(app.screen,
                                                                               HelpScreen))


async def test_help_shows_the_users_keymap(seeded):
    (seeded / "keymap.json").write_text(json.dumps({"app.jobs": "f3", "jobs.filter": "/"}))
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        rows = {r[3]: r for r in await _help_rows(pilot)}
        assert rows["app.jobs"][1] == "f3"
        assert rows["jobs.filter"][1] == "/"
        assert rows["app.compare"][1] == "C"
