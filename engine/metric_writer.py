"""Buffered metric ingestion: what the tracking API, workers and study trials log through.

``log`` is one append under a lock; a background thread flushes batches in one IMMEDIATE
transaction each (woken early when many points are pending), so a training loop logging
every step barely notices it.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .schema import write_tx


class MetricWriter:
    """Buffered metric ingestion for one run: appends are in-memory, flushed in batches by a
    background thread (or when the buffer is large) in one IMMEDIATE transaction each."""

    def __init__(self, conn: sqlite3.Connection, run_id: int, flush_every_s: float = 0.25,
                 max_buffer: int = 5000):
        self.conn = conn
        self.flush_every_s = flush_every_s
        self.max_buffer = max_buffer
        self._buf: list[tuple[dict, int, float, float | None]] = []
        self._pending = 0
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._target(run_id)
        self._closed = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="labdeck-metrics", daemon=True)
        self._thread.start()

    def _target(self, run_id: int) -> None:
        self.run_id = run_id
        self._warned: set[str] = set()
        self._key_ids: dict[str, int] = dict(
            (k, i) for i, k in self.conn.execute(
                "SELECT id, key FROM metric_keys WHERE run_id=?", (run_id,)).fetchall())
        self._step = int(self.conn.execute(
            "SELECT COALESCE(MAX(m.step), -1) FROM metrics m JOIN metric_keys k ON k.id=m.key_id"
            " WHERE k.run_id=?", (run_id,)).fetchone()[0])
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
                        raise
                self._target(run_id)

    @property
    def last_step(self) -> int:
        return self._step

    def log(self, metrics: Mapping[str, Any], step: int | None = None,
            epoch: float | None = None) -> None:
        """Cheap: one append under a lock. Values are checked and keys resolved at flush."""
        with self._lock:
            if step is None:
                step = self._step + 1
            if epoch is not None:
                self.epoch = float(epoch)
            self._step = max(self._step, int(step))
            self._buf.append((metrics if type(metrics) is dict else dict(metrics), int(step),
                              time.time(), self.epoch))
            self._pending += len(metrics)
            pending = self._pending
        if pending >= self.max_buffer:
            if pending >= 10 * self.max_buffer:
                self.flush()  # backpressure: the database cannot keep up
            else:
                self._wake.set()

    def log_many(self, rows: Iterable[tuple[str, int, float]]) -> None:
        wall = time.time()
        with self._lock:
            for key, step, value in rows:
                self._buf.append(({key: value}, int(step), wall, self.epoch))
                self._step = max(self._step, int(step))
                self._pending += 1

    def flush(self) -> int:
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
                raise

    def _rows(self, buf: list, first_id: int) -> list[tuple]:
        ids = self._key_ids
        rows = []
        n = first_id
        for metrics, step, wall, epoch in buf:
            for key, value in metrics.items():
                if type(value) is not float:
                    if isinstance(value, bool) or not isinstance(value, (int, float)):
                        try:
                            value = float(value)  # numpy / torch scalars
                        except (TypeError, ValueError):
                            if key not in self._warned:
                                self._warned.add(key)
                                sys.stderr.write(f"labdeck: metric {key!r} is not a number"
                                                 f" ({value!r}); skipped\n")
                            continue
                    value = float(value)
                kid = ids.get(key)
                if kid is None:
                    kid = self._new_key(str(key))
                rows.append((kid, n, step, None if value != value else value, wall, epoch))
                n += 1
        return rows

    def _new_key(self, key: str) -> int:
        self.conn.execute("INSERT OR IGNORE INTO metric_keys(run_id, key) VALUES (?,?)",
                          (self.run_id, key))
        kid = self.conn.execute("SELECT id FROM metric_keys WHERE run_id=? AND key=?",
                                (self.run_id, key)).fetchone()[0]
        self._key_ids[key] = kid
        return kid

    def _write(self, buf: list) -> int:
        with write_tx(self.conn):
            first = self.conn.execute("SELECT last + 1 FROM metric_seq WHERE id=1").fetchone()[0]
            rows = self._rows(buf, first)
            if rows:
                self.conn.executemany(
                    "INSERT INTO metrics(key_id, id, step, value, wall, epoch)"
                    " VALUES (?,?,?,?,?,?)", rows)
                self.conn.execute("UPDATE metric_seq SET last=? WHERE id=1", (rows[-1][1],))
        return len(rows)

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_every_s)
            self._wake.clear()
            try:
                self.flush()
            except sqlite3.Error:
                # a transient lock error: keep buffering, retry on the next tick
                time.sleep(0.1)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()
