"""Pilot tests of the Search area on a really trained tiny model: build an index from the UI
and watch its progress, sample queries in English and Korean, options that re-rank, image
queries (path prompt with completion, "more like this"), and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, Input, ProgressBar

from tui.app import LabdeckApp
from tui.screens.search import SearchScreen
from tui.screens.search_modals import HitDetail, ImagePathPrompt, path_matches
from tui.widgets.search_results import HitList, ThumbGrid

from .conftest import wait_for
from .search_support import build_index, copy_home, open_search, train_tiny, wait_results

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:textual_image")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A home with one trained run and no index (trained once for the module)."""
    home = tmp_path_factory.mktemp("search") / "trained"
    train_tiny(home)
    return home


@pytest.fixture(scope="module")
def indexed(trained: Path, tmp_path_factory) -> Path:
    home = copy_home(trained, tmp_path_factory.mktemp("search") / "indexed")
    build_index(home, 1)
    return home


@pytest.fixture(autouse=True)
def _halfcell(monkeypatch):
    monkeypatch.setenv("LABDECK_THUMBS", "halfcell")


async def test_build_index_from_the_ui_and_watch_progress(trained, tmp_path):
    home = copy_home(trained, tmp_path / "home")
    app = LabdeckApp(home=home, scheduler=True, poll_s=0.2)
    statuses: list[str] = []  # every status line the screen announced, in order

    def heard(message) -> None:
        if isinstance(message, SearchScreen.StatusChanged):
            statuses.append(message.text)

    async with app.run_test(size=(100, 30), message_hook=heard) as pilot:
        screen = await open_search(pilot, app)
        assert screen.source is not None and screen.source.index_items is None
        assert "press b" in screen.status
        assert screen.check_action("build", ()) is True
        await pilot.press("n")  # a query before any index: told to build one
        await wait_for(pilot, lambda: "no index" in screen.status)
        await pilot.press("b")
        bar = screen.query_one("#search-build-bar", ProgressBar)
        await wait_for(pilot, lambda: screen.build_job and bar.display, what="build started")
        seen: set[float] = set()
        await wait_for(pilot, lambda: seen.add(bar.progress or 0) or not screen.build_job,
                       timeout=60, what="build finished")
        await wait_for(pilot, lambda: any(s.startswith("index ready") for s in statuses),
                       what="ready announced")
        # the job's end is one toast (the app's), the status line says what to do next
        await wait_for(pilot, lambda: any("index_build" in str(n.message)
                                          for n in app._notifications), what="the toast")
        await pilot.pause(0.5)
        # (the warning for the query typed before any index is not about the job's end)
        toasts = [str(n.message) for n in app._notifications
                  if "index" in str(n.message) and "no index yet" not in str(n.message)]
        assert len(toasts) == 1 and toasts[0].endswith("completed"), toasts
        building = [s for s in statuses if s.startswith("building index")]
        assert any("running" in s for s in building), building  # progress shown in place
        assert "completed" in building[-1] and max(seen) == 1.0
        assert not bar.display
        await wait_for(pilot, lambda: screen.source.index_items, what="index listed")
        assert screen.source.index_items == 48
        assert screen.check_action("build", ()) is False
        before = screen.searches
        await pilot.press("n")
        await wait_results(pilot, screen, before)
        assert len(screen.hits) == 12
        await wait_for(pilot, lambda: " results in " in statuses[-1], what="results announced")
        assert any(s.startswith("loading model") for s in statuses), statuses


async def test_sample_queries_english_and_korean(indexed):
    app = LabdeckApp(home=indexed, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_search(pilot, app)
        samples = screen.adapter.samples
        english = next(q for q in samples if q.isascii())
        korean = next(q for q in samples if any("\uac00" <= ch <= "\ud7a3" for ch in q))
        for query in (english, korean):
            button = next(b for b in screen.query(Button) if b.name == query)
            before = screen.searches
            await pilot.click(button)
            await wait_results(pilot, screen, before)
            assert screen.last_query == ("text", query)
            assert screen.query_one("#search-query", Input).value == query
            grid = screen.query_one(ThumbGrid)
            assert len(grid.hits) == 12 and all(h.image_path for h in grid.hits)
            assert [h.rank for h in grid.hits] == list(range(1, 13))
            assert " results in " in screen.status and " ms" in screen.status
        # typing a query works too
        await pilot.press("slash")
        screen.query_one("#search-query", Input).value = ""
        await pilot.press(*"blue square", "enter")
        before = screen.searches
        await wait_for(pilot, lambda: screen.last_query == ("text", "blue square"))
        await wait_results(pilot, screen, before - 1)


def _ranked(screen) -> list[tuple[str, float]]:
    return [(h.item_id, h.score) for h in screen.hits]


async def test_switching_options_changes_results(indexed):
    app = LabdeckApp(home=indexed, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_search(pilot, app)
        opts = screen.adapter.options
        names = [o.name for o in opts]
        assert len(opts) >= 2
        # the footer labels of the option keys come from the adapter's options
        descs = {b.id: b.description for _, b in screen._bindings}
        assert descs["search.option_next"].startswith(opts[0].label or opts[0].name)
        assert descs["search.option_cycle"] == (opts[1].label or opts[1].name)
        before = screen.searches
        await pilot.press("n")
        await wait_results(pilot, screen, before)
        base = _ranked(screen)
        first0, second0 = screen.values[names[0]], screen.values[names[1]]

        before = screen.searches
        await pilot.press("right_square_bracket")  # next value of the first option
        await wait_results(pilot, screen, before)
        assert screen.values[names[0]] != first0
        assert screen.hits[0].extra.get(names[0]) == screen.values[names[0]]
        moved = _ranked(screen)
        assert moved != base

        before = screen.searches
        await pilot.press("left_square_bracket")  # and back: the first ranking again
        await wait_results(pilot, screen, before)
        assert screen.values[names[0]] == first0 and _ranked(screen) == base

        before = screen.searches
        await pilot.press("h")  # the second option
        await wait_results(pilot, screen, before)
        assert screen.values[names[1]] != second0
        assert _ranked(screen) != base
        assert str(screen.values[names[1]]) in screen.status


async def test_image_query_by_path_and_more_like_this(indexed):
    app = LabdeckApp(home=indexed, poll_s=0.2)
    thumbs = sorted((indexed / "runs" / "1" / "indexes").rglob("thumbs/*.png"))
    assert thumbs
    target = thumbs[3]
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_search(pilot, app)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ImagePathPrompt))
        prompt = app.screen
        inp = prompt.query_one(Input)
        stem = str(target)[:-5]  # ".../00000": ten thumbnails share it
        assert len(path_matches(stem)) >= 2
        inp.value = stem
        await pilot.press("tab")  # ambiguous: stays at the common prefix
        assert inp.value == stem and "000003.png" in str(prompt.query_one("#path-hint").render())
        await pilot.press("3", "tab")  # unique: completes the file name
        await wait_for(pilot, lambda: inp.value == str(target), what="path completed")
        before = screen.searches
        await pilot.press("enter")
        await wait_results(pilot, screen, before)
        assert screen.last_query == ("image", str(target))
        table = screen.query_one(HitList)
        assert table.display and table.row_count == 12
        assert all(h.text for h in screen.hits)  # image -> text: captions with scores

        # "more like this" on a text query's selected thumbnail
        before = screen.searches
        await pilot.press("n")
        await wait_results(pilot, screen, before)
        grid = screen.query_one(ThumbGrid)
        grid.focus()
        await pilot.press("right", "right")
        assert grid.selected == 2
        chosen = grid.selected_hit.image_path
        before = screen.searches
        await pilot.press("m")
        await wait_results(pilot, screen, before)
        assert screen.last_query == ("image", chosen)
        assert screen.query_one(HitList).row_count == 12


async def test_enter_opens_a_hit_and_more_like_this_from_there(indexed):
    app = LabdeckApp(home=indexed, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_search(pilot, app)
        before = screen.searches
        await pilot.press("n")
        await wait_results(pilot, screen, before)
        grid = screen.query_one(ThumbGrid)
        grid.focus()
        await pilot.press("right")
        hit = grid.selected_hit
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HitDetail), what="hit opened")
        shown = " ".join(str(label.render()) for label in app.screen.query("Label"))
        assert hit.text in shown and f"#{hit.rank}" in shown and hit.item_id in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="detail closed")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HitDetail), what="hit reopened")
        before = screen.searches
        await pilot.press("m")
        await wait_results(pilot, screen, before)
        assert screen.last_query == ("image", hit.image_path)
        # an image query's text results open the same way (enter on a row)
        table = screen.query_one(HitList)
        table.focus()
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HitDetail), what="row opened")
        assert app.screen.hit is table.selected_hit
        await pilot.press("escape")


async def test_bad_input_gets_clear_messages(indexed, tmp_path):
    app = LabdeckApp(home=indexed, poll_s=0.2)
    junk = tmp_path / "not-an-image.png"
    junk.write_text("hello")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_search(pilot, app)
        # empty query
        await pilot.press("slash", "enter")
        await wait_for(pilot, lambda: "empty" in screen.status)
        assert screen.query_one("#search-status").has_class("error")
        # a path that does not exist: the prompt says so and stays open
        await pilot.press("escape", "o")
        await wait_for(pilot, lambda: isinstance(app.screen, ImagePathPrompt))
        prompt = app.screen
        prompt.query_one(Input).value = str(tmp_path / "missing.png")
        await pilot.press("enter")
        err = prompt.query_one("#path-error")
        await wait_for(pilot, lambda: "no such file" in str(err.render()))
        assert isinstance(app.screen, ImagePathPrompt)
        # a file that is not an image: the search reports it, nothing crashes
        prompt.query_one(Input).value = str(junk)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "cannot read image" in screen.status, timeout=60)
        assert screen.query_one("#search-status").has_class("error")
        assert app.screen is screen and not screen.busy
        # the screen still answers a good query afterwards
        before = screen.searches
        await pilot.press("n")
        await wait_results(pilot, screen, before)
        assert len(screen.hits) == 12


async def test_eval_from_search_area_lands_in_evals_tab(indexed):
    from tui.widgets.result_view import ResultView
    from tui.widgets.search_evals import EvalsPane

    app = LabdeckApp(home=indexed, scheduler=True, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_search(pilot, app)
        pane = screen.query_one(EvalsPane)
        already = len(pane.records)
        await pilot.press("v")
        await wait_for(pilot, lambda: len(pane.records) > already, timeout=60,
                       what="eval result listed")
        await pilot.press("e")
        assert screen.query_one("#search-tabs").active == "tab-evals"
        await wait_for(pilot, lambda: pane.query(ResultView), what="comparison shown")
        table = pane.query_one("#result-table")
        assert table.row_count == len(pane.records[0].data["rows"])


def test_cli_search_show_prints_thumbnails(indexed):
    import os
    import subprocess
    import sys

    env = {**os.environ, "LABDECK_THUMBS": "halfcell", "COLUMNS": "80"}
    out = subprocess.run(
        [sys.executable, "-m", "cli", "search", "text", "a red circle",
         "--home", str(indexed), "--run", "shapes/1", "--show"],
        capture_output=True, text=True, env=env, timeout=120,
        cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert "12 results in" in out.stdout or "10 results in" in out.stdout
    assert "▀" in out.stdout  # half-cell thumbnails
    assert "rich" not in out.stderr
