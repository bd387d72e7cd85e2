"""Shared by the Search tests: a really trained tiny model (real worker processes), homes
with and without an index, and driving the app into the Search area."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from engine.api import Engine
from tui.screens.search import SearchScreen

from .conftest import wait_for

# trains in a few seconds on one CPU thread; deterministic (seeded data, init, one thread)
TINY = {"dataset": "synthetic", "n_train": 256, "n_query": 16, "n_database": 48, "image_size": 16, "epochs": 3,
        "width": 8, "num_threads": 1, "seed": 0}
EXPERIMENT = "shapes"


async def _train(home: Path) -> int:
    async with Engine.session(home) as engine:
        await engine.create_experiment(EXPERIMENT, "vlm_quantization", TINY)
        run_id, job_id = await engine.start_run(EXPERIMENT)
        await engine.ensure_scheduler()
        job = await engine.wait_job(job_id, timeout=120)
        assert job.status == "completed", job.error
        return run_id


async def _job(home: Path, method: str, run_id: int, checkpoint: str = "best.pt") -> None:
    async with Engine.session(home) as engine:
        job_id = await getattr(engine, method)(run_id, checkpoint)
        await engine.ensure_scheduler()
        job = await engine.wait_job(job_id, timeout=120)
        assert job.status == "completed", job.error


def train_tiny(home: Path) -> int:
    """Create the experiment and train one run for real; returns the run id."""
    home.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_train(home))


def build_index(home: Path, run_id: int, checkpoint: str = "best.pt") -> None:
    asyncio.run(_job(home, "start_index_build", run_id, checkpoint))


def run_eval(home: Path, run_id: int, checkpoint: str = "best.pt") -> None:
    asyncio.run(_job(home, "start_eval", run_id, checkpoint))


def copy_home(src: Path, dst: Path) -> Path:
    """A copy of a home whose database may still be open elsewhere (a scheduler that has not
    exited yet): the files are copied without SQLite's -wal/-shm, which come and go with the
    last connection, and the database through SQLite's online backup, which includes what
    the WAL holds."""
    if dst.exists():
        shutil.rmtree(dst)
    databases = ("labdeck.db", "labdeck.db-wal", "labdeck.db-shm")
    shutil.copytree(src, dst, ignore=lambda d, names: [n for n in names if Path(d) == src and n in databases])
    with closing(sqlite3.connect(src / "labdeck.db")) as source, \
            closing(sqlite3.connect(dst / "labdeck.db")) as target:
        source.backup(target)
    return dst


async def open_search(pilot, app) -> SearchScreen:
    await wait_for(pilot, lambda: app.ready, what="app ready")
    await pilot.press("S")
    await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen) and app.screen.loaded,
                   timeout=20, what="search area loaded")
    return app.screen


async def wait_results(pilot, screen: SearchScreen, before: int, timeout: float = 60) -> None:
    """Until a search started after ``before`` (= ``screen.searches`` then) has finished."""
    await wait_for(pilot, lambda: screen.searches > before and not screen.busy,
                   timeout=timeout, what="search results")
