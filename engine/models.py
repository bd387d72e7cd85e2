"""Plain records the engine API returns (to the TUI, the CLI and scripts)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .records import _json_safe, loads  # noqa: F401 - loads: re-exported
from .records import dumps_safe as dumps  # noqa: F401 - re-exported


class Record:
    def to_json(self) -> dict[str, Any]:
        # field by field, not asdict: asdict deep-copies every value, which was most of
        # `run list --json`'s time at 100,000 runs; _json_safe builds new containers anyway.
        # A Record subclass is always a dataclass instance; mypy cannot see it through the mixin
        return {f.name: _json_safe(getattr(self, f.name))
                for f in fields(self)}  # type: ignore[arg-type]


@dataclass
class Experiment(Record):
    id: int
    name: str
    adapter: str
    config: dict[str, Any]
    objective: str | None
    direction: str | None
    tags: list[str]
    notes: str
    origin: str | None
    created: float
    updated: float
    # list view extras
    runs: int = 0
    last_run_id: int | None = None
    last_run_number: int | None = None
    last_status: str | None = None
    last_progress: float | None = None
    last_message: str = ""
    last_error: str | None = None  # the run's error or note ("pruned at step 3")
    best_value: float | None = None
    best_run_number: int | None = None
    # what its jobs ask for (engine/placement.py): GPUs (0: the CPU), and the free memory
    # (MB) each of those GPUs must have (None: any)
    gpus: int = 0
    gpu_mem_mb: int | None = None


@dataclass
class Run(Record):
    id: int
    experiment_id: int
    experiment: str
    number: int
    status: str
    config: dict[str, Any]
    source: str
    pid: int | None
    created: float
    started: float | None
    finished: float | None
    summary: dict[str, dict[str, Any]] | None
    steps: int | None
    epochs: float | None
    error: str | None
    objective: str | None = None
    direction: str | None = None
    adapter: str = ""
    job_id: int | None = None
    progress: float | None = None
    message: str = ""
    last_output: float | None = None  # while running, as Job.last_output

    @property
    def label(self) -> str:
        return f"{self.experiment} › run {self.number}"

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        import time

        return (self.finished or time.time()) - self.started


@dataclass
class Job(Record):
    id: int
    type: str
    status: str
    run_id: int | None
    target: str
    params: dict[str, Any]
    progress: float
    message: str
    result: Any
    error: str | None
    exit_code: int | None
    pid: int | None
    host: str | None
    heartbeat: float | None
    cancel_requested: bool
    created: float
    started: float | None
    finished: float | None
    # while running: when it last reported anything (metrics, progress, log output); the
    # heartbeat is no report. ``engine.liveness.stalled_seconds`` turns it into a warning
    last_output: float | None = None
    # resources (engine/placement.py). What it asks for: GPUs (0: the CPU) and the free
    # memory (MB) each must have; an eval or index job asks what its run's training job
    # asked, a study job what its experiment asks.
    gpus: int = 0
    gpu_mem_mb: int | None = None
    # What it was given, when it was claimed: the GPUs' NVML indices (its
    # CUDA_VISIBLE_DEVICES); [] on a machine with GPUs means the CPU only; None when not
    # placed yet, or on a machine without GPUs.
    devices: list[int] | None = None
    devices_at: float | None = None
    # queued: why it waits ("waiting for 2 free GPUs; 1 free"); claimed: what it got where
    # that differs from what it asked ("asked for 1 GPU; this machine has none (...): runs on
    # the CPU")
    resource_note: str | None = None
    # executor "slurm" (engine/spooled_jobs.py): its Slurm job id and what Slurm last said
    # ("PENDING (Resources)", "RUNNING on node1"); None for a local job
    slurm_id: str | None = None
    slurm_state: str | None = None

    @property
    def executor(self) -> str:
        return str(self.params.get("executor") or "local")

    @property
    def wait_reason(self) -> str | None:
        return self.resource_note if self.status == "queued" else None

    @property
    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        import time

        return (self.finished or time.time()) - self.started

    @property
    def eta(self) -> float | None:
        el = self.elapsed
        if self.status != "running" or not el or not self.progress or self.progress >= 1:
            return None
        return el * (1 - self.progress) / self.progress


@dataclass
class MetricPoints(Record):
    key: str
    x: list[float]
    y: list[float]
    total: int = 0  # points stored for this key
    downsampled: bool = False


@dataclass
class MetricBatch(Record):
    """Rows newer than a cursor: ``points[key] = [(step, value, wall, epoch), ...]``."""

    cursor: int
    points: dict[str, list[tuple[int, float, float, float | None]]] = field(default_factory=dict)


@dataclass
class EvalRecord(Record):
    id: int
    run_id: int
    job_id: int | None
    checkpoint: str | None
    view_type: str
    data: dict[str, Any]
    summary: dict[str, Any]
    created: float
    experiment: str = ""
    run_number: int = 0


@dataclass
class IndexRecord(Record):
    id: int
    run_id: int
    checkpoint: str
    path: str
    job_id: int | None
    info: dict[str, Any]
    created: float
