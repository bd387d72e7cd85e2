"""Log metrics to labdeck from any Python training script, the way one would to MLflow or W&B.

    from engine import tracking
    run = tracking.init(experiment="my-script", config={"lr": 3e-4})
    for step in range(100):
        tracking.log({"train/loss": loss}, step=step)
    tracking.finish()

Inside a labdeck worker (a ``script`` adapter job) ``init`` attaches to the job's run and the
worker owns the run's status. Standalone, it creates the run in the home (``$LABDECK_HOME`` or
``home=``); points are buffered and flushed in batches and at exit; an uncaught exception
marks the run failed, and a run whose process dies is failed by the scheduler's sweep.

Inside a worker on another host (a Slurm job, engine/spool.py) the home's database is not to be
opened: the worker sets ``LABDECK_TRACKING=stdout`` and ``init`` then writes each batch as JSON
metric lines on stdout, which the ``script`` adapter reads like any command's and reports
through the worker's spool.

Keys under ``sys/`` are reserved for the system metrics labdeck samples while a job runs
(engine/system_metrics.py): ``log`` refuses them with ReservedKeyError, a ValueError.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Mapping
from typing import Any

from .data import experiments
from .data.runs import finish_run, insert_run
from .home_access import make_dir
from .metric_writer import MetricWriter
from .schema import connect_sync, write_tx
from .settings import load_settings
from .system_metrics import refuse_system_keys


class MetricWriteError(RuntimeError):
    """A run's buffered metric points could not be stored; they are kept for a retry."""


class TrackedRun:
    def __init__(self, run_id: int, writer: MetricWriter, attached: bool, conn):
        self.id = run_id
        self.attached = attached
        self._writer = writer
        self._conn = conn
        self._finished = False
        self._marked_failed = False  # by a finish() that could not store the points
        self._lock = threading.Lock()
        self._allowed: set = set()  # keys already checked: a loop logs the same ones each step

    def log(self, metrics: Mapping[str, float], step: int | None = None,
            epoch: float | None = None) -> None:
        if self._finished:
            raise RuntimeError(f"run {self.id} is finished")
        if not self._allowed.issuperset(metrics):
            refuse_system_keys(metrics)  # sys/ is labdeck's own (engine/system_metrics.py)
            if len(self._allowed) < 10_000:
                self._allowed.update(metrics)
        self._writer.log(metrics, step=step, epoch=epoch)

    def flush(self) -> None:
        self._writer.flush()

    def finish(self, status: str = "completed", error: str | None = None) -> None:
        """Store every buffered point, then mark the run ``status``. When the points cannot
        be stored (a full disk) it raises MetricWriteError and marks the run failed if it
        can; the points stay buffered, and a later ``finish()`` stores them and the status."""
        with self._lock:
            if self._finished:
                return
            try:
                self._writer.close()
            except Exception as exc:
                reason = (f"{self._writer.pending} metric points of run {self.id} could not be"
                          f" stored ({type(exc).__name__}: {exc})")
                if not self.attached:
                    with contextlib.suppress(sqlite3.Error):
                        self._marked_failed |= finish_run(self._conn, self.id, "failed", reason)
                raise MetricWriteError(reason + "; they are kept in memory: call finish()"
                                       " again once the database accepts writes") from exc
            if not self.attached:
                finish_run(self._conn, self.id, status, error,
                           only_if_running=not self._marked_failed)
            self._finished = True

    def __enter__(self) -> TrackedRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish("completed")
        else:
            self.finish("failed", f"{exc_type.__name__}: {exc}")


_current: TrackedRun | None = None
_hooked = False
TRACKING_ENV = "LABDECK_TRACKING"


class _StdoutLines:
    """A MetricWriter store that prints each point as a ``script`` adapter metric line."""

    last_step = -1

    def append(self, buf: list) -> int:
        lines = []
        for metrics, step, _wall, epoch in buf:
            point = {**metrics, "step": step}
            if epoch is not None:
                point["epoch"] = epoch
            lines.append(json.dumps(point) + "\n")
        sys.stdout.write("".join(lines))
        sys.stdout.flush()
        return sum(len(m) for m, *_ in buf)


def _new_run(conn, experiment: str, config: Mapping[str, Any] | None) -> int:
    """A running "tracking" run of this process in a (created if missing) script experiment."""
    exp_id = experiments.get_or_create(conn, experiment, "script", {})
    with write_tx(conn):
        run_id, _ = insert_run(conn, exp_id, config or {}, "running", "tracking", pid=os.getpid())
    return run_id


def init(experiment: str | None = None, config: Mapping[str, Any] | None = None,
         home: str | None = None, flush_every_s: float = 0.25) -> TrackedRun:
    """Start (or, inside a labdeck job, attach to) a run and make it the current one."""
    global _current
    if _current is not None and not _current._finished:
        return _current
    env_run = os.environ.get("LABDECK_RUN_ID")
    if (env_run and home is None and experiment is None
            and os.environ.get(TRACKING_ENV) == "stdout"):
        _current = TrackedRun(int(env_run), MetricWriter(None, int(env_run), store=_StdoutLines(),
                                                         flush_every_s=flush_every_s),
                              True, None)
        _install_hooks()
        return _current
    settings = load_settings(home).secure()
    conn = connect_sync(settings.db_path)
    if env_run and home is None and experiment is None:
        run_id, attached = int(env_run), True
    else:
        name = experiment or os.path.splitext(os.path.basename(sys.argv[0] or "script"))[0]
        run_id, attached = _new_run(conn, name, config), False
        make_dir(settings.run_dir(run_id), settings.access)
    writer = MetricWriter(conn, run_id, flush_every_s=flush_every_s)
    _current = TrackedRun(run_id, writer, attached, conn)
    _install_hooks()
    return _current


def start_run(experiment: str, config: Mapping[str, Any] | None = None,
              home: str | None = None) -> TrackedRun:
    """A standalone run (never attaches), usable as a context manager."""
    settings = load_settings(home).secure()
    conn = connect_sync(settings.db_path)
    run_id = _new_run(conn, experiment, config)
    return TrackedRun(run_id, MetricWriter(conn, run_id), False, conn)


def log(metrics: Mapping[str, float], step: int | None = None,
        epoch: float | None = None) -> None:
    (_current if _current is not None else init()).log(metrics, step=step, epoch=epoch)


def finish(status: str = "completed") -> None:
    global _current
    if _current is not None:
        _current.finish(status)
        _current = None


def _install_hooks() -> None:
    global _hooked
    if _hooked:
        return
    _hooked = True
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        global _current
        if _current is not None:
            try:
                _current.finish("failed", f"{exc_type.__name__}: {exc}")
            except MetricWriteError as failure:  # still show the exception that ended the run
                sys.stderr.write(f"labdeck: {failure}\n")
            finally:
                _current = None
        previous(exc_type, exc, tb)

    sys.excepthook = hook
    atexit.register(finish)
