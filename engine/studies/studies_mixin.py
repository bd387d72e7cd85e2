"""``StudiesMixin``: the async studies API on ``engine.Engine`` (the TUI, the CLI, scripts).

    study = await engine.create_study("lr-search", "toy", {"lr": "1e-3:1e-1:log"},
                                      n_trials=20, pruner="median")
    job_id = await engine.start_study("lr-search")
    await engine.ensure_scheduler(); await engine.wait_job(job_id)
    exp = await engine.promote_best("lr-search")

Reads (``list_studies``, ``get_study``, ``study_trials``) use labdeck's own tables only and are
cheap enough to poll; ``get_study(name, refresh=True)`` first sweeps dead workers' trials and
mirrors the tuner's storage (it opens that storage: Optuna is imported then).

The operations are synchronous functions (engine/studies/service.py, engine/data/studies.py).
Those that read or write labdeck's tables only run on the engine's own connection
(``store.run``). Those that open the study's tuner (create, start, cancel, join, refresh,
importance) may block on its storage for seconds, so they hold up neither the engine's
connection nor the event loop: they run in a thread on the studies connection, one long-lived
sqlite3 connection per engine (opened on first use, closed with the engine), one call at a
time so that their transactions never interleave.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..data import studies as data
from ..data.studies import Trial
from ..models import Experiment, Job
from ..schema import connect_sync
from ..settings import Settings
from ..store import Store
from . import service
from .service import Study
from .tuner_registry import tuner_names

T = TypeVar("T")


class StudiesMixin:
    store: Store
    settings: Settings
    _studies_conn: sqlite3.Connection | None = None
    _studies_lock: threading.Lock | None = None

    if TYPE_CHECKING:  # from the other parts of engine.api.Engine
        async def cancel_job(self, job_id: int) -> Job: ...
        async def list_experiments(self) -> list[Experiment]: ...
        async def create_experiment(self, name: str, adapter: str,
                                    config: dict[str, Any] | None = None, *,
                                    objective: str | None = None, direction: str | None = None,
                                    tags: list[str] | None = None, notes: str = "",
                                    origin: str | None = None, gpus: int = 0,
                                    gpu_mem_mb: int | None = None) -> Experiment: ...

    async def _store_call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on the engine's connection (labdeck's tables only)."""
        return await self.store.run(fn, *args)

    async def _tuner_call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(conn, *args, **kwargs)``, which may open a tuner's storage, on the studies
        connection in a thread."""
        if self._studies_lock is None:  # on the event loop's thread: no race
            self._studies_lock = threading.Lock()
        lock = self._studies_lock

        def go() -> T:
            with lock:
                if self._studies_conn is None:
                    self._studies_conn = connect_sync(self.settings.db_path)
                return fn(self._studies_conn, *args, **kwargs)

        return await asyncio.to_thread(go)

    async def close_studies(self) -> None:
        """Close the studies connection (after a call in flight ends)."""
        lock = self._studies_lock
        if lock is None:
            return

        def go() -> None:
            with lock:
                if self._studies_conn is not None:
                    self._studies_conn.close()
                    self._studies_conn = None

        await asyncio.to_thread(go)

    def tuner_names(self) -> list[str]:
        """The tuners installed (the ``labdeck.tuners`` entry-point group)."""
        return tuner_names()

    async def list_studies(self) -> list[Study]:
        return await self._store_call(service.list_studies)

    async def get_study(self, name: str, refresh: bool = False) -> Study:
        if refresh:
            await self._tuner_call(service.refresh, self.settings, name)
        return await self._store_call(lambda c: service.study_record(c, data.get_study(c, name)))

    async def study_trials(self, name: str) -> list[Trial]:
        return await self._store_call(lambda c: data.trials(c, data.get_study(c, name).id))

    async def create_study(self, name: str, experiment: str,
                           params: Mapping[str, Any] | Sequence[str] | None = None,
                           **settings: Any) -> Study:
        """``params``: {name: "MIN:MAX[:log]" | "a,b,c" | "VALUE" | ParamSpec | spec dict}, or
        a list of "NAME=..." strings; unnamed adapter defaults come from
        ``get_search_ranges()``. ``settings``: n_trials, search_epochs, subset_ratio, pruner,
        direction, objective, timeout_s, workers, tuner, storage, seed, pruner_options
        (``engine``: the tuner's former name, still accepted)."""
        def go(conn: Any) -> Study:
            row = service.create_study(conn, self.settings, name, experiment,
                                       params, **settings)
            return service.study_record(conn, row)

        return await self._tuner_call(go)

    async def start_study(self, name: str, n_trials: int | None = None) -> int:
        """Queue the study's job (it resumes: runs the trials still missing up to n_trials;
        ``n_trials`` raises the total). Returns the job id; the scheduler starts it."""
        return await self._tuner_call(service.start_study, self.settings, name,
                                      n_trials)

    async def cancel_study(self, name: str) -> Study:
        """Stop the study: the running trial(s) stop and are recorded cancelled,
        finished trials are kept; ``start_study`` continues it later."""
        job_id = await self._tuner_call(service.cancel_study, self.settings, name)
        if job_id is not None:
            await self.cancel_job(job_id)
        return await self.get_study(name)

    async def join_study(self, name: str, storage: str, tuner: str | None = None) -> Study:
        """Know a study created elsewhere (same storage URL) so this home can run workers."""
        def go(conn: Any) -> Study:
            return service.study_record(conn, service.join_study(
                conn, self.settings, name, storage, tuner))

        return await self._tuner_call(go)

    async def delete_study(self, name: str) -> None:
        study = await self.get_study(name)
        if study.status in ("queued", "running"):
            from ..experiments import ConflictError

            raise ConflictError(f"study {name!r} is {study.status}; cancel it first")
        await self._store_call(data.delete_study, study.id)

    async def importance(self, name: str) -> dict[str, float]:
        return await self._tuner_call(service.compute_importance, self.settings, name)

    async def promote_best(self, name: str, new_name: str | None = None) -> Any:
        """A new experiment: the base config with the best trial's params merged (the base
        config's own epochs / subset, not the study's search budget)."""
        study = await self.get_study(name, refresh=True)
        if study.best_trial is None or study.best_params is None:
            raise LookupError(f"study {name!r} has no complete trial yet")
        config = {**study.base_config, **study.best_params}
        if not new_name:
            new_name, n = f"{name}-best", 2
            existing = {e.name for e in await self.list_experiments()}
            while new_name in existing:
                new_name, n = f"{name}-best-{n}", n + 1
        return await self.create_experiment(
            new_name, study.adapter, config, objective=study.settings["objective"],
            direction=study.settings["direction"], tags=["from-study"],
            notes=f"best params of study {name}: {study.best_params}"
                  f" ({study.settings['objective']}={study.best_value})",
            origin=f"from study {name} trial {study.best_trial}")
