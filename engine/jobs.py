"""Jobs: list, inspect, cancel, submit eval / index builds, wait for an end; the machine's
GPUs and who holds or waits for them (``resources``).

Reading jobs (and runs) first settles what is gone: a running job or tracking run of this
host whose process died, or whose pid now names another process, is failed right there, so no
command or screen shows a dead process as running, whether or not a scheduler runs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .data import evals as evals_data
from .data import jobs as data
from .data.rows import PAGE_SIZE
from .experiments import NotFoundError
from .liveness import last_output, same_process
from .models import EvalRecord, IndexRecord, Job, Run
from .paths import job_log_path
from .placement import annotate
from .process_tree import ProcessTree, job_marker
from .records import FINAL_STATUSES as FINAL
from .records import HOST, Gone, gone_end
from .registry import get_adapter_class
from .resources import ProbeCache, Resources, WaitingJob, owners
from .settings import Settings
from .slurm import executor_params
from .store import Store

# what a read found gone: (kind "job" or "run", id) -> (status, reason) it ends with


def _shown(job: Job, settings: Settings, gone: Gone) -> Job:
    """The job as a read shows it: one found gone ends (even where the database refused the
    update, a fault); a running one's last output includes its log file's last write."""
    if job.status == "running":
        end = gone.get(("job", job.id))
        if end is not None:
            job.status, job.message = end
            job.error = job.message if job.status == "failed" else None
            job.last_output = None
        else:
            job.last_output = last_output(job.last_output,
                                          job_log_path(settings, job.id, job.run_id))
    return job


def _kill_leftovers(settings: Settings, gone: list[data.LiveItem]) -> None:
    # a dead worker's job may have left processes (a setsid'd descendant): nothing of a job
    # outlives it, whoever notices the death
    for item in gone:
        if item.kind == "job":
            try:
                ProcessTree(marker=job_marker(settings.home, item.id)).kill()
            except OSError:
                pass


class JobsMixin:
    store: Store
    settings: Settings

    if TYPE_CHECKING:  # from the other parts of engine.api.Engine
        async def get_run(self, ref: int | str) -> Run: ...
        async def list_checkpoints(self, run_id: int) -> list[dict[str, Any]]: ...

    async def settle_gone(self) -> Gone:
        """Fail the running jobs and tracking runs of this host whose process is gone (or is
        another process now: its start time differs). One indexed query and a /proc read per
        running item. Returns what was gone, for a read to mask if the write failed."""
        rows = await self.store.run(data.running_here, HOST)
        gone = [r for r in rows if not same_process(r.pid, r.pid_started)]
        if not gone:
            return {}
        try:
            # on a connection of its own that waits a second at most: a read must not hang
            # on a locked database
            await self.store.run_apart(data.end_gone, gone, busy_timeout_ms=1000)
            await asyncio.to_thread(_kill_leftovers, self.settings, gone)
        except (sqlite3.Error, OSError):
            pass  # the rows stay running in the database; the reads show them ended
        return {(r.kind, r.id): gone_end(r.kind, r.pid, r.cancel_requested) for r in gone}

    async def list_jobs(self, status: str | None = None, type: str | None = None,
                        limit: int = 500) -> list[Job]:
        gone = await self.settle_gone()
        jobs = await self.store.run(data.list_jobs, status, type, limit)
        return [_shown(job, self.settings, gone) for job in jobs]

    async def iter_jobs(self, status: str | None = None, type: str | None = None, *,
                        offset: int = 0, limit: int | None = None,
                        page_size: int = PAGE_SIZE) -> AsyncIterator[Job]:
        """Jobs newest first (``list_jobs``'s order and filters, with no cap), ``offset`` of
        them skipped and at most ``limit`` (None: all), read ``page_size`` at a time (keyset
        pages: constant memory). A job queued meanwhile is newer than the cursor: no job
        comes twice."""
        gone = await self.settle_gone()
        async for job in self.store.pages(data.jobs_page, status, type, offset=offset,
                                          limit=limit, page_size=page_size):
            yield _shown(job, self.settings, gone)

    async def count_jobs(self, status: str | None = None, type: str | None = None) -> int:
        return await self.store.run(data.count_jobs, status, type)

    async def get_job(self, job_id: int) -> Job:
        gone = await self.settle_gone()
        job = await self.store.run(data.get_job, int(job_id))
        if job is None:
            raise NotFoundError(f"no job {job_id}")
        return _shown(job, self.settings, gone)

    async def cancel_job(self, job_id: int) -> Job:
        """Ask a job to stop. A queued job is cancelled at once; a running one gets the flag:
        its worker sees it with its next heartbeat, the scheduler sends the worker SIGTERM,
        and the job's processes get the grace period before SIGKILL (engine/process_tree.py
        says who signals what, so that each gets exactly one SIGTERM)."""
        job = await self.get_job(job_id)
        if job.status in FINAL:
            return job
        await self.store.run(data.request_cancel, job)
        return await self.get_job(job.id)

    async def submit_job(self, job_type: str, run_id: int | None, params: dict[str, Any],
                         target: str) -> int:
        return await self.store.run(data.submit, job_type, run_id, params, target)

    async def _run_job(self, job_type: str, run_ref: int | str, checkpoint: str | None,
                       capability: str, executor: str = "local",
                       slurm: dict[str, Any] | None = None) -> int:
        run = await self.get_run(run_ref)
        cls = get_adapter_class(run.adapter)
        if not cls.supports(capability):
            raise ValueError(f"adapter {run.adapter} does not support {capability}")
        ckpts = await self.list_checkpoints(run.id)
        names = [c["name"] for c in ckpts]
        if checkpoint is None:
            checkpoint = "best.pt" if "best.pt" in names else (names[-1] if names else None)
        if checkpoint is None or checkpoint not in names:
            raise NotFoundError(f"run {run.label} has no checkpoint {checkpoint or ''!r}"
                                f" (available: {', '.join(names) or 'none'})")
        params = {"checkpoint": checkpoint, **executor_params(self.settings, executor, slurm)}
        return await self.submit_job(job_type, run.id, params, f"{run.label} › {checkpoint}")

    async def start_eval(self, run_ref: int | str, checkpoint: str | None = None,
                         executor: str = "local", slurm: dict[str, Any] | None = None) -> int:
        return await self._run_job("eval", run_ref, checkpoint, "evaluate", executor, slurm)

    async def start_index_build(self, run_ref: int | str, checkpoint: str | None = None,
                                executor: str = "local",
                                slurm: dict[str, Any] | None = None) -> int:
        return await self._run_job("index_build", run_ref, checkpoint, "index", executor, slurm)

    async def wait_job(self, job_id: int, timeout: float | None = None,
                       poll_s: float = 0.2) -> Job:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            job = await self.get_job(job_id)
            if job.status in FINAL:
                return job
            if deadline is not None and loop.time() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            await asyncio.sleep(poll_s)

    # ------------------------------------------------------------------ resources

    async def resources(self) -> Resources:
        """The machine's GPUs (NVML, read at most every ``gpu_probe_s``), each with the
        labdeck jobs that hold it, its processes tagged by job (None: foreign), whether the
        scheduler may give it now and why not; and every queued job with what it asks for
        and why it waits (as the scheduler stored it). No NVML or no GPU: no devices, and
        ``nvml`` says why."""
        probes = self.__dict__.setdefault("_gpu_probes", ProbeCache(self.settings.gpu_probe_s))
        probe = await asyncio.to_thread(probes.get)
        holders = await self.store.run(data.gpu_holders, HOST)
        queue = await self.store.run(data.queued, 1000)
        gpus = []
        if probe.gpus:
            live = await self.store.run(data.running_here, HOST)
            workers = {item.pid: item.id for item in live if item.kind == "job"}
            pids = [p.pid for g in probe.gpus for p in g.processes]
            pid_jobs = await asyncio.to_thread(owners, pids, workers, self.settings.home)
            gpus = annotate(probe.gpus, holders, pid_jobs, self.settings)
        waiting = tuple(WaitingJob(job_id=q.id, type=q.type, target=q.target, gpus=q.gpus,
                                   reason=q.note or "queued") for q in queue)
        return Resources(gpus=tuple(gpus), waiting=waiting, nvml=probe.status)

    # ------------------------------------------------------------------ results

    async def list_eval_results(self, run_id: int | None = None) -> list[EvalRecord]:
        return await self.store.run(evals_data.list_eval_results, run_id)

    async def list_indexes(self, run_id: int | None = None) -> list[IndexRecord]:
        return await self.store.run(evals_data.list_indexes, run_id)
