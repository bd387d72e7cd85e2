"""Snapshots of the Search area at 80x24 and 120x40: half-cell thumbnails, a fixed clock (the
same latency figure every time), a fixed home path, a deterministic tiny model trained once
per module."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tui.app import LabdeckApp
from tui.screens.search_modals import SourcePicker
from tui.widgets.search_evals import EvalsPane

from .conftest import settle, wait_for
from .search_support import build_index, open_search, run_eval, train_tiny, wait_results

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:textual_image")]

# the header shows the home, so it lives at a fixed path
HOME = Path(tempfile.gettempdir()) / "labdeck-snapshots" / "search-home"


@pytest.fixture(scope="module")
def snap_home() -> Path:
    import shutil

    shutil.rmtree(HOME, ignore_errors=True)
    run_id = train_tiny(HOME)
    build_index(HOME, run_id, "best.pt")
    run_eval(HOME, run_id, "best.pt")
    run_eval(HOME, run_id, "last.pt")
    return HOME


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch, frozen_clock):
    monkeypatch.setenv("LABDECK_THUMBS", "halfcell")


def _app(home: Path) -> LabdeckApp:
    return LabdeckApp(home=home, poll_s=3600)  # no refresh ticks while the snapshot settles


def _text_query(query: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        screen = await open_search(pilot, app)
        before = screen.searches
        await pilot.press("slash", *query, "enter", "escape")
        await wait_results(pilot, screen, before)
        await settle(pilot)
    return run_before


def test_search_text_results_80x24(snap_home, snap_compare):
    assert snap_compare(_app(snap_home), terminal_size=(80, 24),
                        run_before=_text_query("a red circle"))


def test_search_text_results_120x40(snap_home, snap_compare):
    assert snap_compare(_app(snap_home), terminal_size=(120, 40),
                        run_before=_text_query("빨간 원"))


def test_search_image_results_80x24(snap_home, snap_compare):
    async def run_before(pilot) -> None:
        screen = await open_search(pilot, pilot.app)
        before = screen.searches
        await pilot.press("n")
        await wait_results(pilot, screen, before)
        screen.query_one("#search-grid").focus()
        await pilot.press("right", "m")
        await wait_results(pilot, screen, before + 1)
        await settle(pilot)

    assert snap_compare(_app(snap_home), terminal_size=(80, 24), run_before=run_before)


def test_search_no_index_80x24(snap_home, snap_compare):
    async def run_before(pilot) -> None:
        app = pilot.app
        screen = await open_search(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, SourcePicker))
        await pilot.press("down", "enter")  # best.pt (indexed) -> last.pt (no index)
        await wait_for(pilot, lambda: screen.source.checkpoint == "last.pt")
        await settle(pilot)

    assert snap_compare(_app(snap_home), terminal_size=(80, 24), run_before=run_before)


def test_search_evals_compare_120x40(snap_home, snap_compare):
    async def run_before(pilot) -> None:
        app = pilot.app
        screen = await open_search(pilot, app)
        await pilot.press("e")
        pane = screen.query_one(EvalsPane)
        await wait_for(pilot, lambda: len(pane.records) == 2)
        pane.query_one("#eval-list").focus()
        await pilot.press("down", "space")
        await wait_for(pilot, lambda: len(pane._shown) == 2)
        await settle(pilot)

    assert snap_compare(_app(snap_home), terminal_size=(120, 40), run_before=run_before)
