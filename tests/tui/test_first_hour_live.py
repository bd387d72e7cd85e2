"""What a new user sees while work runs (issue 15, items 7 and 13): fresh rows whatever the
load, a script run's steps and rate (it has no total), one toast per job end that names the
job once. Real scheduler, real workers, real commands."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
import time

from textual.widgets import DataTable

from engine.api import Engine
from engine.metric_writer import MetricWriter
from engine.schema import connect_sync
from tui.app import LabdeckApp
from tui.messages import DataChanged
from tui.screens.jobs import JobsScreen

from .conftest import wait_for

PY = sys.executable


def row_cells(app, table_id: str, key: str) -> list[str]:
    table = app.screen.query_one(f"#{table_id}", DataTable)
    return [str(c) for c in table.get_row(key)]


def _big_objective_series(home) -> None:
    """150k val/loss points on the running run of lr-sweep-1e-1: the experiments query
    (best objective per experiment) then takes tens of milliseconds, as on a loaded machine."""
    conn = connect_sync(home / "labdeck.db")
    writer = MetricWriter(conn, 3)
    for step in range(200, 150_200):
        writer.log({"val/loss": 0.2 + 1.0 / step}, step=step)
    writer.close()
    conn.close()


async def _a_change_lands_during_the_load(pilot) -> None:
    """Wait for a load of the rows to be running, post a DataChanged then (a running job's
    heartbeat commits every second, so a change lands during most loads), and check that
    the load under way is not thrown away: it ends as a success."""
    from textual.worker import WorkerState

    def running_load():
        return next((w for w in pilot.app.workers
                     if w.group == "experiments" and w.state == WorkerState.RUNNING), None)

    deadline = time.monotonic() + 5
    while (load := running_load()) is None:  # polled often: a load takes ~100 ms here
        assert time.monotonic() < deadline, "no load of the rows started"
        await asyncio.sleep(0.002)
    pilot.app.screen.post_message(DataChanged())
    await wait_for(pilot, lambda: load.state in (WorkerState.SUCCESS, WorkerState.CANCELLED,
                                                 WorkerState.ERROR), what="the load to end")
    assert load.state == WorkerState.SUCCESS, f"the load under way was {load.state.name}"


def _set_job_3(home, progress: float, message: str) -> None:
    db = sqlite3.connect(home / "labdeck.db")
    with db:
        db.execute("UPDATE jobs SET progress=?, message=? WHERE id=3", (progress, message))
    db.close()


async def test_experiment_rows_are_fresh_while_changes_keep_coming(seeded):
    """A change that lands while the rows load asks for one more load; it never cancels the
    one under way (changes coming faster than a slow load would starve the table)."""
    _big_objective_series(seeded)
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        assert "62%" in row_cells(app, "experiments", "lr-sweep-1e-1")[4]
        _set_job_3(seeded, 0.91, "")
        app.screen.post_message(DataChanged())  # what the app's poll posts for that commit
        await _a_change_lands_during_the_load(pilot)
        await wait_for(pilot, lambda: "91%" in row_cells(app, "experiments", "lr-sweep-1e-1")[4],
                       timeout=5, what="the rows to catch up")


async def test_rows_are_fresh_on_return_to_experiments(seeded):
    """Back from another area while a run moves on: the rows show where it is now, not where
    it was when we left ("▶ 0% e1" while the run was at 52%)."""
    _big_objective_series(seeded)
    app = LabdeckApp(home=seeded, poll_s=60)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        experiments = app.screen
        await pilot.press("J")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))
        _set_job_3(seeded, 0.52, "epoch 3")
        await pilot.press("E")  # back: the screen reloads its rows as it resumes
        assert app.screen is experiments
        # the run moves on while we look: heartbeats and metrics commit all the time
        app.screen.post_message(DataChanged())
        await _a_change_lands_during_the_load(pilot)
        await wait_for(pilot, lambda: row_cells(app, "experiments", "lr-sweep-1e-1")[4]
                       == "▶ 52% e3", timeout=5, what="fresh rows on return")


COUNTER = """
    import json, sys, time
    steps = int(sys.argv[1])
    for step in range(steps):
        print(json.dumps({"step": step, "loss": 1.0 / (step + 1)}), flush=True)
        time.sleep(0.05)
"""


async def _script_experiment(home, tmp_path, name: str, steps: int) -> None:
    script = tmp_path / "counter.py"
    script.write_text(textwrap.dedent(COUNTER))
    async with Engine.session(home) as engine:
        await engine.create_experiment(name, "script", {
            "command": f"{PY} {script} {{steps}}", "steps": steps, "cwd": str(tmp_path)},
            objective="loss", direction="minimize")


async def test_a_script_run_shows_its_steps_and_rate(home, tmp_path):
    """A script has no total: its run reads "▶ step 40 · 19.8/s", not "▶ 0%" all its life,
    in the experiments table and in the jobs table's progress column."""
    await _script_experiment(home, tmp_path, "counter", 400)
    app = LabdeckApp(home=home, scheduler=True, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await pilot.press("r")
        await wait_for(pilot, lambda: "/s" in row_cells(app, "experiments", "counter")[4],
                       timeout=60, what="steps and rate in the experiments table")
        cell = row_cells(app, "experiments", "counter")[4]
        assert cell.startswith("▶ step ") and "%" not in cell, cell
        await pilot.press("J")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.loaded)
        await wait_for(pilot, lambda: "/s" in row_cells(app, "jobs", "1")[4], timeout=30,
                       what="steps and rate in the jobs table")
        assert row_cells(app, "jobs", "1")[4].startswith("step ")
        await app.engine.cancel_job(1)
        await wait_for(pilot, lambda: row_cells(app, "jobs", "1")[3] == "■ cancelled",
                       timeout=60)


def _toasts(app) -> list[tuple[str, str]]:
    return [(n.title, str(n.message)) for n in app._notifications]


async def test_a_job_end_gives_one_toast_that_says_it_once(home, tmp_path):
    await _script_experiment(home, tmp_path, "quick", 5)
    app = LabdeckApp(home=home, scheduler=True, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        _, job_id = await app.engine.start_run("quick")
        await wait_for(pilot, lambda: any("completed" in t + m for t, m in _toasts(app)),
                       timeout=60, what="the job's toast")
        await pilot.pause(0.5)
        ended = [(t, m) for t, m in _toasts(app) if "completed" in t + m]
        assert len(ended) == 1, _toasts(app)
        title, message = ended[0]
        assert f"{title} {message}".count("completed") == 1, ended
        assert message.startswith("run 1 of quick completed: loss"), message
        assert str(job_id) in title


async def test_a_study_job_toast_names_the_study_once(home, tmp_path):
    await _script_experiment(home, tmp_path, "tiny", 3)
    async with Engine.session(home) as engine:
        await engine.create_study("lr-hunt", "tiny", ["steps=2:4"], n_trials=1,
                                  tuner="random")
    app = LabdeckApp(home=home, scheduler=True, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await app.engine.start_study("lr-hunt")
        await wait_for(pilot, lambda: any("lr-hunt" in m for _, m in _toasts(app)),
                       timeout=90, what="the study job's toast")
        messages = [m for _, m in _toasts(app) if "lr-hunt" in m]
        assert messages == ["study lr-hunt completed"], _toasts(app)


async def test_a_script_experiment_made_in_the_form_shows_its_best_objective(home, tmp_path):
    """The script adapter's form has the objective and its direction: the experiment made
    there ranks its runs, and the table shows the best value once a run logged it."""
    from textual.widgets import Input

    from tui.screens.experiment_form import AdapterPicker, ExperimentForm
    from tui.screens.experiments import ExperimentsScreen

    script = tmp_path / "counter.py"
    script.write_text(textwrap.dedent(COUNTER))
    app = LabdeckApp(home=home, scheduler=True, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready and app.screen.loaded)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, AdapterPicker))
        await pilot.press("enter")  # the first adapter: script
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentForm))
        form = app.screen
        form.query_one("#f-name", Input).value = "counted"
        form.query_one("#f-command", Input).value = f"{PY} {script} {{steps}}"
        form.query_one("#f-extra", Input).value = "steps=5"
        form.query_one("#f-objective", Input).value = "loss"
        assert form.query_one("#f-direction", Input).value == "auto"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentsScreen)
                       and "counted" in [e.name for e in app.screen.experiments])
        await pilot.press("r")
        await wait_for(pilot, lambda: "loss ↓ 0.2" in row_cells(app, "experiments",
                                                                 "counted")[5],
                       timeout=60, what="the best objective in the table")
