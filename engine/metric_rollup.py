"""The rollup of a metric key: min/max buckets at several resolutions, what a chart reads
instead of the points.

A key's points, in the order they were stored (point id), are cut into buckets of
``bucket_size(level)`` consecutive points: 64 at level 0, four times more at each level up.
Each bucket holds the count, the NaN count, min, max and sum of the values (NaN left out),
the range of steps, wall times, epochs and point ids it covers. A key keeps the levels from
0 up to the first one whose single bucket holds all its points (``top_level``), so a chart of
any width finds a level with about as many buckets as it has columns, and a key of a few
points costs a row.

Buckets follow arrival order, not steps: their number does not depend on how steps are
spaced (every 1,000th step, or samples seen), and steps that go back (a resumed run) or
repeat stay in the buckets they arrived in; a bucket's step range says where it lies.

This module only computes (no SQL): ``fold`` adds new points to a key's open buckets, the
same way for the metric writer (engine/data/metrics.py, in the transaction that stores the
points) and for a live chart view (engine/series.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

STEP_MIN, STEP_MAX = -(2**63), 2**63 - 1  # SQLite INTEGER: the steps a point may have
BASE_BITS = 6  # level 0: 64 points a bucket
FANOUT_BITS = 2  # each level up: 4 buckets of the level below
MAX_LEVEL = 11  # 2**28 (268M) points a bucket; above, the top level holds several


def bucket_size(level: int) -> int:
    return 1 << (BASE_BITS + FANOUT_BITS * level)


def top_level(n: int) -> int:
    """The highest level a key of ``n`` points keeps: the first whose bucket 0 holds all."""
    level = 0
    while level < MAX_LEVEL and bucket_size(level) < n:
        level += 1
    return level


class Bucket(NamedTuple):
    """Aggregates of a run of consecutive points of one key. Values: NaN is counted in
    ``nans`` and left out of min, max and sum (None when every value was NaN); ``vsum`` is NaN
    when +inf and -inf met. Epochs: None when no point had one."""

    n: int
    nans: int
    vmin: float | None
    vmax: float | None
    vsum: float | None
    step_lo: int
    step_hi: int
    wall_lo: float
    wall_hi: float
    epoch_lo: float | None
    epoch_hi: float | None
    id_lo: int
    id_hi: int

    @property
    def mean(self) -> float | None:
        values = self.n - self.nans
        return None if not values or self.vsum is None else self.vsum / values


# A key's open (last) bucket at each of its levels, and its point count
Heads = tuple[int, dict[int, tuple[int, Bucket]]]
EMPTY: Heads = (0, {})

# New points of one key, oldest first: ids, steps, values (NaN as NaN or None), walls, epochs
Columns = tuple[Sequence[int], Sequence[int], Sequence["float | None"], Sequence[float],
                Sequence["float | None"]]


def _lo(a, b):
    return b if a is None else a if b is None or a <= b else b


def _hi(a, b):
    return b if a is None else a if b is None or a >= b else b


def merge(a: Bucket, b: Bucket) -> Bucket:
    """One bucket of ``a``'s points followed by ``b``'s."""
    vsum = b.vsum if a.vsum is None else a.vsum if b.vsum is None else a.vsum + b.vsum
    return Bucket(a.n + b.n, a.nans + b.nans, _lo(a.vmin, b.vmin), _hi(a.vmax, b.vmax), vsum,
                  min(a.step_lo, b.step_lo), max(a.step_hi, b.step_hi),
                  min(a.wall_lo, b.wall_lo), max(a.wall_hi, b.wall_hi),
                  _lo(a.epoch_lo, b.epoch_lo), _hi(a.epoch_hi, b.epoch_hi), a.id_lo, b.id_hi)


def _chunk(cols: Columns, a: int, b: int) -> Bucket:
    ids, steps, values, walls, epochs = cols
    vs: Sequence[Any] = values[a:b]
    nans = 0
    try:
        total = sum(vs)
    except TypeError:  # None: NaN as read back from the database
        total = math.nan
    if total != total:  # a NaN among them (or +inf and -inf)
        finite = [v for v in vs if v is not None and v == v]
        nans, vs = len(vs) - len(finite), finite
        total = sum(vs) if vs else None
    es: Sequence[Any] = epochs[a:b]
    none = es.count(None)
    if none:
        es = [e for e in es if e is not None] if none < b - a else ()
    ws, st = walls[a:b], steps[a:b]
    return Bucket(b - a, nans, min(vs) if vs else None, max(vs) if vs else None, total,
                  min(st), max(st), min(ws), max(ws), min(es) if es else None,
                  max(es) if es else None, ids[a], ids[b - 1])


def _regroup(batch: list[tuple[int, Bucket]]) -> list[tuple[int, Bucket]]:
    """Buckets of one level -> those of the level above (consecutive, by index)."""
    out: list[tuple[int, Bucket]] = []
    for idx, agg in batch:
        up = idx >> FANOUT_BITS
        if out and out[-1][0] == up:
            out[-1] = (up, merge(out[-1][1], agg))
        else:
            out.append((up, agg))
    return out


def fold(heads: Heads, cols: Columns,
         levels: range | None = None) -> tuple[list[tuple[int, int, Bucket]], Heads]:
    """Add a key's new points to its rollup. ``heads``: its point count and open bucket at
    each level before them. Returns the buckets they changed or created, as (level, index,
    bucket), and the heads after them. ``levels``: only those (a view at one level); by
    default every level the key keeps (0 up to ``top_level`` of its new count)."""
    n0, open_buckets = heads
    m = len(cols[0])
    if not m:
        return [], heads
    n1 = n0 + m
    top0, top1 = top_level(n0), top_level(n1)
    wanted = levels if levels is not None else range(top1 + 1)
    last = wanted[-1] if len(wanted) else -1
    # level 0, this batch's points only: the first chunk fills the open bucket
    batch: list[tuple[int, Bucket]] = []
    size = bucket_size(0)
    idx, pos = n0 // size, 0
    take = size - n0 % size
    while pos < m:
        end = min(m, pos + take)
        batch.append((idx, _chunk(cols, pos, end)))
        idx, pos, take = idx + 1, end, size
    changed: list[tuple[int, int, Bucket]] = []
    new_open = dict(open_buckets)
    for level in range(last + 1):
        if level:
            batch = _regroup(batch)
        if level not in wanted:
            continue
        first_idx, first = batch[0]
        if n0 and level > top0 and levels is None:
            # a level new to this key: its bucket 0 holds every earlier point, which the old
            # top level's single bucket sums up
            earlier = open_buckets.get(top0)
        else:
            earlier = open_buckets.get(level)
        if earlier is not None and earlier[0] == first_idx:
            merged = [(first_idx, merge(earlier[1], first)), *batch[1:]]
        else:
            merged = batch
        changed.extend((level, i, agg) for i, agg in merged)
        new_open[level] = merged[-1]
    return changed, (n1, new_open)


def overlaps(b: Bucket, lo: int, hi: int) -> bool:
    return b.step_lo <= hi and b.step_hi >= lo


def finite_sum(v: float | None) -> float | None:
    """A sum as stored: NaN (inf - inf) is NULL like every NaN, read back by ``read_sum``."""
    return None if v is None or v != v else v


def read_sum(vsum: float | None, n: int, nans: int) -> float | None:
    return (math.nan if n > nans else None) if vsum is None else vsum
