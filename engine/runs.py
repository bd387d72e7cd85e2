"""Runs and their metrics: launch, read (incremental and downsampled), checkpoints, logs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.base import RESUME

from .data import jobs as jobs_data
from .data import metrics as metrics_data
from .data import runs as data
from .data.rows import PAGE_SIZE
from .experiments import NotFoundError
from .liveness import last_output
from .models import Experiment, Job, MetricBatch, MetricPoints, Run
from .paths import (
    UnsafePathError,
    check_name,
    checkpoints_dir,
    delete_checkpoint,
    job_log_path,
    list_checkpoints,
    safe_child,
)
from .placement import check_request
from .records import Gone
from .registry import get_adapter_class
from .settings import Settings
from .slurm import executor_params
from .store import Store


def _shown(run: Run, settings: Settings, gone: dict[tuple[str, int], tuple[str, str]]) -> Run:
    """The run as a read shows it: one whose process was found gone ends (even where the
    database refused the update, a fault); a running one's last output includes its training
    job's log file's last write."""
    if run.status == "running":
        end = gone.get(("run", run.id)) or (
            gone.get(("job", run.job_id)) if run.job_id is not None else None)
        if end is not None:
            run.status, reason = end
            run.error = reason if run.status == "failed" else None
            run.last_output = None
        else:
            log = job_log_path(settings, run.job_id, run.id) if run.job_id else None
            run.last_output = last_output(run.last_output, log)
    return run


class RunsMixin:
    store: Store
    settings: Settings

    if TYPE_CHECKING:  # from the other parts of engine.api.Engine
        async def settle_gone(self) -> Gone: ...
        async def get_experiment(self, ref: str | int) -> Experiment: ...
        async def cancel_job(self, job_id: int) -> Job: ...
        def validate_experiment(self, adapter: str, config: dict[str, Any] | None,
                                objective: str | None = None, direction: str | None = None
                                ) -> tuple[dict, str | None, str | None]: ...

    async def start_run(self, exp_ref: str | int, *, resume_from: str | None = None,
                        config_overrides: dict[str, Any] | None = None,
                        gpus: int | None = None, gpu_mem_mb: int | None = None,
                        executor: str = "local", slurm: dict[str, Any] | None = None
                        ) -> tuple[int, int]:
        """Queue a training run of an experiment. Returns (run_id, job_id). ``gpus`` /
        ``gpu_mem_mb``: what this run asks for (None: what the experiment asks; a memory
        minimum of 0: none). ``executor`` "slurm": it runs on the cluster with the home's
        Slurm options and ``slurm`` over them (engine/slurm.py)."""
        exp = await self.get_experiment(exp_ref)
        gpus, gpu_mem_mb = check_request(exp.gpus if gpus is None else gpus,
                                         exp.gpu_mem_mb if gpu_mem_mb is None else gpu_mem_mb)
        config = dict(exp.config)
        if config_overrides:
            config.update(config_overrides)
        validated, _, _ = self.validate_experiment(exp.adapter, config)
        resume = await self._resume_source(exp, resume_from) if resume_from else None
        params: dict[str, Any] = {"resume_from": resume} if resume else {}
        params.update(executor_params(self.settings, executor, slurm))
        return await self.store.run(jobs_data.queue_training, exp.id, exp.name, validated,
                                    params, gpus, gpu_mem_mb)

    async def _resume_source(self, exp: Any, ref: str) -> dict[str, Any]:
        """Job params naming the checkpoint a new run of ``exp`` resumes from."""
        if not get_adapter_class(exp.adapter).supports(RESUME):
            raise ValueError(f"adapter {exp.adapter} cannot resume from a checkpoint")
        run, name = await self.resolve_checkpoint(ref, experiment=exp.id)
        if run.adapter != exp.adapter:
            raise ValueError(f"run {run.label} was trained by adapter {run.adapter}, not"
                             f" {exp.adapter}: its checkpoints cannot be resumed here")
        return {"run_id": run.id, "run": f"{run.experiment}/{run.number}", "checkpoint": name}

    async def resolve_checkpoint(self, ref: str, *, experiment: str | int) -> tuple[Run, str]:
        """The run and checkpoint that ``ref`` names: ``RUN:NAME`` (RUN as ``get_run`` takes
        it: a run id or EXPERIMENT/NUMBER), or a bare ``NAME``: the latest run of
        ``experiment`` that has it. NAME is a file name in that run's checkpoints directory,
        never a path: traversal, absolute paths and links leading out are refused."""
        run_ref, sep, name = ref.rpartition(":")
        try:
            check_name(name)
        except UnsafePathError as exc:
            raise UnsafePathError(f"checkpoint {ref!r} refused: {exc} (name a checkpoint of"
                                  " an earlier run: RUN:NAME, e.g. exp/3:last.pt, or NAME)"
                                  ) from None
        if sep:
            run = await self.get_run(run_ref)
            path = safe_child(checkpoints_dir(self.settings, run.id), name)
            if not path.is_file():
                listed = ", ".join(c["name"] for c in await self.list_checkpoints(run.id))
                raise NotFoundError(f"run {run.label} has no checkpoint {name!r}"
                                    f" (available: {listed or 'none'})")
            return run, name
        runs = await self.list_runs(experiment)  # newest first
        for run in runs:
            if self._checkpoint_file(run.id, name):
                return run, name
        have: list[str] = []
        for run in runs:
            names = [c["name"] for c in await self.list_checkpoints(run.id)]
            if names:
                have.append(f"{run.experiment}/{run.number}: {', '.join(names)}")
        exp = await self.get_experiment(experiment)
        if not runs:
            raise NotFoundError(f"{exp.name} has no earlier run to resume from")
        raise NotFoundError(f"no run of {exp.name} has a checkpoint {name!r} ("
                            + ("; ".join(have[:5]) or "none has any checkpoint") + ")")

    def _checkpoint_file(self, run_id: int, name: str) -> bool:
        try:
            path = safe_child(checkpoints_dir(self.settings, run_id), name)
        except UnsafePathError:  # a link that leads out of the run
            return False
        return path.is_file()

    async def list_runs(self, exp_ref: str | int | None = None) -> list[Run]:
        gone = await self.settle_gone()
        if exp_ref is None:
            runs = await self.store.run(data.list_runs)
        else:
            exp = await self.get_experiment(exp_ref)
            runs = await self.store.run(data.list_runs, exp.id)
        return [_shown(r, self.settings, gone) for r in runs]

    async def iter_runs(self, exp_ref: str | int | None = None, *, offset: int = 0,
                        limit: int | None = None, page_size: int = PAGE_SIZE
                        ) -> AsyncIterator[Run]:
        """The runs ``list_runs`` would return, ``offset`` of them skipped and at most
        ``limit`` (None: all), read ``page_size`` at a time (keyset pages: constant memory,
        a deep page as fast as the first). A run added meanwhile is newer than the cursor,
        so no run comes twice."""
        exp_id = None if exp_ref is None else (await self.get_experiment(exp_ref)).id
        gone = await self.settle_gone()
        async for run in self.store.pages(data.runs_page, exp_id, offset=offset, limit=limit,
                                          page_size=page_size):
            yield _shown(run, self.settings, gone)

    async def count_runs(self, exp_ref: str | int | None = None) -> int:
        """How many runs (one experiment's) ``iter_runs`` would give with no limit."""
        if exp_ref is None:
            return await self.store.run(data.count_runs)
        return await self.store.run(data.count_runs, (await self.get_experiment(exp_ref)).id)

    async def get_run(self, ref: int | str) -> Run:
        """A run by id, or "experiment/number" / "experiment:number"."""
        gone = await self.settle_gone()
        if isinstance(ref, str) and not ref.isdigit():
            for sep in ("/", ":", "#"):
                if sep in ref:
                    name, _, num = ref.rpartition(sep)
                    if num.isdigit():
                        run = await self.store.run(data.find_run, name, int(num))
                        if run:
                            return _shown(run, self.settings, gone)
            raise NotFoundError(f"no run {ref!r} (use a run id or EXPERIMENT/NUMBER)")
        run = await self.store.run(data.get_run, int(ref))
        if run is None:
            raise NotFoundError(f"no run {ref!r}")
        return _shown(run, self.settings, gone)

    async def cancel_run(self, ref: int | str) -> int | None:
        run = await self.get_run(ref)
        job_id = await self.store.run(jobs_data.active_job_of_run, run.id)
        if job_id is None:
            return None
        await self.cancel_job(job_id)
        return int(job_id)

    # ------------------------------------------------------------------ metrics

    async def metric_keys(self, run_id: int) -> list[str]:
        return await self.store.run(metrics_data.key_names, run_id)

    async def read_metrics_since(self, run_id: int, cursor: int = 0,
                                 keys: list[str] | None = None, limit: int = 200_000) -> MetricBatch:
        """Points newer than ``cursor`` (a metric row id); the new cursor is in the result."""
        return await self.store.run(metrics_data.read_since, run_id, cursor, keys, limit)

    async def read_metric(self, run_id: int, key: str, *, max_points: int = 2000,
                          x: str = "step", last_n_steps: int | None = None) -> MetricPoints:
        """At most ``max_points`` points of one key. Beyond that, the min and max of each
        bucket are kept (extremes survive). NaN points are left out of chart data (the
        summary counts them). x is step, epoch or wall (seconds since the first point).
        Read from the key's rollup (engine/series.py): a few hundred rows however long the
        series, and a live chart's redraw reads only the new rows."""
        if x not in ("step", "epoch", "wall"):
            raise ValueError(f"x must be step, epoch or wall, got {x!r}")
        kid = await self.store.run(metrics_data.key_id, run_id, key)
        if kid is None:
            return MetricPoints(key=key, x=[], y=[])
        from .series import SeriesViews

        views = self.__dict__.setdefault("_series_views", SeriesViews())
        xs, ys, total, down = await views.points(self.store, kid, max_points, x, last_n_steps)
        return MetricPoints(key=key, x=xs, y=ys, total=total, downsampled=down)

    async def all_metrics(self, run_id: int, key: str) -> list[tuple[int, float]]:
        return await self.store.run(metrics_data.all_points, run_id, key)

    async def run_summary(self, run_id: int) -> dict[str, dict[str, Any]]:
        """The stored end-of-run summary, or a live one computed now for a running run."""
        return await self._summary(await self.get_run(run_id))

    async def _summary(self, run: Run) -> dict[str, dict[str, Any]]:
        if run.summary is not None:
            return run.summary
        # apart: a run of many keys walks each key's rollup, and must not hold up the
        # engine's other reads
        return await self.store.run_apart(metrics_data.summarize_run, run.id)

    # ------------------------------------------------------------------ files

    def run_dir(self, run_id: int) -> Path:
        return self.settings.run_dir(run_id)

    async def list_checkpoints(self, run_id: int) -> list[dict[str, Any]]:
        await self.get_run(run_id)
        return list_checkpoints(checkpoints_dir(self.settings, run_id))

    async def delete_checkpoint(self, run_id: int, name: str) -> None:
        await self.get_run(run_id)
        delete_checkpoint(checkpoints_dir(self.settings, run_id), name)

    async def log_path(self, run_id: int) -> Path | None:
        job_id = await self.store.run(jobs_data.train_job_of_run, run_id)
        if job_id is None:
            return None
        return job_log_path(self.settings, job_id, run_id)

    async def log_tail(self, run_id: int | None = None, lines: int = 200,
                       job_id: int | None = None) -> list[str]:
        if job_id is not None:
            rid = await self.store.run(jobs_data.run_of_job, job_id)
            path: Path | None = job_log_path(self.settings, job_id, rid)
        else:
            path = await self.log_path(int(run_id or 0))
        if path is None or not path.exists():
            return []
        return tail_lines(path, lines)


def tail_lines(path: Path, lines: int) -> list[str]:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        block = min(size, max(4096, lines * 200))
        fh.seek(size - block)
        data = fh.read().decode("utf-8", errors="replace")
    out = data.splitlines()
    return out[-lines:]
