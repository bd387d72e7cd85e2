"""The engine's Reporter: what a worker hands an adapter's train/evaluate/index code.

Metrics are buffered (MetricWriter); progress and heartbeat are written by one background
thread that also reads the job's cancel flag, so ``should_stop()`` costs a memory read. The
thread also writes when the adapter last reported anything (``activity``): the heartbeat only
proves the thread lives, and stall detection must not take it for progress.

Where the heartbeat goes is a sink: the job's row in the database (``DatabaseSink``), or,
for a worker on another host, its spool (engine/spool.py ``SpoolSink``), which also says whether a
cancel was asked for and records the checkpoints saved.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from .data import jobs as data
from .metric_writer import MetricWriter
from .paths import checkpoint_file, record_checkpoint
from .system_metrics import refuse_system_keys


class BeatSink(Protocol):
    def beat(self, activity: float, progress: tuple[float, str] | None) -> bool:
        """Record a heartbeat (and new progress); whether the job's cancel was asked for."""

    def checkpoint(self, name: str, step: int | None) -> None: ...


class DatabaseSink:
    """The heartbeat in the job's row (a worker on the home's host); the checkpoint record
    file in the run directory is all a saved checkpoint needs there."""

    def __init__(self, conn: sqlite3.Connection, job_id: int):
        self.conn = conn
        self.job_id = job_id

    def beat(self, activity: float, progress: tuple[float, str] | None) -> bool:
        return data.heartbeat(self.conn, self.job_id, activity, progress)

    def checkpoint(self, name: str, step: int | None) -> None:
        pass


class WorkerReporter:
    def __init__(self, sink: BeatSink, job_id: int, run_id: int | None,
                 run_dir: Path, heartbeat_s: float = 1.0, writer: MetricWriter | None = None,
                 stop_grace_s: float = 10.0, device: str = "cpu"):
        self.sink = sink
        self.job_id = job_id
        self.run_id = run_id
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = writer
        # seconds an adapter gives a child process between SIGTERM and SIGKILL when stopping
        self.stop_grace_s = stop_grace_s
        self.device = device  # "cpu" or "cuda": what the job was given (adapters.base.Reporter)
        self._heartbeat_s = heartbeat_s
        self._progress = 0.0
        self._message = ""
        self._dirty = True
        self._activity = time.time()
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._beat_loop, name="labdeck-heartbeat",
                                        daemon=True)
        self._thread.start()

    # -- Reporter protocol ---------------------------------------------------------------

    def log(self, metrics: Mapping[str, float], step: int | None = None,
            epoch: float | None = None) -> None:
        if self.writer is None:
            raise RuntimeError("this job has no run to log metrics to")
        refuse_system_keys(metrics)
        self.writer.log(metrics, step=step, epoch=epoch)
        self._activity = time.time()

    def progress(self, fraction: float, message: str = "") -> None:
        with self._lock:
            self._progress = min(1.0, max(0.0, float(fraction)))
            if message:
                self._message = str(message)[:500]
            self._dirty = True
            self._activity = time.time()

    def checkpoint_path(self, name: str) -> Path:
        return checkpoint_file(self.run_dir, name)

    def checkpoint_saved(self, name: str, step: int | None = None) -> None:
        record_checkpoint(self.run_dir, name, step)
        self.sink.checkpoint(name, step)
        self.info(f"checkpoint {name} saved" + (f" at step {step}" if step is not None else ""))

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def info(self, message: str) -> None:
        sys.stdout.write(message.rstrip("\n") + "\n")
        sys.stdout.flush()
        self._activity = time.time()

    # -- engine side ---------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def _beat_loop(self) -> None:
        while not self._closed.wait(self._heartbeat_s):
            try:
                self.beat()
            except (sqlite3.Error, OSError):
                pass

    def beat(self) -> None:
        with self._lock:
            progress, message, dirty = self._progress, self._message, self._dirty
            self._dirty = False
        if self.sink.beat(self._activity, (progress, message) if dirty else None):
            self._stop.set()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        if self.writer is not None:
            self.writer.close()
        try:
            self.beat()
        except (sqlite3.Error, OSError):
            pass
