"""The Reporter a trial's adapter trains with: metrics go to the trial's labdeck run; each new
value of the objective is reported to the tuner (so its pruner can act), and a prune
or a study cancel makes ``should_stop()`` true.

An objective logged through ``log`` (an in-process adapter, or a script's JSON lines) is
reported at once. A script adapter's child process may instead write metrics straight to the
database through ``engine.tracking``; those are read back from the metrics table by a poller
(one cursor query every 0.2 s). Once the objective arrives through ``log`` the poller leaves
it alone, so no value is reported twice. A study worker polls its trials' reporters from one
long-lived ``Poller`` thread rather than starting (and joining) a thread per trial.
"""

from __future__ import annotations

import math
import sqlite3
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..data import metrics
from ..metric_writer import MetricWriter
from ..paths import checkpoint_file, record_checkpoint
from ..records import decode_value
from ..resources import job_device


class TrialReporter:
    def __init__(self, conn: sqlite3.Connection, writer: MetricWriter, run_id: int,
                 run_dir: Path, objective: str, on_objective: Callable[[int, float], bool],
                 outer_stop: Callable[[], bool],
                 on_progress: Callable[[float, str], None] | None, poller: Poller):
        self.conn = conn
        self.writer = writer
        self.run_id = run_id
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.objective = objective
        self._on_objective = on_objective
        self._outer_stop = outer_stop
        self._on_progress = on_progress
        self.values: list[float] = []
        self.pruned_at: int | None = None
        self._cursor = 0
        self._key_id: int | None = None
        self._direct = False  # the objective arrives through log() (in-process adapter)
        self._lock = threading.Lock()
        self._closed = False
        self._poller = poller
        self.stop_grace_s = 10.0  # how long a stopped command may take (script adapter)
        self.device = job_device()  # what the study job was given (adapters.base.Reporter)
        poller.attach(self)

    # -- Reporter protocol ---------------------------------------------------------------

    def log(self, metrics: Mapping[str, float], step: int | None = None,
            epoch: float | None = None) -> None:
        self.writer.log(metrics, step=step, epoch=epoch)
        if self.objective in metrics:
            # logged in this process: report it now (the poller then leaves the key alone)
            with self._lock:
                self._direct = True
                self._take(float(metrics[self.objective]))

    def progress(self, fraction: float, message: str = "") -> None:
        if self._on_progress is not None:
            self._on_progress(fraction, message)

    def checkpoint_path(self, name: str) -> Path:
        return checkpoint_file(self.run_dir, name)

    def checkpoint_saved(self, name: str, step: int | None = None) -> None:
        record_checkpoint(self.run_dir, name, step)

    def should_stop(self) -> bool:
        return self.pruned_at is not None or self._outer_stop()

    def info(self, message: str) -> None:
        sys.stdout.write(message.rstrip("\n") + "\n")
        sys.stdout.flush()

    # -- objective polling ---------------------------------------------------------------

    @property
    def pruned(self) -> bool:
        return self.pruned_at is not None

    @property
    def last_value(self) -> float | None:
        return self.values[-1] if self.values else None

    def _take(self, v: float) -> None:
        self.values.append(v)
        if self.pruned_at is None and not math.isnan(v):
            step = len(self.values) - 1
            if self._on_objective(step, v):
                self.pruned_at = step

    def poll(self) -> None:
        with self._lock:
            self._poll()

    def _poll(self) -> None:  # under self._lock
        if self._direct or self._closed:
            return
        if self._key_id is None:
            self._key_id = metrics.key_id(self.conn, self.run_id, self.objective)
            if self._key_id is None:
                return
        for point_id, _step, value, _wall, _epoch in metrics.key_points_after(
                self.conn, self._key_id, self._cursor, limit=10_000):
            self._cursor = point_id
            self._take(decode_value(value))

    def close(self) -> dict[str, Any]:
        """Stop polling; the caller flushes the writer first so the last points are read.
        After this no poll (from the poller's thread, still under way) reports anything."""
        self._poller.detach(self)
        with self._lock:
            self._poll()
            self._closed = True
        return {"values": self.values, "pruned_at": self.pruned_at}


class Poller:
    """One thread that polls the current trial's reporter every ``poll_s`` (a study worker
    runs one trial at a time): no thread start / join per trial."""

    def __init__(self, poll_s: float = 0.2):
        self.poll_s = poll_s
        self._current: TrialReporter | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, reporter: TrialReporter) -> None:
        self._current = reporter
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, args=(self._done,),
                                            name="labdeck-trial-poll", daemon=True)
            self._thread.start()

    def detach(self, reporter: TrialReporter) -> None:
        if self._current is reporter:
            self._current = None

    def _loop(self, done: threading.Event) -> None:
        while not done.wait(self.poll_s):
            reporter = self._current
            if reporter is None:
                continue
            try:
                reporter.poll()
            except sqlite3.Error:
                pass

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._current, self._thread, self._done = None, None, threading.Event()
