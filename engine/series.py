"""What a chart shows of one metric key, read without reading the series.

A view is read from the key's rollup (engine/metric_rollup.py): the coarsest level with at
least as many buckets as the chart draws point pairs in the visible step range (a few hundred
rows for a 10M-point metric), or the points themselves when the range holds few. A chart
following a running run keeps its view: each redraw reads the points past the view's cursor
and folds them into its buckets the way the writer does, so it costs the new rows only. A
view is read again once a fresh read would take a coarser level (it never holds more than
four times the buckets it wants), and a zoomed one whenever points arrive (its range moves).

Each bucket is drawn as two points, (first x, min) and (last x, max); those are then binned
over the x range to at most ``max_points`` (min and max per bin, as for raw points), so
extremes always survive.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .data import metric_rollup as rollup_data
from .data import metrics as data
from .metric_rollup import Bucket, bucket_size, fold, top_level
from .store import Store

# A range of at most RAW_FACTOR x max_points points is read as points; above, level 0 has at
# least max_points / 2 buckets: the points drawn never get coarser than asked for
RAW_FACTOR = bucket_size(0) // 2
LIVE_BATCH = 20_000  # new points a redraw folds in; beyond, the rollup is read again
VIEWS_KEPT = 64  # views kept (least recently used dropped): a few hundred buckets each

_RAW_X = {"step": 1, "wall": 3, "epoch": 4}  # columns of a point row (id, step, value, wall, epoch)


@dataclass
class View:
    read: rollup_data.SeriesRead
    want: int  # buckets (point pairs) the chart draws
    raw_limit: int
    last_n: int | None

    def append(self, rows: list[tuple]) -> bool:
        """Fold points newer than the view's cursor into it; False when it should be read
        again instead (zoomed, or grown past its size)."""
        read = self.read
        rows = [r for r in rows if r[0] > read.cursor]
        if not rows:
            return True
        count = read.count + len(rows)
        if self.last_n is not None:
            return False
        if read.level is None:
            if count > self.raw_limit:
                return False
            read.points.extend(rows)
        else:
            up = read.level + 1  # once the level above has enough buckets, a read takes it
            if up <= top_level(count) and -(-count // bucket_size(up)) >= self.want:
                return False
            size = bucket_size(read.level)
            last = (read.count - 1) // size
            heads = (read.count, {read.level: (last, read.buckets[-1])})
            ids, steps, values, walls, epochs = zip(*rows, strict=True)
            changed, _ = fold(heads, (ids, steps, values, walls, epochs),
                              range(read.level, read.level + 1))
            for _level, idx, bucket in changed:
                if idx == last:
                    read.buckets[-1] = bucket
                else:
                    read.buckets.append(bucket)
        read.count, read.cursor = count, rows[-1][0]
        return True

    def points(self, max_points: int, x: str) -> tuple[list[float], list[float], int, bool]:
        """(xs, ys, points in range with an x, downsampled): at most ``max_points``, by x;
        NaN values left out."""
        if self.read.level is None:
            xs, ys, total = _raw(self.read.points, x)
            aggregated = False
        else:
            xs, ys, total = _pairs(self.read.buckets, x)
            aggregated = True
        if x == "wall" and xs.size:
            xs = xs - xs.min()
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
        if xs.size <= max_points:
            return xs.tolist(), ys.tolist(), total, aggregated
        return *_binned(xs, ys, max_points), total, True


def _raw(rows: list[tuple], x: str) -> tuple[np.ndarray, np.ndarray, int]:
    if not rows:
        return np.empty(0), np.empty(0), 0
    col = _RAW_X[x]
    arr = np.array([(r[col], r[2]) for r in rows], dtype=np.float64)  # None becomes NaN
    xs, ys = arr[:, 0], arr[:, 1]
    keep = ~np.isnan(xs)
    total = int(keep.sum())
    keep &= ~np.isnan(ys)
    return xs[keep], ys[keep], total


def _pairs(buckets: list[Bucket], x: str) -> tuple[np.ndarray, np.ndarray, int]:
    total = 0
    xs: list[float | None] = []
    ys: list[float | None] = []
    for b in buckets:
        lo, hi = ((b.step_lo, b.step_hi) if x == "step" else (b.wall_lo, b.wall_hi)
                  if x == "wall" else (b.epoch_lo, b.epoch_hi))
        if lo is None:
            continue  # x = epoch: no point of this bucket had one
        total += b.n
        if b.vmin is not None:
            xs += (lo, hi)
            ys += (b.vmin, b.vmax)
    return np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64), total


def _binned(xs: np.ndarray, ys: np.ndarray, max_points: int) -> tuple[list[float], list[float]]:
    """Sorted points -> min and max per bin of equal x width, at most ``max_points``."""
    buckets = max(1, max_points // 2)
    lo, hi = xs[0], xs[-1]
    b = ((xs - lo) * (buckets / ((hi - lo) * 1.000001 or 1.0))).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    ends = np.r_[starts[1:], xs.size] - 1
    out_x = np.empty(2 * starts.size)
    out_y = np.empty(2 * starts.size)
    out_x[0::2], out_x[1::2] = xs[starts], xs[ends]
    out_y[0::2], out_y[1::2] = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)
    return out_x.tolist(), out_y.tolist()


class SeriesViews:
    """The views an engine's charts hold, by (key, points drawn, zoom)."""

    def __init__(self) -> None:
        self._views: OrderedDict[tuple, View] = OrderedDict()

    async def points(self, store: Store, key_id: int, max_points: int, x: str,
                     last_n: int | None) -> tuple[list[float], list[float], int, bool]:
        last_n = last_n or None  # 0: no zoom
        want = max(1, max_points // 2)
        raw_limit = RAW_FACTOR * max(1, max_points)
        which = (key_id, max_points, last_n)
        view = self._views.get(which)
        if view is not None:
            limit = LIVE_BATCH if last_n is None else 1  # a zoom only asks: anything new?
            rows = await store.run(data.key_points_after, key_id, view.read.cursor, limit)
            if len(rows) == LIVE_BATCH or not view.append(rows):
                view = None
        if view is None:
            read = await store.run(rollup_data.read_series, key_id, want, raw_limit, None, None,
                                   last_n)
            view = View(read, want, raw_limit, last_n)
        self._views[which] = view
        self._views.move_to_end(which)
        while len(self._views) > VIEWS_KEPT:
            self._views.popitem(last=False)
        return view.points(max_points, x)
