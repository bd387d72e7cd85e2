"""What the machine's GPUs are and what runs on them, read through NVML (``nvidia-ml-py``, the
official bindings, imported as ``pynvml``). No NVML library, no driver or no GPU is a normal
case: the probe returns no devices and says why, never raises. Fields a device does not
support (temperature on some boards, power on others) read as None.

This module only observes (and tells which labdeck job a GPU process belongs to). Who may use
which device (``LABDECK_GPUS``, the foreign-memory threshold, sharing) and which job holds
which device is the scheduler's business (engine/placement.py); it fills the ``held_by`` /
``usable`` / ``note`` fields of the views built here. A job learns its
devices from its environment (``assigned_gpus``, ``job_device``) and its system-metrics
sampler reads them again and again through one ``GpuReader``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

MIB = 1024 * 1024
# the physical (NVML) indices of the GPUs the scheduler gave a job, comma-separated; empty or
# absent: a CPU job. The job's CUDA_VISIBLE_DEVICES names the same devices (PCI bus order).
GPU_INDICES_ENV = "LABDECK_GPU_INDICES"


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    used_mb: float | None        # None where the driver does not say
    job_id: int | None = None    # the labdeck job the process belongs to; None: foreign


@dataclass(frozen=True)
class GpuState:
    index: int                   # NVML index (PCI bus order, as CUDA_DEVICE_ORDER=PCI_BUS_ID)
    uuid: str
    name: str
    mem_total_mb: float
    mem_used_mb: float
    util_pct: float | None
    temp_c: float | None
    power_w: float | None
    processes: tuple[GpuProcess, ...] = ()
    held_by: tuple[int, ...] = ()  # labdeck jobs the scheduler assigned this device to
    usable: bool = True            # may the scheduler give it to a job now
    note: str = ""                 # why not, or anything worth saying ("excluded by LABDECK_GPUS")

    @property
    def mem_free_mb(self) -> float:
        return max(0.0, self.mem_total_mb - self.mem_used_mb)

    def foreign_mb(self) -> float:
        """Memory used by processes that are no labdeck job's."""
        return sum(p.used_mb or 0.0 for p in self.processes if p.job_id is None)


@dataclass(frozen=True)
class WaitingJob:
    job_id: int
    type: str
    target: str
    gpus: int
    reason: str                  # "waiting for 2 free GPUs; 1 free"


@dataclass(frozen=True)
class Resources:
    """One snapshot for the Resources view, `labdeck gpus` and the header."""

    gpus: tuple[GpuState, ...]
    waiting: tuple[WaitingJob, ...] = ()
    nvml: str = "ok"             # "ok", or why there are no devices ("NVML library not found")

    @property
    def busy(self) -> int:
        return sum(1 for g in self.gpus if g.held_by)

    @property
    def total(self) -> int:
        return len(self.gpus)


@dataclass
class Probe:
    gpus: list[GpuState] = field(default_factory=list)
    status: str = "ok"


def probe_gpus() -> Probe:
    """The devices NVML sees, in NVML index order, with their processes. Never raises."""
    try:
        import pynvml
    except ImportError:
        return Probe(status="nvidia-ml-py not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return Probe(status=_nvml_reason(pynvml, exc))
    try:
        count = pynvml.nvmlDeviceGetCount()
        out = [_device(pynvml, i) for i in range(count)]
        return Probe(gpus=out, status="ok" if out else "no GPU")
    except pynvml.NVMLError as exc:
        return Probe(status=_nvml_reason(pynvml, exc))
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _nvml_reason(pynvml: Any, exc: Exception) -> str:
    if isinstance(exc, pynvml.NVMLError_LibraryNotFound):
        return "NVML library not found"
    if isinstance(exc, pynvml.NVMLError_DriverNotLoaded):
        return "NVIDIA driver not loaded"
    return f"NVML error: {exc}"


def _device(pynvml: Any, index: int, processes: bool = True) -> GpuState:
    h = pynvml.nvmlDeviceGetHandleByIndex(index)
    mem = pynvml.nvmlDeviceGetMemoryInfo(h)
    return GpuState(
        index=index,
        uuid=_text(pynvml.nvmlDeviceGetUUID(h)),
        name=_text(pynvml.nvmlDeviceGetName(h)),
        mem_total_mb=mem.total / MIB,
        mem_used_mb=mem.used / MIB,
        util_pct=_optional(pynvml, lambda: float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)),
        temp_c=_optional(pynvml, lambda: float(pynvml.nvmlDeviceGetTemperature(
            h, pynvml.NVML_TEMPERATURE_GPU))),
        power_w=_optional(pynvml, lambda: pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0),
        processes=tuple(_processes(pynvml, h)) if processes else (),
    )


def _processes(pynvml: Any, handle: Any) -> list[GpuProcess]:
    seen: dict[int, GpuProcess] = {}
    for getter in ("nvmlDeviceGetComputeRunningProcesses",
                   "nvmlDeviceGetGraphicsRunningProcesses"):
        fn = getattr(pynvml, getter, None)
        if fn is None:
            continue
        try:
            procs = fn(handle)
        except pynvml.NVMLError:
            continue
        for p in procs:
            used = getattr(p, "usedGpuMemory", None)
            seen.setdefault(int(p.pid), GpuProcess(int(p.pid), used / MIB if used else None))
    return list(seen.values())


def _optional(pynvml: Any, read: Any) -> float | None:
    try:
        return read()
    except pynvml.NVMLError:  # NotSupported and friends: the field is unknown, not an error
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def with_jobs(gpus: list[GpuState], pid_jobs: dict[int, int]) -> list[GpuState]:
    """The same devices with each process tagged by the labdeck job it belongs to
    (``pid_jobs``: pid -> job id, from the jobs' process trees)."""
    return [replace(g, processes=tuple(replace(p, job_id=pid_jobs.get(p.pid))
                                       for p in g.processes)) for g in gpus]


class ProbeCache:
    """``probe_gpus`` at most every ``max_age_s`` seconds (NVML calls cost milliseconds per
    device; the scheduler ticks four times a second)."""

    def __init__(self, max_age_s: float = 2.0):
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._probe: Probe | None = None
        self._at = 0.0

    def get(self) -> Probe:
        with self._lock:
            if self._probe is None or time.monotonic() - self._at >= self.max_age_s:
                self._probe = probe_gpus()
                self._at = time.monotonic()
            return self._probe


def owners(pids: Iterable[int], workers: Mapping[int, int],
           home: os.PathLike[str] | str) -> dict[int, int]:
    """pid -> the labdeck job it belongs to, for the pids that belong to one: a process whose
    environment carries a job's marker of this home (``LABDECK_HOME``, ``LABDECK_JOB_ID``:
    engine/process_tree.py's ``job_marker``, which a job's worker gives all it starts), or a
    descendant of a job's worker (``workers``: worker pid -> job id). Another user's process,
    whose environment cannot be read, is foreign unless it descends from a worker. Linux
    (``/proc``); elsewhere nothing is found."""
    out = {}
    for pid in pids:
        job = _marked_job(pid, str(home))
        if job is None:
            job = _worker_ancestor(pid, workers)
        if job is not None:
            out[pid] = job
    return out


def _marked_job(pid: int, home: str) -> int | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = dict(item.partition(b"=")[::2] for item in fh.read().split(b"\0") if item)
    except OSError:
        return None
    job = env.get(b"LABDECK_JOB_ID", b"")
    if env.get(b"LABDECK_HOME") == home.encode() and job.isdigit():
        return int(job)
    return None


def _worker_ancestor(pid: int, workers: Mapping[int, int]) -> int | None:
    for _ in range(64):  # parent links end at init long before this
        if pid in workers:
            return workers[pid]
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                data = fh.read()
            pid = int(data[data.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        if pid <= 1:
            return None
    return None


# ------------------------------------------------------------------ a job's own devices


def assigned_gpus(environ: Mapping[str, str] | None = None) -> tuple[int, ...]:
    """The NVML indices of the GPUs this job was given (``LABDECK_GPU_INDICES``); () for a CPU
    job. Raises ValueError naming the variable for a value that is no list of indices."""
    text = (os.environ if environ is None else environ).get(GPU_INDICES_ENV, "").strip()
    if not text:
        return ()
    try:
        indices = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{GPU_INDICES_ENV}={text!r} is not a comma-separated list of"
                         " GPU indices") from None
    if any(i < 0 for i in indices):
        raise ValueError(f"{GPU_INDICES_ENV}={text!r}: GPU indices are >= 0")
    return indices


def job_device(environ: Mapping[str, str] | None = None) -> str:
    """The torch device a job computes on: "cuda" (its first visible GPU; the process sees
    only its own through CUDA_VISIBLE_DEVICES) when it was given GPUs, else "cpu"."""
    return "cuda" if assigned_gpus(environ) else "cpu"


class GpuReader:
    """Reads the same devices again and again (a job's system metrics) with NVML initialised
    once. ``read`` returns the devices it could read, without their process lists; with no
    NVML (``status`` says why) it returns none. Never raises."""

    def __init__(self, indices: tuple[int, ...]):
        self.indices = indices
        self.status = "ok"
        self._pynvml: Any = None
        if not indices:
            return
        try:
            import pynvml
        except ImportError:
            self.status = "nvidia-ml-py not installed"
            return
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            self.status = _nvml_reason(pynvml, exc)
            return
        self._pynvml = pynvml

    def read(self) -> list[GpuState]:
        pynvml = self._pynvml
        if pynvml is None:
            return []
        out = []
        for index in self.indices:
            try:
                out.append(_device(pynvml, index, processes=False))
            except pynvml.NVMLError as exc:  # gone, or lost: say so once, keep the others
                self.status = f"GPU {index}: {_nvml_reason(pynvml, exc)}"
        return out

    def close(self) -> None:
        if self._pynvml is not None:
            try:
                self._pynvml.nvmlShutdown()
            except self._pynvml.NVMLError:
                pass
            self._pynvml = None
