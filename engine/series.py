"""In-memory copies of metric series for charts: filled once, then extended incrementally
from the metric-row cursor, and downsampled with numpy (min and max per bucket). A live
million-point chart costs one full read, then only the new rows per redraw."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_COLS = {"step": 0, "epoch": 1, "wall": 2}


@dataclass
class Series:
    last_id: int = 0
    n: int = 0
    data: np.ndarray = field(default_factory=lambda: np.empty((4, 1024)))  # step, epoch, wall, value
    monotonic: bool = True

    def extend(self, rows: list[tuple]) -> None:
        """rows: (id, step, value, wall, epoch) in id order."""
        if not rows:
            return
        k = len(rows)
        if self.n + k > self.data.shape[1]:
            grown = np.empty((4, max(2 * self.data.shape[1], self.n + k)))
            grown[:, : self.n] = self.data[:, : self.n]
            self.data = grown
        raw = np.array(rows, dtype=np.float64)  # None (NaN / no epoch) becomes nan
        arr = raw[:, [1, 4, 3, 2]].T
        if self.monotonic and (
                (self.n and arr[0, 0] < self.data[0, self.n - 1]) or np.any(np.diff(arr[0]) < 0)):
            self.monotonic = False
        self.data[:, self.n: self.n + k] = arr
        self.n += k
        self.last_id = rows[-1][0]

    def points(self, max_points: int, x: str = "step",
               last_n_steps: int | None = None) -> tuple[list[float], list[float], int, bool]:
        d = self.data[:, : self.n]
        if last_n_steps and self.n:
            d = d[:, d[0] > np.nanmax(d[0]) - last_n_steps]
        xs, ys = d[_COLS[x]], d[3]
        keep = ~np.isnan(xs)
        total = int(keep.sum())
        keep &= ~np.isnan(ys)
        xs, ys = xs[keep], ys[keep]
        if x == "wall" and xs.size:
            xs = xs - xs.min()
        if not self.monotonic or x != "step":
            order = np.argsort(xs, kind="stable")
            xs, ys = xs[order], ys[order]
        if xs.size <= max_points:
            return xs.tolist(), ys.tolist(), total, False
        buckets = max(1, max_points // 2)
        lo, hi = xs[0], xs[-1]
        b = ((xs - lo) * (buckets / ((hi - lo) * 1.000001 or 1.0))).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
        ends = np.r_[starts[1:], xs.size] - 1
        vmin = np.minimum.reduceat(ys, starts)
        vmax = np.maximum.reduceat(ys, starts)
        out_x = np.empty(2 * starts.size)
        out_y = np.empty(2 * starts.size)
        out_x[0::2], out_x[1::2] = xs[starts], xs[ends]
        out_y[0::2], out_y[1::2] = vmin, vmax
        return out_x.tolist(), out_y.tolist(), total, True
