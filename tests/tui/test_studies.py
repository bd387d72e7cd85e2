"""Pilot tests of the Studies area with real study workers: create from the UI (an invalid range
is flagged inline and nothing is created, then fixed), start and watch trials arrive, see the
importance at the end, promote the best trial into a new experiment; cancel and resume."""

from __future__ import annotations

import sys

import pytest
from textual.widgets import Checkbox, DataTable, Input, Select, Static

from engine.api import Engine
from tui.app import LabdeckApp
from tui.screens.experiment_detail import ExperimentDetailScreen
from tui.screens.studies import StudiesScreen
from tui.screens.study_detail import StudyDetailScreen
from tui.screens.study_form import ExperimentPicker, StudyForm
from tui.widgets.study_chart import ObjectiveChart

from .conftest import settle, wait_for
from .seed import REPO

TOY = f"{sys.executable} -m engine.examples.toy_train --lr {{lr}} --steps {{steps}} --sleep 0"


async def _make_experiment(home) -> None:
    async with Engine.session(home) as engine:
        await engine.create_experiment("toy", "script", {"command": TOY, "cwd": str(REPO),
                                                         "lr": 0.01, "steps": 30},
                                       objective="val/loss", direction="minimize")


def param_row(form: StudyForm, name: str):
    return next(r for r in form.rows if r.param == name)


def set_range(row, lo: str, hi: str, log: bool) -> None:
    row.query_one(".p-search", Checkbox).value = True
    row.query_one(".p-kind", Select).value = "float"
    row.query_one(".p-min", Input).value = lo
    row.query_one(".p-max", Input).value = hi
    row.query_one(".p-log", Checkbox).value = log


def text_of(widget: Static) -> str:
    return str(widget.render())


async def _open_form(app, pilot) -> StudyForm:
    await pilot.press("T")
    await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.loaded,
                   what="studies area")
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, ExperimentPicker))
    await wait_for(pilot, lambda: app.screen.query_one("OptionList").option_count == 1)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, StudyForm) and app.screen.ready,
                   what="study form")
    return app.screen


@pytest.mark.slow
async def test_create_invalid_then_fix_run_and_promote(home):
    await _make_experiment(home)
    app = LabdeckApp(home=home, scheduler=True, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded, what="experiments loaded")
        form = await _open_form(app, pilot)
        assert [r.param for r in form.rows] == ["timeout_s", "lr", "steps"]
        lr = param_row(form, "lr")
        form.query_one("#study-name", Input).value = "lr-search"
        form.query_one("#set-n_trials", Input).value = "4"
        form.query_one("#set-tuner", Select).value = "random"
        # min >= max: flagged inline (the engine's reason) while typing, and on create
        set_range(lr, "0.1", "0.001", log=True)
        err = lr.query_one(".perror", Static)
        await wait_for(pilot, lambda: "must be < max" in text_of(err), what="inline range error")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form and lr.has_class("invalid")
        # log scale with min <= 0
        lr.query_one(".p-min", Input).value = "0"
        await wait_for(pilot, lambda: "log scale needs min > 0" in text_of(err))
        async with Engine.session(home) as engine:
            assert await engine.list_studies() == []
        # fix it and create: the detail opens
        lr.query_one(".p-min", Input).value = "0.001"
        lr.query_one(".p-max", Input).value = "0.1"
        await wait_for(pilot, lambda: not lr.has_class("invalid"), what="error cleared")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyDetailScreen)
                       and app.screen.loaded, what="study created and opened")
        screen = app.screen
        assert screen.study.space["lr"] == {"kind": "float", "low": 0.001, "high": 0.1,
                                            "log": True}
        assert screen.study.n_trials == 4 and screen.study.tuner == "random"
        # start it and watch the trials arrive
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.trials, timeout=60, what="first trial row")
        table = screen.query_one("#trials", DataTable)
        await wait_for(pilot, lambda: table.row_count >= 1)
        await wait_for(pilot, lambda: screen.study.status == "completed", timeout=90,
                       what="study completed")
        await wait_for(pilot, lambda: table.row_count == 4 and screen.importance is not None,
                       what="all trials and the importance")
        chart = screen.query_one(ObjectiveChart)
        assert len(chart.points) == 4 and chart.best_line[0]
        assert "★" in [str(table.get_row_at(i)[0]) for i in range(4)]
        assert "lr" in text_of(screen.query_one("#importance", Static))
        assert "trial 4/4" in str(screen.query_one("#study-progress").render())
        best = screen.study.best_trial
        # promote: the new experiment opens with its origin, ready to launch (r)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentDetailScreen)
                       and app.screen.loaded, what="promoted experiment opened")
        detail = app.screen
        assert detail.exp_name == "lr-search-best"
        assert f"origin: from study lr-search trial {best}" in text_of(
            detail.query_one("#config", Static))
    async with Engine.session(home) as engine:
        exp = await engine.get_experiment("lr-search-best")
        study = await engine.get_study("lr-search")
        assert exp.config["lr"] == study.best_params["lr"]
        assert exp.origin == f"from study lr-search trial {best}"


async def test_form_flags_settings_and_empty_choices(home):
    await _make_experiment(home)
    app = LabdeckApp(home=home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        form = await _open_form(app, pilot)
        steps = param_row(form, "steps")
        steps.query_one(".p-search", Checkbox).value = True
        steps.query_one(".p-kind", Select).value = "categorical"
        steps.query_one(".p-choices", Input).value = " , "
        err = steps.query_one(".perror", Static)
        await wait_for(pilot, lambda: "empty choices" in text_of(err), what="empty choices")
        steps.query_one(".p-choices", Input).value = "20,40"
        await wait_for(pilot, lambda: not steps.has_class("invalid"))
        form.query_one("#set-tuner", Select).value = "random"
        form.query_one("#set-pruner", Select).value = "median"  # random does not prune
        form.query_one("#set-n_trials", Input).value = "two"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "expected a whole number (int)"
                       in text_of(form.query_one("#err-n_trials")))
        form.query_one("#set-n_trials", Input).value = "2"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "does not prune" in text_of(form.query_one("#err-pruner")),
                       what="engine's pruner error inline")
        assert form.query_one("#s-pruner").has_class("invalid") and app.screen is form
        form.query_one("#set-pruner", Select).value = "none"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyDetailScreen))
    async with Engine.session(home) as engine:
        study = await engine.get_study("toy-study")
        assert study.space["steps"] == {"kind": "categorical", "choices": [20, 40]}
        assert study.n_trials == 2 and study.tuner == "random"


@pytest.mark.slow
async def test_cancel_with_confirm_then_resume(home, monkeypatch):
    monkeypatch.setenv("LABDECK_CANCEL_GRACE", "2")
    async with Engine.session(home) as engine:
        await engine.create_experiment("slow", "script", {
            "command": TOY.replace("--sleep 0", "--sleep 0.02"), "cwd": str(REPO),
            "lr": 0.01, "steps": 5000}, objective="val/loss", direction="minimize")
        await engine.create_study("slow-study", "slow", {"lr": "1e-3:1e-1:log"}, n_trials=3,
                                  tuner="random")
    app = LabdeckApp(home=home, scheduler=True, poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.loaded
                       and app.screen.studies)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyDetailScreen)
                       and app.screen.loaded)
        screen = app.screen
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.study.counts["running"] == 1, timeout=60,
                       what="a trial running")
        # the progress line is drawn once the trials are read too (a second engine call)
        await wait_for(pilot, lambda: "1 running" in str(
            screen.query_one("#study-progress").render()), what="progress drawn")
        await pilot.press("x")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.study.status in ("cancelled", "stopped")
                       and not screen.study.counts["running"], timeout=60, what="cancelled")
        # resume: start again; the cancelled trial's slot is run again
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.study.status in ("queued", "running"), timeout=30,
                       what="resumed")
        await wait_for(pilot, lambda: screen.study.counts["running"] == 1, timeout=60)
        await pilot.press("x")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.study.status in ("cancelled", "stopped")
                       and not screen.study.counts["running"], timeout=60, what="cancelled")


async def test_new_study_from_experiments_area(home):
    await _make_experiment(home)
    app = LabdeckApp(home=home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded and app.screen.experiments)
        await pilot.press("t")  # on the selected experiment
        await wait_for(pilot, lambda: isinstance(app.screen, StudyForm) and app.screen.ready)
        form = app.screen
        assert form.experiment == "toy"
        set_range(param_row(form, "lr"), "0.001", "0.1", log=True)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyDetailScreen)
                       and app.screen.loaded, what="study opened in the Studies area")
        assert app.current_mode == "studies" and app.screen.study_name == "toy-study"
