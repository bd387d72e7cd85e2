"""Typed settings in one place: where the home is, how much may run at once, and which GPUs
labdeck may use and how (engine/placement.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .home_access import PRIVATE, SHARED, Access, make_dir, read_shared, secure_home

HOME_ENV = "LABDECK_HOME"
DEFAULT_HOME = Path("~/.labdeck")


@dataclass(frozen=True)
class Settings:
    home: Path
    max_concurrency: int = 1
    cancel_grace_s: float = 10.0
    heartbeat_s: float = 1.0
    stale_after_s: float = 10.0  # heartbeat older than this + dead pid -> failed
    lease_ttl_s: float = 5.0
    poll_s: float = 0.25
    # a scheduler retries transient database faults (locked, busy, disk full or I/O) with
    # backoff; one that lasts this long since the last good tick stops it (serve exits 1)
    scheduler_give_up_s: float = 600.0
    # a running job with no metric, progress or log output for this long is shown stalled
    # (0: never) and, with stall_fail_s, failed by the scheduler (0: never)
    stall_warn_s: float = 600.0
    stall_fail_s: float = 0.0
    shared: bool = False  # <home>/home.json {"shared": true}: group-readable, else private
    # GPUs (engine/placement.py). LABDECK_GPUS: the devices labdeck may use, NVML indices or
    # UUIDs (None: all; (): none). LABDECK_GPU_SHARE=1: a GPU may serve several labdeck jobs.
    # LABDECK_GPU_FOREIGN_MAX: a GPU whose other (non-labdeck) processes use more than this
    # fraction of its memory is given to no job. NVML is read at most every gpu_probe_s.
    gpus_allowed: tuple[str, ...] | None = None
    gpu_share: bool = False
    gpu_foreign_max: float = 0.5
    gpu_probe_s: float = 2.0
    # jobs on Slurm (engine/spooled_jobs.py): Slurm is asked what its jobs do at most this often
    slurm_poll_s: float = 3.0

    @property
    def access(self) -> Access:
        return SHARED if self.shared else PRIVATE

    @property
    def db_path(self) -> Path:
        return self.home / "labdeck.db"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    def run_dir(self, run_id: int) -> Path:
        return self.runs_dir / str(int(run_id))

    def ensure(self) -> Settings:
        """For labdeck's own processes (engine, scheduler, workers): set the process umask
        to the home's access, which the commands they start inherit, then ``secure``."""
        os.umask(self.access.umask)
        return self.secure()

    def secure(self) -> Settings:
        """Create the home, its runs directory and database file with the home's access, or
        tighten an existing home that is looser; the process umask is left alone."""
        secure_home(self.home, self.access, self.db_path)
        make_dir(self.runs_dir, self.access)
        return self


def load_settings(home: str | os.PathLike[str] | None = None, **overrides: object) -> Settings:
    """Resolve the home: explicit argument, then $LABDECK_HOME, then ~/.labdeck."""
    raw = home if home is not None else os.environ.get(HOME_ENV) or DEFAULT_HOME
    path = Path(raw).expanduser().resolve()
    env_conc = os.environ.get("LABDECK_MAX_CONCURRENCY")
    if env_conc and "max_concurrency" not in overrides:
        overrides["max_concurrency"] = max(1, int(env_conc))
    env_grace = os.environ.get("LABDECK_CANCEL_GRACE")
    if env_grace and "cancel_grace_s" not in overrides:
        overrides["cancel_grace_s"] = float(env_grace)
    for name, env in (("scheduler_give_up_s", "LABDECK_SCHEDULER_GIVE_UP_S"),
                      ("stall_warn_s", "LABDECK_STALL_WARN_S"),
                      ("stall_fail_s", "LABDECK_STALL_FAIL_S")):
        value = os.environ.get(env)
        if value and name not in overrides:
            overrides[name] = max(0.0, float(value))
    gpus = os.environ.get("LABDECK_GPUS", "").strip()
    if gpus and "gpus_allowed" not in overrides:
        overrides["gpus_allowed"] = parse_gpu_list(gpus)
    share = os.environ.get("LABDECK_GPU_SHARE", "").strip().lower()
    if share and "gpu_share" not in overrides:
        overrides["gpu_share"] = share in ("1", "true", "yes", "on")
    foreign = os.environ.get("LABDECK_GPU_FOREIGN_MAX", "").strip()
    if foreign and "gpu_foreign_max" not in overrides:
        overrides["gpu_foreign_max"] = parse_fraction(foreign, "LABDECK_GPU_FOREIGN_MAX")
    overrides.setdefault("shared", read_shared(path))
    # each override was parsed to its field's type above; a dict of them has no finer type
    return Settings(home=path, **overrides)  # type: ignore[arg-type]


def parse_gpu_list(text: str) -> tuple[str, ...]:
    """``"0,2"`` or ``"GPU-8f1c...,GPU-77aa..."`` -> the entries; ``"none"`` -> no GPU."""
    if text.strip().lower() == "none":
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_fraction(text: str, name: str) -> float:
    """``"0.5"`` or ``"50%"`` -> 0.5; anything outside 0..1 is refused."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a fraction (0.5) or a percentage (50%)"
                         ) from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={text!r}: must be between 0 and 1 (or 0% and 100%)")
    return value
