"""SQL on ``metric_rollup``, the buckets engine/metric_rollup.py computes: writing a batch's
buckets (inside the metric writer's transaction, engine/data/metrics.append), reading a key's
open buckets back, reading a chart's series for a step range (a walk down the levels that
fetches a small multiple of the buckets asked for, however long the series) and a key's
count, extremes, last value and best step for a run's summary.

Values are as stored: NULL for NaN (a sum that is NaN, +inf - inf, too).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..metric_rollup import (
    EMPTY,
    FANOUT_BITS,
    MAX_LEVEL,
    STEP_MAX,
    STEP_MIN,
    Bucket,
    Columns,
    Heads,
    bucket_size,
    finite_sum,
    fold,
    overlaps,
    read_sum,
)
from .rows import scalar

# the top-level buckets of each metric key ``k`` (one per key unless it is huge): the key's
# extremes without reading its points
TOP_BUCKETS = ("FROM metric_keys k JOIN metric_rollup s ON s.key_id=k.id AND s.level="
               "(SELECT MAX(level) FROM metric_rollup WHERE key_id=k.id)")


_ROLLUP_COLUMNS = ("n, nans, vmin, vmax, vsum, step_lo, step_hi, wall_lo, wall_hi, epoch_lo,"
                    " epoch_hi, id_lo, id_hi")


def roll_up(conn: sqlite3.Connection, per_key: list[tuple[int, Columns]],
               heads: dict[int, Heads], created: set[int]) -> dict[int, Heads]:
    """Fold each key's just-inserted points (columns, in id order) into its rollup buckets."""
    out: list[tuple] = []
    new_heads: dict[int, Heads] = {}
    for kid, cols in per_key:
        if kid in created:
            head = EMPTY
        else:
            head = heads.get(kid)  # type: ignore[assignment]
            if head is None or head[0] != _stored_count(conn, kid):
                head = rollup_heads(conn, kid)
        changed, new_heads[kid] = fold(head, cols)
        out.extend((kid, level, idx, b.n, b.nans, b.vmin, b.vmax, finite_sum(b.vsum),
                    b.step_lo, b.step_hi, b.wall_lo, b.wall_hi, b.epoch_lo, b.epoch_hi,
                    b.id_lo, b.id_hi) for level, idx, b in changed)
    conn.executemany(f"INSERT OR REPLACE INTO metric_rollup(key_id, level, idx, {_ROLLUP_COLUMNS})"
                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", out)
    return new_heads


def _stored_count(conn: sqlite3.Connection, key_id: int) -> int:
    """The key's points, as its rollup counts them: its last level-0 bucket's place and size."""
    row = conn.execute("SELECT idx, n FROM metric_rollup WHERE key_id=? AND level=0"
                       " ORDER BY idx DESC LIMIT 1", (key_id,)).fetchone()
    return 0 if row is None else row[0] * bucket_size(0) + row[1]


def _bucket(row: tuple) -> Bucket:
    """A Bucket from the rollup columns (``_ROLLUP_COLUMNS``, in order)."""
    n, nans, vmin, vmax, vsum, *rest = row
    return Bucket(n, nans, vmin, vmax, read_sum(vsum, n, nans), *rest)


def rollup_heads(conn: sqlite3.Connection, key_id: int) -> Heads:
    """A key's point count and the last bucket of each of its rollup levels."""
    open_buckets: dict[int, tuple[int, Bucket]] = {}
    for level in range(MAX_LEVEL + 1):
        row = conn.execute(f"SELECT idx, {_ROLLUP_COLUMNS} FROM metric_rollup"
                           " WHERE key_id=? AND level=? ORDER BY idx DESC LIMIT 1",
                           (key_id, level)).fetchone()
        if row is None:
            break
        open_buckets[level] = (row[0], _bucket(row[1:]))
    if not open_buckets:
        return EMPTY
    idx, last = open_buckets[0]
    return idx * bucket_size(0) + last.n, open_buckets


@dataclass
class SeriesRead:
    """What a chart reads of one key for a step range: rollup buckets of one level (``level``
    not None, oldest first) or, for a range of few points, the points themselves (id, step,
    value as stored, wall, epoch; id order)."""

    level: int | None = None
    buckets: list[Bucket] = field(default_factory=list)
    points: list[tuple] = field(default_factory=list)
    count: int = 0  # points of the key
    cursor: int = 0  # id of its newest point when read
    lo: int = STEP_MIN  # the step range read
    hi: int = STEP_MAX
    fetched: int = 0  # rows fetched from SQLite, all statements together


def read_series(conn: sqlite3.Connection, key_id: int, want: int, raw_limit: int,
                lo: int | None = None, hi: int | None = None,
                last_n: int | None = None) -> SeriesRead:
    """One key's points with a step in [lo, hi] (both None: all; ``last_n``: its last steps),
    as the coarsest rollup level with at least ``want`` buckets there, or as the points when
    there are at most ``raw_limit``. Walks down from the top level, each level reading only
    the children of the buckets that overlap the range, so the rows fetched stay a small
    multiple of ``want`` (or ``raw_limit``) however long the series; one read transaction."""
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")
    try:
        return _read_series(conn, key_id, want, raw_limit, lo, hi, last_n)
    finally:
        if began:
            conn.execute("COMMIT")


def _read_series(conn: sqlite3.Connection, key_id: int, want: int, raw_limit: int,
                 lo: int | None, hi: int | None, last_n: int | None) -> SeriesRead:
    level = scalar(conn, "SELECT MAX(level) FROM metric_rollup WHERE key_id=?", (key_id,))
    if level is None:
        return SeriesRead(fetched=1)
    found = _buckets(conn, key_id, level, STEP_MIN, STEP_MAX, 0, None)
    out = SeriesRead(count=sum(b.n for _, b in found), cursor=max(b.id_hi for _, b in found),
                     fetched=1 + len(found))
    out.lo = STEP_MIN if lo is None else max(STEP_MIN, lo)
    out.hi = STEP_MAX if hi is None else min(STEP_MAX, hi)
    if last_n is not None:
        out.lo = max(out.lo, max(b.step_hi for _, b in found) - last_n + 1)
    found = [(i, b) for i, b in found if overlaps(b, out.lo, out.hi)]
    fan = 1 << FANOUT_BITS
    while found:
        if sum(b.n for _, b in found) <= raw_limit:
            out.points = conn.execute(
                "SELECT id, step, value, wall, epoch FROM metrics WHERE key_id=?"
                " AND id BETWEEN ? AND ? AND step BETWEEN ? AND ? ORDER BY id",
                (key_id, min(b.id_lo for _, b in found), max(b.id_hi for _, b in found),
                 out.lo, out.hi)).fetchall()
            out.fetched += len(out.points)
            return out
        if len(found) >= want or level == 0:
            out.level, out.buckets = level, [b for _, b in found]
            return out
        level -= 1
        found = _buckets(conn, key_id, level, out.lo, out.hi, found[0][0] * fan,
                         max(i for i, _ in found) * fan + fan - 1)
        out.fetched += len(found)
    return out


def _buckets(conn: sqlite3.Connection, key_id: int, level: int, lo: int, hi: int,
             first: int, last: int | None) -> list[tuple[int, Bucket]]:
    """(index, bucket) of a level's buckets first..last (None: all) overlapping steps lo..hi."""
    rows = conn.execute(
        f"SELECT idx, {_ROLLUP_COLUMNS} FROM metric_rollup WHERE key_id=? AND level=?"
        " AND idx BETWEEN ? AND ? AND step_hi >= ? AND step_lo <= ? ORDER BY idx",
        (key_id, level, first, STEP_MAX if last is None else last, lo, hi)).fetchall()
    return [(r[0], _bucket(r[1:])) for r in rows]


def key_stats(conn: sqlite3.Connection, key_id: int, minimize: bool) -> dict[str, Any] | None:
    """A key's count, NaN count, min, max, highest step, last value (at that step) and the best
    value (min or max) with the first step it was reached; values as stored (None: NaN).
    Counts and extremes come from the top level; the two points it names are found by walking
    down only the buckets that can hold them and reading one level-0 bucket's points. None for
    a key with no point."""
    top = _top_buckets(conn, key_id)
    if top is None:
        return None
    buckets = [b for _, b in top[1]]
    last_step = max(b.step_hi for b in buckets)
    vmin = min((b.vmin for b in buckets if b.vmin is not None), default=None)
    vmax = max((b.vmax for b in buckets if b.vmax is not None), default=None)
    best = vmin if minimize else vmax
    return {"count": sum(b.n for b in buckets), "nan_count": sum(b.nans for b in buckets),
            "min": vmin, "max": vmax, "last_step": last_step,
            "last": _last_value(conn, key_id, top, last_step), "best": best,
            "best_step": None if best is None else _first_step_of(conn, key_id, top, best,
                                                                   minimize)}


# a key's top level and its (index, bucket) pairs
Top = tuple[int, list[tuple[int, Bucket]]]


def _top_buckets(conn: sqlite3.Connection, key_id: int) -> Top | None:
    level = scalar(conn, "SELECT MAX(level) FROM metric_rollup WHERE key_id=?", (key_id,))
    if level is None:
        return None
    return level, _buckets(conn, key_id, level, STEP_MIN, STEP_MAX, 0, None)


def _walk_down(conn: sqlite3.Connection, key_id: int, top: Top,
               keep: Callable[[list[tuple[int, Bucket]]], list[tuple[int, Bucket]]],
               ) -> list[Bucket]:
    """Level-0 buckets under the top ones that ``keep`` keeps at every level (it is handed a
    level's (index, bucket) pairs, by index)."""
    level, found = top[0], keep(top[1])
    fan = 1 << FANOUT_BITS
    while level and found:
        level -= 1
        parents = {i for i, _ in found}
        found = keep([(i, b) for i, b in _buckets(
            conn, key_id, level, STEP_MIN, STEP_MAX, found[0][0] * fan,
            max(i for i, _ in found) * fan + fan - 1) if i >> FANOUT_BITS in parents])
    return [b for _, b in found]


def _last_value(conn: sqlite3.Connection, key_id: int, top: Top,
                last_step: int) -> float | None:
    """The value (as stored) of the last point logged at the key's highest step: it lies in the
    newest bucket reaching that step."""
    def keep(level: list[tuple[int, Bucket]]) -> list[tuple[int, Bucket]]:
        return [p for p in level if p[1].step_hi == last_step][-1:]

    for b in _walk_down(conn, key_id, top, keep):
        return scalar(conn, "SELECT value FROM metrics WHERE key_id=? AND id BETWEEN ? AND ?"
                            " AND step=? ORDER BY id DESC LIMIT 1",
                      (key_id, b.id_lo, b.id_hi, last_step))
    return None


def _first_step_of(conn: sqlite3.Connection, key_id: int, top: Top,
                   best: float, minimize: bool) -> int | None:
    """The lowest step at which the key took the value ``best`` (its min or max): only buckets
    reaching ``best`` hold it, and none starting after the earliest such bucket ends."""
    def keep(level: list[tuple[int, Bucket]]) -> list[tuple[int, Bucket]]:
        hits = [p for p in level if (p[1].vmin if minimize else p[1].vmax) == best]
        bound = min((b.step_hi for _, b in hits), default=None)
        return [p for p in hits if bound is not None and p[1].step_lo <= bound]

    steps = [scalar(conn, "SELECT MIN(step) FROM metrics WHERE key_id=? AND id BETWEEN ? AND ?"
                          " AND value=?", (key_id, b.id_lo, b.id_hi, best))
             for b in _walk_down(conn, key_id, top, keep)]
    return min((s for s in steps if s is not None), default=None)
