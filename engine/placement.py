"""Which queued job starts now, and on which GPUs: the scheduler's placement policy. Pure (no
database, no NVML, no processes), so the scheduler that acts on it and the Resources view
that shows it (``Engine.resources``, ``labdeck gpus``) say the same.

A job asks for ``gpus`` (0: the CPU) and optionally a minimum of free memory per GPU. The
policy, in the order of the queue (oldest job first):

- A CPU job takes one of ``max_concurrency`` CPU slots (LABDECK_MAX_CONCURRENCY); a GPU job
  takes GPUs and no CPU slot, so how many GPU jobs run is bounded by the devices.
- A GPU may be given when labdeck may use it (LABDECK_GPUS), no labdeck job holds it (unless
  LABDECK_GPU_SHARE), its foreign processes (not labdeck's) use at most
  LABDECK_GPU_FOREIGN_MAX of its memory, and it has the job's minimum free memory. Among
  those, the least shared, then the emptiest, then the lowest index go first.
- A GPU job that cannot have its GPUs now waits with the reason ("waiting for 2 free GPUs;
  1 free") and keeps the GPUs that are free for it: a later GPU job may pass it only on
  devices it could not use (too little memory for it), never on the ones it waits to
  complete, so a big job is not starved by a stream of small ones. It never holds back a
  CPU job, nor a CPU job a GPU job.
- A job that asks for more GPUs than labdeck may ever use here fails at once with why.
- A machine with no GPU (no NVML library, no driver, no device) runs every job as a CPU job,
  as labdeck always did; one that asked for GPUs says so in its note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from adapters.base import ConfigError

from .resources import GpuState, with_jobs
from .settings import Settings

MAX_GPUS_PER_JOB = 64


@dataclass(frozen=True)
class Request:
    """What a queued job asks for."""

    job_id: int
    gpus: int = 0
    gpu_mem_mb: float | None = None


@dataclass(frozen=True)
class Decision:
    """``action``: "start", "wait" or "fail". ``devices`` (start): the GPUs' NVML indices;
    () a CPU job on a machine with GPUs (it is shown none); None on a machine without GPUs
    (its environment is left as it is). ``note``: why it waits or fails, or what it got
    where that differs from what it asked."""

    job_id: int
    action: str
    devices: tuple[int, ...] | None = None
    note: str = ""


def check_request(gpus: object, gpu_mem_mb: object) -> tuple[int, int | None]:
    """A valid (gpus, gpu_mem_mb); a memory minimum of 0 means none (None)."""
    errors = {}
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 0 <= gpus <= MAX_GPUS_PER_JOB:
        errors["gpus"] = f"must be an integer from 0 to {MAX_GPUS_PER_JOB}, got {gpus!r}"
    if gpu_mem_mb is not None and (isinstance(gpu_mem_mb, bool) or not isinstance(
            gpu_mem_mb, int) or gpu_mem_mb < 0):
        errors["gpu_mem_mb"] = f"must be a whole number of MB >= 0, got {gpu_mem_mb!r}"
    if errors:
        raise ConfigError(errors)
    return gpus, (gpu_mem_mb or None)  # type: ignore[return-value]  # both checked to be ints above


def allowed(settings: Settings, gpu: GpuState) -> bool:
    """May labdeck use this device at all (LABDECK_GPUS)?"""
    only = settings.gpus_allowed
    return only is None or str(gpu.index) in only or gpu.uuid in only


def foreign_use_mb(gpu: GpuState) -> float:
    """Memory that processes other than labdeck's jobs use. Where the driver lists no process
    at all (inside a container it often cannot), what is used on a device no labdeck job
    holds is counted as foreign."""
    if gpu.processes or gpu.held_by:
        return gpu.foreign_mb()
    return gpu.mem_used_mb


def annotate(gpus: Sequence[GpuState], holders: Mapping[int, Sequence[int]],
             pid_jobs: Mapping[int, int], settings: Settings) -> list[GpuState]:
    """The devices with their processes tagged by labdeck job (``pid_jobs``), the labdeck jobs
    that hold each (``holders``: NVML index -> job ids, from the running jobs), and whether
    the scheduler may give each to a job now, and if not why (a held device has no note:
    ``held_by`` says it)."""
    out = []
    for gpu in with_jobs(list(gpus), dict(pid_jobs)):
        gpu = replace(gpu, held_by=tuple(sorted(holders.get(gpu.index, ()))))
        share = foreign_use_mb(gpu) / gpu.mem_total_mb if gpu.mem_total_mb else 0.0
        if not allowed(settings, gpu):
            gpu = replace(gpu, usable=False, note="excluded by LABDECK_GPUS")
        elif share > settings.gpu_foreign_max:
            gpu = replace(gpu, usable=False, note=(
                f"other processes use {share:.0%} of its memory (limit"
                f" {settings.gpu_foreign_max:.0%}, LABDECK_GPU_FOREIGN_MAX)"))
        elif gpu.held_by and not settings.gpu_share:
            gpu = replace(gpu, usable=False)  # held_by says by whom
        elif gpu.held_by:
            gpu = replace(gpu, note="shared (LABDECK_GPU_SHARE)")
        out.append(gpu)
    return out


def _n_gpus(n: int) -> str:
    return f"{n} GPU" + ("" if n == 1 else "s")


def place(queue: Sequence[Request], gpus: Sequence[GpuState], cpu_running: int,
          settings: Settings, nvml: str = "ok") -> list[Decision]:
    """What to do with each queued job (oldest first), given the devices as ``annotate``
    returns them and the number of CPU jobs running."""
    cpu_free = settings.max_concurrency - cpu_running
    usable = {g.index: g for g in gpus if g.usable}
    holders = {g.index: len(g.held_by) for g in gpus}
    held_by = {g.index: list(g.held_by) for g in gpus}
    free_mb = {g.index: g.mem_free_mb for g in gpus}
    may_use = [g for g in gpus if allowed(settings, g)]
    kept: dict[int, int] = {}  # device -> the earlier waiting job it is kept for
    out = []
    for req in queue:
        if req.gpus == 0 or not gpus:
            if cpu_free <= 0:
                out.append(Decision(req.job_id, "wait", note=(
                    f"waiting for a CPU slot; {cpu_running} of {settings.max_concurrency} in"
                    " use (LABDECK_MAX_CONCURRENCY)")))
                continue
            cpu_free -= 1
            cpu_running += 1
            note = "" if req.gpus == 0 else (
                f"asked for {_n_gpus(req.gpus)}; this machine has none ({nvml}): runs on"
                " the CPU")
            out.append(Decision(req.job_id, "start", () if gpus else None, note))
            continue
        need = req.gpus
        mem = req.gpu_mem_mb or 0.0
        with_mem = f" with {mem:.0f} MB free" if mem else ""
        could = [g for g in may_use if g.mem_total_mb >= mem]
        if len(could) < need:
            where = (f"labdeck may use {len(could)} here" if not mem else
                     f"{len(could)} that labdeck may use here have {mem:.0f} MB")
            limit = " (LABDECK_GPUS)" if settings.gpus_allowed is not None else ""
            out.append(Decision(req.job_id, "fail", note=(
                f"needs {_n_gpus(need)}{with_mem}, but {where}{limit}")))
            continue
        fits = [i for i, g in usable.items()
                if (settings.gpu_share or holders[i] == 0) and free_mb[i] >= mem]
        free = [i for i in fits if i not in kept]
        if len(free) >= need:
            chosen = sorted(free, key=lambda i: (holders[i], -free_mb[i], i))[:need]
            for i in chosen:
                holders[i] += 1
                held_by[i].append(req.job_id)
                free_mb[i] -= mem
            out.append(Decision(req.job_id, "start", tuple(sorted(chosen))))
            continue
        why = []
        if not settings.gpu_share:
            busy = [g.index for g in may_use if holders[g.index]]
            if busy:
                why.append(f"{len(busy)} held by job " + ", ".join(
                    str(j) for j in sorted({j for i in busy for j in held_by[i]})))
        kept_for = sorted({kept[i] for i in fits if i in kept})
        if kept_for:
            why.append(f"{sum(1 for i in fits if i in kept)} kept for job "
                       + ", ".join(map(str, kept_for)))
        idle = [g for g in may_use if not g.held_by or settings.gpu_share]
        foreign = sum(1 for g in idle if not g.usable and g.note.startswith("other"))
        if foreign:
            why.append(f"{foreign} used by other processes")
        short = sum(1 for i, g in usable.items() if (settings.gpu_share or holders[i] == 0)
                    and free_mb[i] < mem)
        if short:
            why.append(f"{short} with less free memory")
        for i in free:
            kept[i] = req.job_id
        out.append(Decision(req.job_id, "wait", note=(
            f"waiting for {need} free GPU{'' if need == 1 else 's'}{with_mem};"
            f" {len(free)} free"
            + (f" ({'; '.join(why)})" if why else ""))))
    return out
