"""Buffered metric ingestion: what the tracking API, workers and study trials log through.

``log`` checks its input and appends under a lock; a background thread flushes batches in one
IMMEDIATE transaction each (woken early when many points are pending), so a training loop
logging every step barely notices it.

A point that ``log`` accepted is kept until it is stored: a failed write (a full disk, a
locked database) rolls back with its new metric keys, the points go back to the buffer and
the thread retries with a growing pause, reporting the failure once on stderr and once more
when writes succeed again. Values are floats; NaN is stored as NULL, +-inf as themselves.

Where batches go is the writer's store: the database (the default), or a worker's spool
(``store``, engine/spool.py ``SpoolMetrics``) when the worker runs on another host; the
scheduler then stores them, rollups included (engine/data/spool.py).

Each batch also updates its keys' rollup buckets (engine/metric_rollup.py) in the same
transaction; the writer keeps each key's open buckets between batches, and reads them again
when another writer has added points to the key meanwhile.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from .data import metrics as data
from .metric_rollup import STEP_MAX, STEP_MIN, Heads

MAX_KEY_LENGTH = 256
MAX_RETRY_PAUSE_S = 5.0


def _shown_key(key: str) -> str:
    return repr(key if len(key) <= 60 else key[:60] + "...")


def _checked_key(key: Any) -> str:
    if type(key) is not str:
        key = str(key)
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"metric key {_shown_key(key)} is {len(key)} characters long;"
                         f" the limit is {MAX_KEY_LENGTH}")
    return key


def _checked_step(step: Any) -> int:
    try:
        step = int(step)
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"step {step!r} is not an integer ({exc})") from None
    if not STEP_MIN <= step <= STEP_MAX:
        shown = str(step) if step.bit_length() <= 256 else f"of {step.bit_length()} bits"
        raise ValueError(f"step {shown} is outside the 64-bit integer range"
                         f" [-2**63, 2**63 - 1]")
    return step


def _checked_epoch(epoch: Any) -> float:
    try:
        return float(epoch)
    except OverflowError:
        raise ValueError("epoch is too large for a float") from None


class BatchStore(Protocol):
    """Somewhere other than the database that takes a writer's batches (a spool)."""

    last_step: int  # the run's highest step before this writer (-1: none)

    def append(self, buf: list) -> int:
        """Store the batch durably; the number of points stored. Raises to keep them."""


class MetricWriter:
    """Buffered metric ingestion for one run: appends are in-memory, flushed in batches by a
    background thread (or when the buffer is large) in one IMMEDIATE transaction each."""

    def __init__(self, conn: sqlite3.Connection | None, run_id: int,
                 flush_every_s: float = 0.25, max_buffer: int = 5000,
                 store: BatchStore | None = None):
        self.conn = conn
        self.store = store  # None: the database behind ``conn``
        self.flush_every_s = flush_every_s
        self.max_buffer = max_buffer
        self._buf: list[tuple[dict, int, float, float | None]] = []
        self._pending = 0
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._warned: set[str] = set()
        self._failures = 0  # consecutive failed flushes of the background thread
        self._failure: str | None = None  # the last one, as reported
        self._target(run_id)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="labdeck-metrics", daemon=True)
        self._thread.start()

    def _target(self, run_id: int) -> None:
        self.run_id = run_id
        self._heads: dict[int, Heads] = {}  # key id -> its rollup's open buckets
        if self.store is not None:
            self._key_ids: dict[str, int] = {}
            self._step = self.store.last_step
        else:
            assert self.conn is not None
            self._key_ids = data.key_ids(self.conn, run_id)
            self._step = data.last_step(self.conn, run_id)
        self.epoch: float | None = None

    def retarget(self, run_id: int) -> None:
        """Flush what is buffered, then write to another run with the same connection and
        flush thread (a study worker reuses one writer for all its trials' runs)."""
        with self._db_lock:
            with self._lock:
                buf, self._buf = self._buf, []
                self._pending = 0
                if buf:
                    try:
                        self._write(buf)
                    except BaseException:
                        self._buf[:0] = buf
                        self._pending += sum(len(m) for m, *_ in buf)
                        raise
                self._target(run_id)

    @property
    def last_step(self) -> int:
        return self._step

    @property
    def pending(self) -> int:
        """Points accepted by ``log`` and not stored yet."""
        return self._pending

    def _value(self, key: str, value: Any) -> float | None:
        """``value`` as a float; None (and one warning per key) for a value that is no number."""
        try:
            return float(value)  # ints, bools, numpy / torch scalars
        except OverflowError:
            raise ValueError(f"metric {_shown_key(key)}: the value is too large for a float"
                             " (an integer beyond 1.8e308)") from None
        except (TypeError, ValueError):
            if key not in self._warned:
                self._warned.add(key)
                sys.stderr.write(f"labdeck: metric {_shown_key(key)} is not a number"
                                 f" ({type(value).__name__}); skipped\n")
            return None

    def _checked(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        """A copy of ``metrics`` with str keys and float values; raises ValueError naming the
        key for a key that is too long or a value no float can hold."""
        out = {}
        for key, value in metrics.items():
            if type(key) is not str or len(key) > MAX_KEY_LENGTH:
                key = _checked_key(key)
            if type(value) is not float:
                value = self._value(key, value)
                if value is None:
                    continue
            out[key] = value
        return out

    def log(self, metrics: Mapping[str, Any], step: int | None = None,
            epoch: float | None = None) -> None:
        """Cheap: a check of the input and one append under a lock. Raises ValueError (and
        stores nothing of this call) for a key over MAX_KEY_LENGTH characters, a value too
        large for a float or a step outside int64."""
        metrics = self._checked(metrics)
        if step is not None:
            step = _checked_step(step)
        if epoch is not None:
            epoch = _checked_epoch(epoch)
        with self._lock:
            if step is None:
                step = _checked_step(self._step + 1)
            if epoch is not None:
                self.epoch = epoch
            self._step = max(self._step, step)
            self._buf.append((metrics, step, time.time(), self.epoch))
            self._pending += len(metrics)
            pending = self._pending
        if pending >= self.max_buffer:
            if pending >= 10 * self.max_buffer and self._failure is None:
                # backpressure: the database cannot keep up. While it refuses writes the
                # thread retries with pauses instead, and the points wait in memory.
                try:
                    self.flush()
                except Exception as exc:  # noqa: BLE001 - kept and retried by the thread
                    self._report(exc)
            else:
                self._wake.set()

    def log_many(self, rows: Iterable[tuple[str, int, float]]) -> None:
        """Append (key, step, value) rows; checked like ``log``, all or nothing."""
        wall = time.time()
        checked = []
        for key, step, value in rows:
            key = _checked_key(key)
            number = self._value(key, value)
            if number is not None:
                checked.append(({key: number}, _checked_step(step), wall))
        with self._lock:
            for metrics, step, wall in checked:
                self._buf.append((metrics, step, wall, self.epoch))
                self._step = max(self._step, step)
            self._pending += len(checked)

    def flush(self) -> int:
        """Store what is buffered now; on failure the points stay buffered and it raises."""
        with self._db_lock:
            with self._lock:
                buf, self._buf = self._buf, []
                self._pending = 0
            if not buf:
                return 0
            try:
                return self._write(buf)
            except BaseException:
                with self._lock:  # keep the points for the next attempt
                    self._buf[:0] = buf
                    self._pending += sum(len(m) for m, *_ in buf)
                raise

    def _write(self, buf: list) -> int:
        if self.store is not None:
            return self.store.append(buf)
        assert self.conn is not None
        stored, new_keys, heads = data.append(self.conn, self.run_id, self._key_ids, buf,
                                              self._heads)
        self._key_ids.update(new_keys)  # committed: cache them now
        self._heads.update(heads)
        return stored

    def _report(self, exc: BaseException) -> None:
        """Say once that writes fail (again only if the reason changes), not every retry."""
        self._failures += 1
        reason = f"{type(exc).__name__}: {exc}"
        if reason != self._failure:
            self._failure = reason
            sys.stderr.write(f"labdeck: cannot store the metrics of run {self.run_id} ({reason});"
                             f" {self.pending} points kept, retrying\n")

    def _recovered(self) -> None:
        if self._failure is not None:
            sys.stderr.write(f"labdeck: metrics of run {self.run_id} are stored again (after"
                             f" {self._failures} failed attempts)\n")
        self._failures, self._failure = 0, None

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._failures:
                pause = min(self.flush_every_s * 2 ** min(self._failures, 16), MAX_RETRY_PAUSE_S)
                if self._stop.wait(pause):
                    break
            else:
                self._wake.wait(self.flush_every_s)
                self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
                self._report(exc)
            else:
                self._recovered()

    def close(self) -> None:
        """Stop the thread and store the rest; raises (the points still buffered) when the
        database refuses them."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()
        self._recovered()
