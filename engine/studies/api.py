"""``StudiesMixin``: the async studies API on ``engine.Engine`` (the TUI, the CLI, scripts).

    study = await engine.create_study("lr-search", "toy", {"lr": "1e-3:1e-1:log"},
                                      n_trials=20, pruner="median")
    job_id = await engine.start_study("lr-search")
    await engine.ensure_scheduler(); await engine.wait_job(job_id)
    exp = await engine.promote_best("lr-search")

Reads (``list_studies``, ``get_study``, ``study_trials``) use labdeck's own tables only and are
cheap enough to poll; ``get_study(name, refresh=True)`` first sweeps dead workers' trials and
mirrors the search engine's storage (it opens that storage: Optuna is imported then).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ..schema import connect_sync
from . import service
from .models import Study, Trial
from .records import load_row
from .registry import list_engines

T = TypeVar("T")


class StudiesMixin:
    @contextlib.contextmanager
    def _study_conn(self) -> Iterator[Any]:
        conn = connect_sync(self.settings.db_path)  # type: ignore[attr-defined]
        try:
            yield conn
        finally:
            conn.close()

    async def _study_call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def go() -> T:
            with self._study_conn() as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.to_thread(go)

    def search_engines(self) -> list[str]:
        return list_engines()

    async def list_studies(self) -> list[Study]:
        return await self._study_call(service.list_studies)

    async def get_study(self, name: str, refresh: bool = False) -> Study:
        def go(conn: Any) -> Study:
            if refresh:
                service.refresh(conn, self.settings, name)  # type: ignore[attr-defined]
            return service.study_record(conn, load_row(conn, name))

        return await self._study_call(go)

    async def study_trials(self, name: str) -> list[Trial]:
        return await self._study_call(lambda c: service.trials(c, load_row(c, name)["id"]))

    async def create_study(self, name: str, experiment: str,
                           params: Mapping[str, Any] | Sequence[str] | None = None,
                           **settings: Any) -> Study:
        """``params``: {name: "MIN:MAX[:log]" | "a,b,c" | "VALUE" | ParamSpec | spec dict}, or
        a list of "NAME=..." strings; unnamed adapter defaults come from
        ``get_search_ranges()``. ``settings``: n_trials, search_epochs, subset_ratio, pruner,
        direction, objective, timeout_s, workers, engine, storage, seed, pruner_options."""
        def go(conn: Any) -> Study:
            row = service.create_study(conn, self.settings, name, experiment,  # type: ignore[attr-defined]
                                       params, **settings)
            return service.study_record(conn, row)

        return await self._study_call(go)

    async def start_study(self, name: str, n_trials: int | None = None) -> int:
        """Queue the study's job (it resumes: runs the trials still missing up to n_trials;
        ``n_trials`` raises the total). Returns the job id; the scheduler starts it."""
        return await self._study_call(service.start_study, self.settings, name,  # type: ignore[attr-defined]
                                      n_trials)

    async def cancel_study(self, name: str) -> Study:
        """Stop the study: the running trial(s) stop and are recorded failed (cancelled),
        finished trials are kept; ``start_study`` continues it later."""
        job_id = await self._study_call(service.cancel_study, self.settings, name)  # type: ignore[attr-defined]
        if job_id is not None:
            await self.cancel_job(job_id)  # type: ignore[attr-defined]
        return await self.get_study(name)

    async def join_study(self, name: str, storage: str, engine: str | None = None) -> Study:
        """Know a study created elsewhere (same storage URL) so this home can run workers."""
        def go(conn: Any) -> Study:
            return service.study_record(conn, service.join_study(
                conn, self.settings, name, storage, engine))  # type: ignore[attr-defined]

        return await self._study_call(go)

    async def delete_study(self, name: str) -> None:
        study = await self.get_study(name)
        if study.status in ("queued", "running"):
            from ..experiments import ConflictError

            raise ConflictError(f"study {name!r} is {study.status}; cancel it first")
        await self._study_call(lambda c: service.delete_rows(c, study.id))

    async def importance(self, name: str) -> dict[str, float]:
        return await self._study_call(service.compute_importance, self.settings, name)  # type: ignore[attr-defined]

    async def promote_best(self, name: str, new_name: str | None = None) -> Any:
        """A new experiment: the base config with the best trial's params merged (the base
        config's own epochs / subset, not the study's search budget)."""
        study = await self.get_study(name, refresh=True)
        if study.best_trial is None or study.best_params is None:
            raise LookupError(f"study {name!r} has no complete trial yet")
        config = {**study.base_config, **study.best_params}
        if not new_name:
            new_name, n = f"{name}-best", 2
            existing = {e.name for e in await self.list_experiments()}  # type: ignore[attr-defined]
            while new_name in existing:
                new_name, n = f"{name}-best-{n}", n + 1
        return await self.create_experiment(  # type: ignore[attr-defined]
            new_name, study.adapter, config, objective=study.settings["objective"],
            direction=study.settings["direction"], tags=["from-study"],
            notes=f"best params of study {name}: {study.best_params}"
                  f" ({study.settings['objective']}={study.best_value})",
            origin=f"from study {name} trial {study.best_trial}")
