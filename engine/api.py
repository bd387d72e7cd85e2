"""The engine's public async API: the one door the TUI, the CLI and scripts use.

    engine = await Engine.open(home)        # or: async with Engine.session(home) as engine:
    exp = await engine.create_experiment("lr-3e-4", "script", {"command": "..."})
    run_id, job_id = await engine.start_run(exp.name)
    await engine.ensure_scheduler()          # embedded unless `labdeck serve` holds the lease
    job = await engine.wait_job(job_id)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .compare import CompareMixin
from .data import jobs, lease
from .experiments import ExperimentsMixin
from .jobs import JobsMixin
from .records import pid_alive
from .registry import adapter_names, get_adapter_class
from .runs import RunsMixin
from .scheduler import Scheduler
from .settings import Settings, load_settings
from .store import Store
from .studies.studies_mixin import StudiesMixin


class Engine(ExperimentsMixin, RunsMixin, JobsMixin, CompareMixin, StudiesMixin):
    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = Store(settings)
        self.scheduler: Scheduler | None = None
        self._search_cache: dict[tuple[int, str], Any] = {}
        self._search_lock = asyncio.Lock()

    @classmethod
    async def open(cls, home: str | Path | None = None, **overrides: Any) -> Engine:
        engine = cls(load_settings(home, **overrides))
        await engine.store.open()
        return engine

    @classmethod
    @contextlib.asynccontextmanager
    async def session(cls, home: str | Path | None = None, **overrides: Any
                      ) -> AsyncIterator[Engine]:
        engine = await cls.open(home, **overrides)
        try:
            yield engine
        finally:
            await engine.close()

    async def close(self) -> None:
        await self.stop_scheduler()
        await self.close_studies()
        await self.store.close()

    @property
    def home(self) -> Path:
        return self.settings.home

    # ------------------------------------------------------------------ scheduler

    async def scheduler_status(self) -> dict[str, Any]:
        held = await self.store.run(lease.holder)
        running = await self.store.run(jobs.count, "running")
        queued = await self.store.run(jobs.count, "queued")
        alive = (held is not None and time.time() - held.heartbeat < self.settings.lease_ttl_s
                 and pid_alive(held.pid))
        state = self.scheduler.state if self.scheduler is not None else None
        ours = state is not None and state.holds_lease and not (state.problem or state.stopped)
        return {"serving": alive, "mode": held.mode if held is not None and alive else None,
                "pid": held.pid if held is not None and alive else None, "ours": ours, "running": running,
                "queued": queued, "limit": self.settings.max_concurrency,
                # this process's scheduler: a fault it is retrying, or the one that ended it
                "problem": state.problem if state else None,
                "stopped": state.stopped if state else None}

    async def ensure_scheduler(self, mode: str = "embedded") -> Scheduler:
        """Run a scheduler in this process; it only claims jobs while it holds the lease, so
        with `labdeck serve` running it waits as a standby. Returns after its first tick was
        tried; a fault shows in its state (``problem`` while retrying, ``stopped`` once it
        gave up), never as an exception here."""
        if self.scheduler is None:
            self.scheduler = Scheduler(self.settings, mode=mode)
            self.scheduler.start()
            await self.scheduler.first_tick()
        return self.scheduler

    async def stop_scheduler(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None

    # ------------------------------------------------------------------ adapters

    def adapter_names(self) -> list[str]:
        return adapter_names()

    def adapter_class(self, name: str):
        return get_adapter_class(name)

    async def data_version(self) -> int:
        return await self.store.data_version()

    # ------------------------------------------------------------------ search (in process)

    async def _loaded_index(self, run_id: int, checkpoint: str | None) -> tuple[Any, Any, Any]:
        run = await self.get_run(run_id)
        indexes = await self.list_indexes(run.id)
        if checkpoint is not None:
            indexes = [i for i in indexes if i.checkpoint == checkpoint]
        if not indexes:
            raise LookupError(f"run {run.label} has no index"
                              + (f" for {checkpoint}" if checkpoint else "")
                              + "; build one first (labdeck index build)")
        rec = indexes[0]
        key = (run.id, rec.checkpoint)
        async with self._search_lock:
            if key not in self._search_cache:
                cls = get_adapter_class(run.adapter)
                adapter = cls()
                index = await asyncio.to_thread(adapter.load_index, Path(rec.path))
                self._search_cache[key] = (adapter, index, rec)
            return self._search_cache[key]

    async def search(self, run_id: int, kind: str, query: Any, *, checkpoint: str | None = None,
                     k: int = 10, **options: Any) -> dict[str, Any]:
        """kind "text" or "image". Returns {"hits": [...], "latency_ms": ..., "index": ...}."""
        adapter, index, rec = await self._loaded_index(run_id, checkpoint)

        def go() -> tuple[list, float]:
            t0 = time.perf_counter()
            if kind == "text":
                hits = adapter.search_by_text(index, query, k=k, **options)
            elif kind == "image":
                hits = adapter.search_by_image(index, Path(query), k=k, **options)
            else:
                raise ValueError(f"unknown search kind {kind!r}")
            return hits, (time.perf_counter() - t0) * 1000

        hits, ms = await asyncio.to_thread(go)
        return {"hits": hits, "latency_ms": ms, "index": rec}
