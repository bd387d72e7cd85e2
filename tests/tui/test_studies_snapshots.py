"""Snapshots of the Studies area (list and detail, 80x24 and 120x40) on seeded studies: fixed
trial values, states and timestamps written through the studies mirror helper, with
the TUI clock frozen. Also: the detail collapses into tabs at 80x24 and stays usable."""

from __future__ import annotations

import asyncio
import json
import math
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable, TabbedContent

from engine.api import Engine
from engine.schema import connect_sync, write_tx
from engine.studies.mirror import mirror_trial
from engine.studies.tuner import TunerTrial
from tui.app import LabdeckApp
from tui.screens.studies import StudiesScreen
from tui.screens.study_detail import StudyDetailScreen
from tui.widgets import header

from .conftest import settle, wait_for
from .seed import FROZEN_NOW, REPO

CMD = (f"{sys.executable} -m engine.examples.toy_train --lr {{lr}} --steps {{steps}}"
       " --seed {seed} --sleep 0")
LRS = (0.0021, 0.047, 0.0012, 0.012, 0.083, 0.0065, 0.031, 0.0034, 0.019, 0.0088, 0.056, 0.015)


def _value(lr: float, steps: int, seed: int) -> float:
    return round(0.12 + 0.35 * (math.log10(lr) + 1.7) ** 2 + 4.0 / steps + 0.01 * seed, 4)


def _trials(n: int, running: int | None = None) -> list[TunerTrial]:
    out = []
    t0 = FROZEN_NOW - 3600
    for i in range(n):
        lr, steps, seed = LRS[i % len(LRS)], (20, 40, 60)[i % 3], i % 2
        value = _value(lr, steps, seed)
        start = t0 + 150 * i
        state, attrs = "complete", {}
        inter = [(s, round(value * (1 + 0.4 / (s + 1)), 4)) for s in range(3)]
        if i in (2, 7):
            state, value, inter = "pruned", None, inter[:1]
        elif i == 5:
            state, value, inter, attrs = "failed", None, [], {"error": "exit code 1"}
        elif i == running:
            state, value, inter = "running", None, inter[:1]
        out.append(TunerTrial(i, state, {"lr": lr, "steps": steps, "seed": seed}, value,
                               inter, start, None if state == "running" else start + 40 + i,
                               attrs))
    return out


async def _create(home: Path) -> None:
    async with Engine.session(home) as engine:
        await engine.create_experiment("toy-base", "script",
                                       {"command": CMD, "cwd": str(REPO), "lr": 0.01,
                                        "steps": 30, "seed": 0},
                                       objective="val/loss", direction="minimize")
        space = {"lr": "1e-3:1e-1:log", "steps": "20:60", "seed": "0,1"}
        await engine.create_study("lr-search", "toy-base", space, n_trials=12, tuner="random",
                                  seed=7)
        await engine.create_study("lr-live", "toy-base", space, n_trials=20, tuner="random",
                                  seed=8, workers=2)
        await engine.create_study("lr-next", "toy-base", {"lr": "1e-4:1e-2:log"}, n_trials=8,
                                  tuner="random")


def seed_studies(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    asyncio.run(_create(home))
    conn = connect_sync(home / "labdeck.db")
    ids = dict(conn.execute("SELECT name, id FROM studies").fetchall())
    with write_tx(conn):
        for t in _trials(12):
            mirror_trial(conn, ids["lr-search"], t, None)
        for t in _trials(6, running=4):
            mirror_trial(conn, ids["lr-live"], t, None)
        conn.execute("UPDATE studies SET status='completed', importance=?, created=?, updated=?"
                     " WHERE name='lr-search'",
                     (json.dumps({"lr": 0.74, "steps": 0.21, "seed": 0.05}),
                      FROZEN_NOW - 3700, FROZEN_NOW - 1800))
        conn.execute("UPDATE studies SET status='running', created=?, updated=?"
                     " WHERE name='lr-live'", (FROZEN_NOW - 3700, FROZEN_NOW - 60))
        conn.execute("UPDATE studies SET created=?, updated=? WHERE name='lr-next'",
                     (FROZEN_NOW - 7200, FROZEN_NOW - 7200))
    conn.close()
    return home


@pytest.fixture
def studies_home(home: Path, monkeypatch, frozen_clock) -> Path:
    monkeypatch.setattr(header, "short_home", lambda path: "~/.labdeck")
    return seed_studies(home)


def _list(app):
    async def run_before(pilot) -> None:
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.loaded
                       and app.screen.query_one(DataTable).row_count == 3)
        await pilot.pause()

    return run_before


def _detail(app, name: str):
    async def run_before(pilot) -> None:
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.loaded)
        app.screen.open_study(name)
        await wait_for(pilot, lambda: isinstance(app.screen, StudyDetailScreen)
                       and app.screen.loaded and app.screen.query("#trials"))
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_studies_list(studies_home, snap_compare, size):
    app = LabdeckApp(home=studies_home)
    assert snap_compare(app, terminal_size=size, run_before=_list(app))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_study_detail_completed(studies_home, snap_compare, size):
    app = LabdeckApp(home=studies_home)
    assert snap_compare(app, terminal_size=size, run_before=_detail(app, "lr-search"))


def test_snapshot_study_detail_running_wide(studies_home, snap_compare):
    app = LabdeckApp(home=studies_home)
    assert snap_compare(app, terminal_size=(120, 40), run_before=_detail(app, "lr-live"))


def test_snapshot_study_detail_chart_tab_80x24(studies_home, snap_compare):
    app = LabdeckApp(home=studies_home)
    detail = _detail(app, "lr-search")

    async def run_before(pilot) -> None:
        await detail(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.query_one(TabbedContent).active == "tab-chart")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def test_detail_tabs_at_80x24_sort_and_progress(studies_home):
    app = LabdeckApp(home=studies_home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _detail(app, "lr-live")(pilot)
        screen = app.screen
        tabs = screen.query_one(TabbedContent)
        assert tabs.active == "tab-trials"
        progress = str(screen.query_one("#study-progress").render())
        assert "trial 6/20" in progress and "1 running" in progress and "1 pruned" in progress
        assert "ETA" in progress
        table = screen.query_one("#trials", DataTable)
        assert [str(c.label).split()[0] for c in table.columns.values()][:4] == [
            "★", "#", "state", "value"]
        while screen.sort_column != "value":
            await pilot.press("o")
        first = str(table.get_row_at(0)[0])
        assert first == "★"  # best first when sorted by value (minimize)
        for key, tab in (("2", "tab-chart"), ("3", "tab-best"), ("4", "tab-importance")):
            await pilot.press(key)
            await wait_for(pilot, lambda tab=tab: tabs.active == tab)
        assert "appears when the study completes" in str(
            screen.query_one("#importance").render())
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: not screen.query(TabbedContent)
                       and screen.query("#study-side"), what="side by side when wide")


def test_snapshot_study_form_with_error_80x24(studies_home, snap_compare):
    from textual.widgets import Checkbox, Input

    from tui.screens.study_form import StudyForm

    app = LabdeckApp(home=studies_home)

    async def run_before(pilot) -> None:
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.loaded)
        app.push_screen(StudyForm("toy-base"))
        await wait_for(pilot, lambda: isinstance(app.screen, StudyForm) and app.screen.ready)
        row = next(r for r in app.screen.rows if r.param == "lr")
        row.query_one(".p-search", Checkbox).value = True
        row.query_one(".p-min", Input).value = "0"
        await wait_for(pilot, lambda: row.has_class("invalid"))
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


async def test_running_trial_duration_ticks_without_engine_calls(studies_home, monkeypatch,
                                                                 frozen_clock):
    app = LabdeckApp(home=studies_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await _detail(app, "lr-live")(pilot)
        table = app.screen.query_one("#trials", DataTable)
        assert str(table.get_cell("4", "duration")) == "50m00s"
        calls = []
        real = app.engine.study_trials

        async def counted(*a, **kw):
            calls.append(a)
            return await real(*a, **kw)

        monkeypatch.setattr(app.engine, "study_trials", counted)
        frozen_clock.at = FROZEN_NOW + 95
        await wait_for(pilot, lambda: str(table.get_cell("4", "duration")) == "51m35s",
                       timeout=5, what="the running trial's duration to move with the clock")
        assert not calls


def test_eta_counts_down_while_a_trial_runs(frozen_clock):
    from types import SimpleNamespace as NS

    from tui.screens.study_format import eta_seconds

    study = NS(status="running", counts={"left": 2, "running": 1}, settings={"workers": 1})
    done = [NS(state="complete", started=0.0, finished=100.0)]
    running = NS(state="running", started=1000.0, finished=None)
    etas = []
    for t in (1000.0, 1030.0, 1100.0, 1500.0):
        frozen_clock.at = t
        etas.append(eta_seconds(study, [*done, running]))
    assert etas == [300.0, 270.0, 200.0, 200.0]  # an overdue trial adds nothing
