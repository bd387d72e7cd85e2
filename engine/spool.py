"""The spool: how a worker on another host (a Slurm compute node) reports without opening the
home's SQLite file, whose WAL does not work across hosts.

The worker appends one record per line to ``spool.jsonl`` in its spool directory on the shared
filesystem: ``SEQ<TAB>CRC32<TAB>JSON\\n``, the CRC (8 hex digits) over the JSON's bytes, SEQ
counting from 1. The scheduler, the single writer of the database, reads the complete lines
from the byte offset it stored, checks each, applies them and stores the new offset in the
same transaction (engine/data/spool.py): a record is applied exactly once, whatever crashes.
A last line without its newline (being written) waits for the next read; a line whose CRC is
wrong stops the read there (it may be a region the filesystem has not shown us yet) until the
job has ended, when it is skipped and said so.

Records (``kind``): ``started`` (pid, host), ``metrics`` (a MetricWriter batch), ``beat``
(activity time, and progress and message when they changed), ``checkpoint``, ``finished``
(status, result, error; an eval's or index build's result rides in it). A ``cancel`` file in
the directory asks the worker to stop (besides Slurm's SIGTERM).
"""

from __future__ import annotations

import json
import os
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPOOL_FILE = "spool.jsonl"
JOB_FILE = "job.json"
CANCEL_FILE = "cancel"


def encode(seq: int, record: Mapping[str, Any]) -> bytes:
    payload = json.dumps(record, separators=(",", ":")).encode()
    return b"%d\t%08x\t%s\n" % (seq, zlib.crc32(payload), payload)


@dataclass
class Record:
    seq: int
    kind: str
    data: dict[str, Any]


@dataclass
class SpoolRead:
    records: list[Record]
    offset: int  # the byte offset after the last record read (or skipped)
    bad: list[str]  # lines skipped as damaged (only with ``final``)


def read_from(path: Path, offset: int, final: bool = False) -> SpoolRead:
    """The complete, intact records of the spool from byte ``offset`` on. ``final``: the job
    has ended and nothing more will be written: a damaged line is skipped (and named in
    ``bad``) instead of stopping the read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except FileNotFoundError:
        return SpoolRead([], offset, [])
    records: list[Record] = []
    bad: list[str] = []
    pos = 0
    while True:
        end = chunk.find(b"\n", pos)
        if end < 0:
            break
        line = chunk[pos:end]
        record = _decode(line)
        if record is None:
            if not final:
                break
            bad.append(line[:80].decode(errors="replace"))
        else:
            records.append(record)
        pos = end + 1
    return SpoolRead(records, offset + pos, bad)


def _decode(line: bytes) -> Record | None:
    parts = line.split(b"\t", 2)
    if len(parts) != 3:
        return None
    try:
        seq, crc = int(parts[0]), int(parts[1], 16)
    except ValueError:
        return None
    if zlib.crc32(parts[2]) != crc:
        return None
    try:
        data = json.loads(parts[2])
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    return Record(seq, data.pop("kind"), data)


class SpoolWriter:
    """Appends records to a spool (thread-safe: the training loop's metric thread and the
    heartbeat thread share it). ``sync``: flush and fsync before returning (started, finished,
    metric batches: what must survive the node)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / SPOOL_FILE
        self._lock = threading.Lock()
        self._seq = _last_seq(self.path)
        self._fh = open(self.path, "ab")  # noqa: SIM115 - open for the worker's life

    def write(self, kind: str, sync: bool = False, **data: Any) -> None:
        with self._lock:
            self._seq += 1
            self._fh.write(encode(self._seq, {"kind": kind, **data}))
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())

    def cancel_asked(self) -> bool:
        return (self.directory / CANCEL_FILE).exists()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def _last_seq(path: Path) -> int:
    """The highest sequence number already in the spool (a worker started again on the same
    directory continues it)."""
    if not path.exists():
        return 0
    read = read_from(path, 0, final=True)
    return max((r.seq for r in read.records), default=0)


class SpoolSink:
    """Where a spool-mode WorkerReporter sends its heartbeat (engine/reporter.py)."""

    def __init__(self, writer: SpoolWriter, quiet_beat_s: float = 30.0):
        self.writer = writer
        self.quiet_beat_s = quiet_beat_s
        self._last: tuple[float, float] | None = None  # (activity written, when)

    def beat(self, activity: float, progress: tuple[float, str] | None) -> bool:
        t = time.time()
        if (progress is not None or self._last is None or self._last[0] != activity
                or t - self._last[1] > self.quiet_beat_s):
            data: dict[str, Any] = {"activity": activity, "t": t}
            if progress is not None:
                data["progress"], data["message"] = progress
            self.writer.write("beat", **data)
            self._last = (activity, t)
        return self.writer.cancel_asked()

    def checkpoint(self, name: str, step: int | None) -> None:
        self.writer.write("checkpoint", name=name, step=step)


class SpoolMetrics:
    """Where a spool-mode MetricWriter stores its batches (engine/metric_writer.py)."""

    def __init__(self, writer: SpoolWriter, last_step: int):
        self.writer = writer
        self.last_step = last_step

    def append(self, buf: list) -> int:
        points = [[m, step, wall, epoch] for m, step, wall, epoch in buf]
        self.writer.write("metrics", sync=True, points=points)
        return sum(len(m) for m, *_ in buf)
