"""The study detail's views for big studies (issue 14): the objective chart's log-y switch and
top-K filter (direction-aware), and the parallel coordinates (one axis per searched parameter
plus the objective, the best trial marked, keyboard selection of a trial with its values
printed), on studies seeded through the trials mirror: the snapshot fixture's small study
and 150-trial studies with six parameters, one minimized and one maximized."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from textual.widgets import DataTable, TabbedContent

from engine.api import Engine
from engine.schema import connect_sync, write_tx
from engine.studies.mirror import mirror_trial
from engine.studies.tuner import TunerTrial
from tui.app import LabdeckApp
from tui.screens.help import sections
from tui.screens.studies import StudiesScreen
from tui.screens.study_detail import StudyDetailScreen
from tui.widgets import header
from tui.widgets.parallel_coords import BEST_MARK, PICKED_MARK, ParallelCoords, axis_columns
from tui.widgets.study_chart import ObjectiveChart

from .conftest import settle, wait_for
from .seed import FROZEN_NOW, REPO
from .test_studies_snapshots import seed_studies

BIG = 150
SPACE = {"lr": "1e-4:1e-1:log", "wd": "1e-6:1e-2:log", "dropout": "0.0:0.5", "layers": "1:8",
         "opt": "adam,sgd,rmsprop", "batch": "16,32,64"}
PARAMS = list(SPACE)
# never run: the trials are written into the mirror
CMD = "echo " + " ".join(f"{{{p}}}" for p in PARAMS)


def big_params(i: int) -> dict:
    """Spread deterministically over the space (no RNG: the same study on every machine)."""
    f = (i * 0.618034) % 1.0
    g = (i * 0.414214) % 1.0
    return {"lr": 10 ** (-4 + 3 * f), "wd": 10 ** (-6 + 4 * g), "dropout": round(0.5 * g, 3),
            "layers": 1 + i % 8, "opt": ("adam", "sgd", "rmsprop")[i % 3],
            "batch": (16, 32, 64)[(i // 3) % 3]}


def big_value(p: dict) -> float:
    return round(0.1 + 0.2 * (math.log10(p["lr"]) + 2.5) ** 2 + abs(p["dropout"] - 0.2)
                 + 0.01 * p["layers"], 6)


async def _create_big(home: Path) -> None:
    async with Engine.session(home) as engine:
        base = {"command": CMD, "cwd": str(REPO), "lr": 0.01, "wd": 1e-4, "dropout": 0.1,
                "layers": 2, "opt": "adam", "batch": 32}
        for exp, objective, direction in (("loss-exp", "val/loss", "minimize"),
                                          ("acc-exp", "val/acc", "maximize")):
            await engine.create_experiment(exp, "script", base, objective=objective,
                                           direction=direction)
        await engine.create_study("big-min", "loss-exp", SPACE, n_trials=BIG, tuner="random")
        await engine.create_study("big-max", "acc-exp", SPACE, n_trials=BIG, tuner="random")


def seed_big(home: Path) -> dict[str, dict[int, float]]:
    """Two 150-trial studies (every 10th pruned, every 25th failed); returns each study's
    complete trials' values by number."""
    home.mkdir(parents=True, exist_ok=True)
    asyncio.run(_create_big(home))
    conn = connect_sync(home / "labdeck.db")
    ids = dict(conn.execute("SELECT name, id FROM studies").fetchall())
    values: dict[str, dict[int, float]] = {"big-min": {}, "big-max": {}}
    with write_tx(conn):
        for name, sign in (("big-min", 1.0), ("big-max", -1.0)):
            for i in range(BIG):
                p = big_params(i)
                value: float | None = round(sign * big_value(p), 6)
                state = "complete"
                if i % 10 == 9:
                    state, value = "pruned", None
                elif i % 25 == 24:
                    state, value = "failed", None
                start = FROZEN_NOW - 7200 + 40 * i
                mirror_trial(conn, ids[name], TunerTrial(i, state, p, value, [], start,
                                                         start + 30, {}), None)
                if value is not None:
                    values[name][i] = value
            conn.execute("UPDATE studies SET status='completed' WHERE name=?", (name,))
    conn.close()
    return values


@pytest.fixture
def studies_home(home: Path, monkeypatch, frozen_clock) -> Path:
    """The Studies snapshots' seeded studies (lr-search: 12 trials over lr, steps, seed)."""
    monkeypatch.setattr(header, "short_home", lambda path: "~/.labdeck")
    return seed_studies(home)


@pytest.fixture
def big_home(home: Path, frozen_clock) -> tuple[Path, dict[str, dict[int, float]]]:
    return home, seed_big(home)


async def open_detail(app, pilot, name: str) -> StudyDetailScreen:
    await pilot.press("T")
    await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.loaded)
    app.screen.open_study(name)
    await wait_for(pilot, lambda: isinstance(app.screen, StudyDetailScreen)
                   and app.screen.loaded and app.screen.query("#trials"), what="study detail")
    await settle(pilot)
    return app.screen


def ours(screen: StudyDetailScreen, key: str) -> bool:
    """Whether ``key`` is the parallel coordinates' (the screen's) binding just now."""
    active = screen.active_bindings.get(key)
    return active is not None and (active.binding.id or "").startswith("study.")


def plain(parallel: ParallelCoords) -> list[str]:
    width, height = parallel.content_size
    return [strip.text for strip in parallel.draw(width, height)]


async def test_log_y_switches_the_chart_y_scale(studies_home):
    app = LabdeckApp(home=studies_home)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(app, pilot, "lr-search")
        chart = screen.query_one(ObjectiveChart)
        assert not chart.log_y and chart.plt.monitor.yscale[0] == "linear"
        await pilot.press("l")
        await wait_for(pilot, lambda: chart.log_y, what="log-y on")
        assert chart.plt.monitor.yscale[0] == "log"
        assert "log-y" in chart.label
        assert len(chart.points) == 9 and chart.left_out == 0  # every value is > 0
        await pilot.press("l")
        await wait_for(pilot, lambda: not chart.log_y, what="log-y off")
        assert chart.plt.monitor.yscale[0] == "linear" and "log-y" not in chart.label


@pytest.mark.parametrize("study", ["big-min", "big-max"])
async def test_top_k_keeps_exactly_the_k_best_trials(big_home, study):
    home, values = big_home
    complete = values[study]
    maximize = study == "big-max"
    ranked = sorted(complete, key=lambda n: ((-1 if maximize else 1) * complete[n], n))
    app = LabdeckApp(home=home)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(app, pilot, study)
        chart = screen.query_one(ObjectiveChart)
        assert len(chart.points) == len(complete) and chart.pruned == []  # no intermediates
        for k in (10, 50, 100):
            await pilot.press("k")
            await wait_for(pilot, lambda k=k: screen.top_k == k)
            await settle(pilot)
            assert sorted(n for n, _ in chart.points) == sorted(ranked[:k])
            assert f"top {k} of {len(complete)}" in chart.label
            # the best-so-far line is the whole study's, from where it enters the top K on
            worst = complete[ranked[k - 1]]
            assert chart.best_line[1] and all(
                (y >= worst) if maximize else (y <= worst) for y in chart.best_line[1])
            assert chart.best_line[1][-1] == complete[ranked[0]]
        await pilot.press("k")
        await wait_for(pilot, lambda: screen.top_k is None)
        await settle(pilot)
        assert len(chart.points) == len(complete)
        # the parallel coordinates draw the same K trials, best first
        await pilot.press("k")
        await pilot.press("5")
        parallel = screen.query_one(ParallelCoords)
        await wait_for(pilot, lambda: len(parallel.lines) == 10, what="top 10 drawn")
        assert [ln.number for ln in parallel.lines] == ranked[:10]


async def test_parallel_coordinates_axes_best_and_keyboard_selection(big_home):
    home, values = big_home
    complete = values["big-min"]
    ranked = sorted(complete, key=lambda n: (complete[n], n))
    app = LabdeckApp(home=home)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_detail(app, pilot, "big-min")
        tabs = screen.query_one(TabbedContent)
        table = screen.query_one("#trials", DataTable)
        assert not ours(screen, "left")  # the table has the arrows
        await pilot.press("5")
        await wait_for(pilot, lambda: tabs.active == "tab-parallel")
        parallel = screen.query_one(ParallelCoords)
        await wait_for(pilot, lambda: screen.focused is parallel, what="parallel focused")
        await settle(pilot)
        # one axis per searched parameter, then the objective
        assert [a.name for a in parallel.axes] == [*PARAMS, "val/loss"]
        assert [a.log for a in parallel.axes] == [True, True, False, False, False, False, False]
        assert parallel.axes[4].choices == ("adam", "sgd", "rmsprop")
        assert len(parallel.lines) == len(complete)
        lines = plain(parallel)
        width = parallel.content_size.width
        cols = axis_columns(7, width)
        names = lines[1]
        assert all(names.find(n[:5]) >= 0 for n in PARAMS)
        # the best trial is highlighted first and marked on every axis, with its values
        assert parallel.best == ranked[0] == parallel.highlighted
        plot = lines[3:-3]
        for col in cols:
            assert any(row[col] == BEST_MARK for row in plot), f"no ★ on the axis at {col}"
        assert f"#{ranked[0]} {BEST_MARK} best" in "\n".join(lines[-2:])
        # focus starts on the objective: up walks to the next worse trial
        assert parallel.focus_axis == 6
        await pilot.press("up")
        await wait_for(pilot, lambda: parallel.highlighted == ranked[1], what="second best")
        await settle(pilot)
        lines = plain(parallel)
        readout = " ".join(lines[-2:])
        assert f"{PICKED_MARK} #{ranked[1]}" in readout and "rank 2/" in readout
        picked = next(t for t in screen.trials if t.number == ranked[1])
        assert f"opt {picked.params['opt']}" in readout
        assert f"layers {picked.params['layers']}" in readout
        for col in cols:  # the highlighted trial is marked on every axis too
            assert any(row[col] in (PICKED_MARK, BEST_MARK) for row in lines[3:-3])
        # the trial table's cursor follows
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == str(
            ranked[1])
        # left moves the focused axis; up/down then walk that axis's values
        await pilot.press("left", "left", "left")  # layers
        await wait_for(pilot, lambda: parallel.focus_axis == 3)
        before = picked.params["layers"]
        seen = [before]
        for _ in range(30):
            await pilot.press("up")
            await settle(pilot)
            trial = next(t for t in screen.trials if t.number == parallel.highlighted)
            seen.append(trial.params["layers"])
        assert seen == sorted(seen) and seen[-1] > before
        assert ours(screen, "left") and ours(screen, "up")  # in the footer, first
        assert [b.binding.id for b in screen.active_bindings.values()][1:3] == [
            "study.axis_left", "study.axis_right"]
        await pilot.press("1")  # back to the table: the arrows are the table's again
        await wait_for(pilot, lambda: screen.focused is table)
        assert not ours(screen, "left")


async def test_wide_layout_swaps_the_chart_for_parallel_coordinates(studies_home):
    app = LabdeckApp(home=studies_home)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(app, pilot, "lr-search")
        chart = screen.query_one(ObjectiveChart)
        parallel = screen.query_one(ParallelCoords)
        assert chart.display and not parallel.display
        await pilot.press("5")
        await wait_for(pilot, lambda: parallel.display and screen.focused is parallel)
        assert not chart.display
        assert [a.name for a in parallel.axes] == ["lr", "steps", "seed", "val/loss"]
        assert parallel.best == 8 and len(parallel.lines) == 9  # pruned/failed: no value
        await pilot.press("2")
        await wait_for(pilot, lambda: chart.display and not parallel.display)


def test_help_lists_the_new_keys():
    ids = {b.id for _, bindings in sections(StudyDetailScreen, []) for b in bindings}
    assert {"study.log_y", "study.top_k", "study.pane_5", "study.axis_left",
            "study.axis_right", "study.trial_up", "study.trial_down"} <= ids


def test_snapshot_parallel_coordinates_80x24(studies_home, snap_compare):
    app = LabdeckApp(home=studies_home)

    async def run_before(pilot) -> None:
        await open_detail(app, pilot, "lr-search")
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen.focused, ParallelCoords))
        await pilot.press("up", "left")  # the second best, then the seed axis
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
