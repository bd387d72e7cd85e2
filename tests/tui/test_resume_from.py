"""Run detail: `R` on a checkpoint launches a new run of the experiment that resumes from it
(a real worker continues training from the checkpoint's epoch); an adapter that cannot resume
says so; a reload during the screen's first load no longer leaves the checkpoints unlisted."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import DataTable, TabbedContent

from engine.api import Engine
from tui.app import LabdeckApp
from tui.screens.run_detail import RunDetailScreen

from .conftest import wait_for

# a few seconds on one CPU thread
TINY = {"dataset": "synthetic", "n_train": 64, "n_query": 8, "n_database": 32, "image_size": 16, "epochs": 2,
        "batch_size": 32, "width": 8, "log_every": 1, "num_threads": 1, "seed": 0}


def toasts(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def open_checkpoint(pilot, app, run_id: int, row: int) -> RunDetailScreen:
    app.push_screen(RunDetailScreen(run_id))
    await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.loaded)
    screen = app.screen
    assert "R" not in screen.active_bindings  # offered where the checkpoints are shown
    screen.query_one(TabbedContent).active = "tab-checkpoints"
    await wait_for(pilot, lambda: "R" in screen.active_bindings, what="R in the footer")
    table = screen.query_one("#checkpoints", DataTable)
    table.focus()
    await wait_for(pilot, lambda: table.row_count >= row + 1, what="checkpoints listed")
    for _ in range(row):
        await pilot.press("down")
    return screen


@pytest.mark.slow
async def test_resume_from_highlighted_checkpoint(home):
    async with Engine.session(home) as engine:
        await engine.create_experiment("shapes", "vlm_quantization", TINY)
        # the first run stops after epoch 1 of 2
        first, job_id = await engine.start_run("shapes", config_overrides={"epochs": 1})
        await engine.ensure_scheduler()
        job = await engine.wait_job(job_id, timeout=120)
        assert job.status == "completed", job.error
    app = LabdeckApp(home=home, scheduler=True, poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        screen = await open_checkpoint(pilot, app, first, row=1)
        assert screen._selected_checkpoint() == "last.pt"
        await pilot.press("R")
        await wait_for(pilot, lambda: any("resuming" in t for t in toasts(app)), what="toast")
        assert "launched shapes › run 2 resuming from shapes › run 1 last.pt (job 2)" in toasts(
            app)
        engine = app.engine
        job = await engine.get_job(2)
        assert job.params["resume_from"] == {"run_id": first, "run": "shapes/1",
                                             "checkpoint": "last.pt"}
        await wait_for(pilot, lambda: app.screen is screen)
        done = {}

        async def finished() -> bool:
            done["job"] = await engine.get_job(2)
            return done["job"].status in ("completed", "failed", "cancelled")

        for _ in range(2400):  # the real worker trains epoch 2
            if await finished():
                break
            await pilot.pause(0.05)
        assert done["job"].status == "completed", done["job"].error
        log = "\n".join(await engine.log_tail(job_id=2, lines=400))
        assert "resumed from" in log and "at epoch 1" in log, log
        run = await engine.get_run(job.run_id)
        assert run.epochs == 2


async def test_resume_refused_for_an_adapter_that_cannot(seeded):
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        await open_checkpoint(pilot, app, 1, row=1)
        before = len(await app.engine.list_runs())
        await pilot.press("R")
        await wait_for(pilot, lambda: any("cannot resume" in t for t in toasts(app)),
                       what="refusal")
        assert len(await app.engine.list_runs()) == before


async def test_a_reload_during_the_first_load_still_lists_the_checkpoints(seeded):
    app = LabdeckApp(home=seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        screen = RunDetailScreen(1)
        app.push_screen(screen)
        for _ in range(100_000):  # catch the first load right after it fetched the run
            if screen.run is not None:
                break
            await asyncio.sleep(0)
        assert not screen.loaded
        screen.reload()  # another process committed: the first load in flight is cancelled
        await wait_for(pilot, lambda: screen.loaded)
        await wait_for(pilot, lambda: screen.query_one("#checkpoints", DataTable).row_count == 2,
                       what="checkpoints listed")
