"""A new user's first minutes at 80x24 (issue 15, item 9): an empty home says what to do, the
header names the area you are in, `? Help` is always in the footer, a key pressed again does
not stack toasts; and (item 13) the theme is kept across restarts."""

from __future__ import annotations

import pytest
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from tui.app import LabdeckApp
from tui.areas import AREAS
from tui.widgets.header import LabdeckHeader

from .conftest import wait_for


def header_text(app) -> str:
    return app.screen.query_one(LabdeckHeader).render().plain


async def test_empty_home_says_what_to_do(home):
    app = LabdeckApp(home=home, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        hint = app.screen.query_one("#empty-hint", Static)
        await wait_for(pilot, lambda: hint.display, what="the empty-home hint")
        text = str(hint.render())
        assert "No experiments yet" in text and "labdeck demo" in text
        assert "n" in text and "create one" in text
        assert hint.region.width and hint.region.y < 12, "the hint is in sight, near the top"
        assert str(app.screen.query_one("#count").render()) == "no experiments yet"


def _help_is_in_sight(app) -> bool:
    keys = list(app.screen.query(FooterKey))
    palette = next(k for k in keys if k.has_class("-command-palette"))
    helps = [k for k in keys if k.key == "question_mark"]
    return len(helps) == 1 and 0 <= helps[0].region.x and (
        helps[0].region.right <= palette.region.x)


async def _open(pilot, area) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.ready and app.screen.loaded)
    await pilot.press(area.key)
    await wait_for(pilot, lambda: isinstance(app.screen, area.screen))
    await pilot.pause()


@pytest.mark.parametrize("area", AREAS, ids=[a.mode for a in AREAS])
async def test_every_area_at_80_columns_names_itself_in_the_header(seeded, area):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(pilot, area)
        line = header_text(app)
        assert area.label in line, line  # the area you are in, by name
        assert all(f"{a.key}]" in line for a in AREAS), line  # every key still there
        assert len(line) <= 78, line


@pytest.mark.parametrize("area", AREAS, ids=[a.mode for a in AREAS])
async def test_every_area_at_80_columns_shows_help_in_the_footer(seeded, area):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(pilot, area)
        await wait_for(pilot, lambda: _help_is_in_sight(app), what="? Help in the footer")


@pytest.mark.parametrize("which", ["experiment", "run", "job"])
async def test_detail_screens_at_80_columns_show_help_in_the_footer(seeded, which):
    from tui.screens.experiment_detail import ExperimentDetailScreen
    from tui.screens.job_detail import JobDetailScreen
    from tui.screens.run_detail import RunDetailScreen

    screen = {"experiment": lambda: ExperimentDetailScreen("lr-sweep-1e-2"),
              "run": lambda: RunDetailScreen(1), "job": lambda: JobDetailScreen(1)}[which]()
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await app.push_screen(screen)
        await wait_for(pilot, lambda: app.screen is screen and screen.loaded)
        await wait_for(pilot, lambda: _help_is_in_sight(app), what="? Help in the footer")


async def test_header_uses_short_names_when_full_ones_do_not_fit(seeded):
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        line = header_text(app)
        assert "[E]xperiments" in line and "[J]obs" in line and "s[T]ud" in line, line
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        line = header_text(app)
        assert all(a.label in line for a in AREAS), line


async def test_a_key_pressed_again_restarts_its_toast_instead_of_stacking(home):
    app = LabdeckApp(home=home, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        for _ in range(5):
            await pilot.press("e")  # edit, with nothing to edit
            await pilot.pause()
        await wait_for(pilot, lambda: len(app._notifications) >= 1)
        await pilot.pause()
        shown = [n.message for n in app._notifications]
        assert shown == ["no experiment selected"], shown
        app.notify("something else")
        await pilot.pause()
        assert len(app._notifications) == 2  # different toasts still stack


async def test_theme_is_kept_across_restarts(home):
    app = LabdeckApp(home=home, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready)
        first = app.theme
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: app.theme != first)
        chosen = app.theme
        await wait_for(pilot, lambda: (home / "tui.json").exists(), what="theme saved")
    again = LabdeckApp(home=home, poll_s=60)
    async with again.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: again.ready)
        assert again.theme == chosen


async def test_a_run_opened_from_studies_keeps_studies_in_the_header(seeded):
    """A run detail pushed on the Studies stack (enter on a trial) is still in Studies: the
    header names Studies, not the run screen's own area (Experiments)."""
    from tui.screens.run_detail import RunDetailScreen

    studies = next(a for a in AREAS if a.mode == "studies")
    experiments = next(a for a in AREAS if a.mode == "experiments")
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(pilot, studies)
        screen = RunDetailScreen(1)
        await app.push_screen(screen)
        await wait_for(pilot, lambda: app.screen is screen and screen.loaded)
        line = header_text(app)
        assert studies.label in line and experiments.label not in line, line
