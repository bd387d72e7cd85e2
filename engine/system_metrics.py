"""What a running job costs the machine, recorded as metrics of its run: every few seconds a
thread samples the job's process tree (CPU %, RSS) and the GPUs the job was given
(utilisation, memory used, temperature, power) into keys under the reserved prefix ``sys/``:

    sys/cpu_pct             CPU time of the tree over the interval, % of one core (top's way)
    sys/rss_mb              resident memory of the tree, MiB (a sum: shared pages count twice)
    sys/gpu<N>/util_pct     N is the physical NVML index (as in ``labdeck gpus``), not the
    sys/gpu<N>/mem_mb       index the job's CUDA sees; a field the board does not report
    sys/gpu<N>/temp_c       (NotSupported) is left out
    sys/gpu<N>/power_w

They are stored like any metric, through a ``MetricWriter`` of their own: its x is wall time,
and its step a sample counter (continuing across the jobs of one run: a train job, then an
eval), never the run's training step, which it must not move. ``sys/`` keys have no "best"
(engine/directions.py) and only the sampler writes them: the tracking API and the engine's
reporters refuse them from users.

The worker starts one ``SystemSampler`` for every job (``LABDECK_SYS_METRICS_S`` seconds
apart, default 5; 0 turns it off). It writes to the run named by the process's
``LABDECK_RUN_ID`` at the time of each sample: a train, eval or index job's run, or the trial
a study job is training now (the whole study job's tree, extra worker loops included). Cost:
one /proc scan and a few NVML calls per sample, in a thread that sleeps in between
(bench/sys_metrics_overhead.py).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .data import metrics as data
from .directions import SYSTEM_PREFIX, is_system_key
from .metric_writer import MetricWriter
from .resources import GpuReader, assigned_gpus
from .schema import connect_sync

INTERVAL_ENV = "LABDECK_SYS_METRICS_S"
DEFAULT_INTERVAL_S = 5.0
MIB = 1024 * 1024


class ReservedKeyError(ValueError):
    """A user logged a metric under ``sys/``, which labdeck's system metrics own."""


def refuse_system_keys(metrics: Mapping[str, object]) -> None:
    """Raise ReservedKeyError if a key is a system metric's (a user's ``sys/...``)."""
    for key in metrics:
        if isinstance(key, str) and is_system_key(key):
            raise ReservedKeyError(
                f"metric key {key!r}: the prefix {SYSTEM_PREFIX!r} is reserved for labdeck's"
                " system metrics; log it under another name")


def interval_s(environ: Mapping[str, str] | None = None) -> float:
    """Seconds between samples: ``LABDECK_SYS_METRICS_S`` (0 = off), default 5."""
    text = (os.environ if environ is None else environ).get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV}={text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{INTERVAL_ENV}={text!r}: expected seconds >= 0 (0 = off)")
    return value


def current_run() -> int | None:
    """The run this process works for now (``LABDECK_RUN_ID``, set by the worker and, per
    trial, by a study worker); None between trials or for a job without a run."""
    text = os.environ.get("LABDECK_RUN_ID", "")
    return int(text) if text.isdigit() and int(text) > 0 else None


class ProcessSampler:
    """CPU % and RSS of a set of processes (the job's tree) between two calls of ``sample``.

    CPU % is the CPU time the processes used since the previous call over the wall time
    between them (100 = one core busy). A process seen for the first time counts from its
    start if it started since the previous call, else from now; one that ends between two
    calls is counted up to the last call that saw it."""

    def __init__(self, pids: Callable[[], Iterable[int]]):
        import psutil  # only in a process that samples

        self._psutil = psutil
        self._pids = pids
        self._procs: dict[int, tuple[Any, float]] = {}  # pid -> (Process, cpu seconds)
        self._last = time.time()
        self.sample()  # the baseline: the first call's CPU % would cover the process's life

    def sample(self) -> dict[str, float]:
        psutil = self._psutil
        now = time.time()
        cpu = rss = 0.0
        seen: dict[int, tuple[Any, float]] = {}
        for pid in set(self._pids()):
            known = self._procs.get(pid)
            try:
                if known is not None and not known[0].is_running():  # the pid was reused
                    known = None
                proc = known[0] if known is not None else psutil.Process(pid)
                with proc.oneshot():
                    times = proc.cpu_times()
                    used = times.user + times.system
                    rss += proc.memory_info().rss
                    if known is None:
                        base = 0.0 if proc.create_time() >= self._last else used
                    else:
                        base = known[1]
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            cpu += max(0.0, used - base)
            seen[pid] = (proc, used)
        wall, self._last, self._procs = now - self._last, now, seen
        return {"sys/cpu_pct": 100.0 * cpu / wall if wall > 0 else 0.0, "sys/rss_mb": rss / MIB}


def gpu_metrics(reader: GpuReader) -> dict[str, float]:
    out: dict[str, float] = {}
    for g in reader.read():
        base = f"{SYSTEM_PREFIX}gpu{g.index}/"
        for name, value in (("util_pct", g.util_pct), ("mem_mb", g.mem_used_mb),
                            ("temp_c", g.temp_c), ("power_w", g.power_w)):
            if value is not None:
                out[base + name] = float(value)
    return out


class SystemSampler:
    """The sampling thread of one job. ``start`` returns at once; ``stop`` ends the thread and
    stores what it sampled. Failures are reported once on stderr and never reach the job."""

    def __init__(self, db_path: Path, pids: Callable[[], Iterable[int]],
                 gpus: tuple[int, ...] = (), interval: float = DEFAULT_INTERVAL_S,
                 run: Callable[[], int | None] = current_run):
        self.db_path = db_path
        self.interval = interval
        self._pids = pids
        self._gpus = gpus
        self._run = run
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer: MetricWriter | None = None
        self._step = 0
        self._said: set[str] = set()
        self.samples = 0  # stored so far (by this sampler)

    def start(self) -> SystemSampler:
        self._thread = threading.Thread(target=self._loop, name="labdeck-sys-metrics",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as exc:  # noqa: BLE001 - the job's outcome does not hang on it
                self._say(f"the last system metrics could not be stored ({exc})")
            if self._writer.conn is not None:
                self._writer.conn.close()
            self._writer = None

    # -- the thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        gpus = None
        try:
            procs = ProcessSampler(self._pids)
            gpus = GpuReader(self._gpus)
            if gpus.status != "ok":
                self._say(f"no GPU metrics: {gpus.status}")
            while not self._done.wait(self.interval):
                try:
                    self._sample(procs, gpus)
                except Exception as exc:  # noqa: BLE001 - a failed sample is skipped
                    self._say(f"a system metrics sample failed: {type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - no psutil, no database: no samples
            self._say(f"no system metrics: {type(exc).__name__}: {exc}")
        finally:
            if gpus is not None:
                gpus.close()

    def _sample(self, procs: ProcessSampler, gpus: GpuReader) -> None:
        values = procs.sample()
        status = gpus.status
        values.update(gpu_metrics(gpus))
        if gpus.status != status:
            self._say(f"GPU metrics: {gpus.status}")
        run_id = self._run()
        if run_id is None:
            return
        writer = self._writer_for(run_id)
        writer.log(values, step=self._step)
        self._step += 1
        self.samples += 1

    def _writer_for(self, run_id: int) -> MetricWriter:
        """This sampler's writer, pointed at ``run_id``; the sample counter continues from
        the run's last system sample (an eval job after the train job of the same run)."""
        w = self._writer
        if w is None:
            w = self._writer = MetricWriter(connect_sync(self.db_path), run_id,
                                            flush_every_s=1.0)
        elif w.run_id == run_id:
            return w
        else:
            w.retarget(run_id)
        assert w.conn is not None  # a database writer, never a spool's
        self._step = data.last_step(w.conn, run_id, system=True) + 1
        return w

    def _say(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            sys.stderr.write(f"labdeck: {message}\n")
            sys.stderr.flush()


def start_for_job(db_path: Path, pids: Callable[[], Iterable[int]],
                  environ: Mapping[str, str] | None = None) -> SystemSampler | None:
    """The worker's sampler for its job, started; None when ``LABDECK_SYS_METRICS_S`` is 0.
    A bad setting is said on stderr and sampling stays off: it never fails a job."""
    try:
        every = interval_s(environ)
        gpus = assigned_gpus(environ)
    except ValueError as exc:
        sys.stderr.write(f"labdeck: no system metrics: {exc}\n")
        return None
    if every <= 0:
        return None
    return SystemSampler(db_path, pids, gpus, every).start()

