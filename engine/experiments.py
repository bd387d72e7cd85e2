"""Experiments: create (validated by the adapter's schema), edit, duplicate, delete, list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from adapters.base import ConfigError

from .data import experiments as data
from .data import jobs as jobs_data
from .data import runs as runs_data
from .data.rows import PAGE_SIZE
from .models import Experiment
from .placement import check_request
from .records import Gone
from .registry import get_adapter_class
from .settings import Settings
from .store import Store


class NotFoundError(LookupError):
    pass


class ConflictError(ValueError):
    pass


class ExperimentsMixin:
    store: Store
    settings: Settings

    if TYPE_CHECKING:  # from the other parts of engine.api.Engine
        async def settle_gone(self) -> Gone: ...

    async def list_experiments(self) -> list[Experiment]:
        await self.settle_gone()  # a last run's process may be gone
        return await self.store.run(data.list_experiments)

    async def iter_experiments(self, *, offset: int = 0, limit: int | None = None,
                               page_size: int = PAGE_SIZE) -> AsyncIterator[Experiment]:
        """The experiments ``list_experiments`` would return, ``offset`` of them skipped and
        at most ``limit`` (None: all), read ``page_size`` at a time (keyset pages: constant
        memory). One changed while later pages are read is not listed again."""
        await self.settle_gone()
        async for exp in self.store.pages(data.experiments_page, offset=offset, limit=limit,
                                          page_size=page_size):
            yield exp

    async def count_experiments(self) -> int:
        return await self.store.run(data.count_experiments)

    async def get_experiment(self, ref: str | int) -> Experiment:
        exp = await self.store.run(data.get_experiment, ref)
        if exp is None:
            raise NotFoundError(f"no experiment {ref!r}")
        return exp

    def validate_experiment(self, adapter: str, config: dict[str, Any] | None,
                            objective: str | None = None,
                            direction: str | None = None) -> tuple[dict, str | None, str | None]:
        cls = get_adapter_class(adapter)
        validated = cls.validate_config(config or {})
        declared = cls.objective_from_config(validated) or cls.default_objective
        if objective is None and declared:
            objective, default_dir = declared
            direction = direction or default_dir
        if direction is not None and direction not in ("minimize", "maximize"):
            raise ConfigError({"direction": f"must be minimize or maximize, got {direction!r}"})
        if objective and direction is None:
            from .directions import direction_for

            direction = direction_for(objective)
        return validated, objective, direction

    async def create_experiment(self, name: str, adapter: str,
                                config: dict[str, Any] | None = None, *,
                                objective: str | None = None, direction: str | None = None,
                                tags: list[str] | None = None, notes: str = "",
                                origin: str | None = None, gpus: int = 0,
                                gpu_mem_mb: int | None = None) -> Experiment:
        """``gpus``: how many GPUs its jobs ask for (0: the CPU); ``gpu_mem_mb``: the free
        memory each of those must have (None or 0: any)."""
        name = (name or "").strip()
        if not name:
            raise ConfigError({"name": "must not be empty"})
        validated, objective, direction = self.validate_experiment(
            adapter, config, objective, direction)
        gpus, gpu_mem_mb = check_request(gpus, gpu_mem_mb)
        created = await self.store.run(data.create, name, adapter, validated, objective,
                                       direction, list(tags or []), notes, origin, gpus,
                                       gpu_mem_mb)
        if created is None:
            raise ConflictError(f"an experiment named {name!r} already exists")
        return await self.get_experiment(name)

    async def update_experiment(self, ref: str | int, *, name: str | None = None,
                                config: dict[str, Any] | None = None,
                                objective: str | None = None, direction: str | None = None,
                                tags: list[str] | None = None,
                                notes: str | None = None, gpus: int | None = None,
                                gpu_mem_mb: int | None = None) -> Experiment:
        """Change the given fields; None leaves one as it is (``gpu_mem_mb=0`` clears the
        memory minimum)."""
        exp = await self.get_experiment(ref)
        gpus, gpu_mem_mb = check_request(exp.gpus if gpus is None else gpus,
                                         exp.gpu_mem_mb if gpu_mem_mb is None else gpu_mem_mb)
        new_cfg = exp.config if config is None else config
        # a config that names the objective (the script adapter's) changes it; else it stays
        named = config is not None and get_adapter_class(exp.adapter).objective_from_config(
            config) is not None
        validated, objective, direction = self.validate_experiment(
            exp.adapter, new_cfg, objective or (None if named else exp.objective),
            direction or (None if named else exp.direction))
        new_name = (name or exp.name).strip()
        if not await self.store.run(data.update, exp.id, new_name, validated, objective,
                                    direction, list(exp.tags if tags is None else tags),
                                    exp.notes if notes is None else notes, gpus, gpu_mem_mb):
            raise ConflictError(f"an experiment named {new_name!r} already exists")
        return await self.get_experiment(exp.id)

    async def duplicate_experiment(self, ref: str | int, new_name: str | None = None) -> Experiment:
        exp = await self.get_experiment(ref)
        if not new_name:
            n = 2
            while await self.store.run(data.name_taken, f"{exp.name}-{n}"):
                n += 1
            new_name = f"{exp.name}-{n}"
        return await self.create_experiment(
            new_name, exp.adapter, exp.config, objective=exp.objective, direction=exp.direction,
            tags=exp.tags, notes=exp.notes, origin=f"duplicate of {exp.name}", gpus=exp.gpus,
            gpu_mem_mb=exp.gpu_mem_mb)

    async def delete_experiment(self, ref: str | int) -> None:
        exp = await self.get_experiment(ref)
        active = await self.store.run(jobs_data.active_in_experiment, exp.id)
        if active:
            raise ConflictError(f"experiment {exp.name!r} has {active} active job(s); cancel first")
        run_ids = await self.store.run(runs_data.run_ids, exp.id)
        await self.store.run(data.delete, exp.id)
        import shutil

        for rid in run_ids:
            shutil.rmtree(self.settings.run_dir(rid), ignore_errors=True)
