"""The objective of a study's trials (textual-plotext): one point per complete trial, pruned
trials at their last reported value in grey, and the best-so-far as a step line. On a log
y axis (``log_y``) values at or below zero cannot be drawn: they are left out and the title
says how many."""

from __future__ import annotations

import math
from typing import Any

from textual_plotext import PlotextPlot

POINT = (66, 165, 245)
PRUNED = (120, 120, 120)
BEST = (255, 167, 38)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


class ObjectiveChart(PlotextPlot):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.points: list[tuple[int, float]] = []
        self.pruned: list[tuple[int, float]] = []
        self.best_line: tuple[list[float], list[float]] = ([], [])
        self.label = ""
        self.log_y = False
        self.left_out = 0  # values a log y axis cannot show (<= 0)
        self._signature: tuple | None = None

    def show(self, trials: list, best_line: tuple[list[float], list[float]], label: str,
             log_y: bool = False, force: bool = False) -> bool:
        """Replace the data; redraw only when something visible changed. Returns redrawn."""
        points = [(t.number, t.value) for t in trials
                  if t.state == "complete" and _finite(t.value)]
        pruned = [(t.number, t.intermediate[-1][1]) for t in trials
                  if t.state == "pruned" and t.intermediate and _finite(t.intermediate[-1][1])]
        sig = (tuple(points), tuple(pruned), tuple(map(tuple, best_line)), label, log_y)
        if sig == self._signature and not force:
            return False
        self._signature = sig
        self.left_out = 0
        if log_y:
            shown = [p for p in points if p[1] > 0]
            shown_pruned = [p for p in pruned if p[1] > 0]
            self.left_out = len(points) - len(shown) + len(pruned) - len(shown_pruned)
            points, pruned = shown, shown_pruned
            pairs = [(x, y) for x, y in zip(*best_line, strict=True) if y > 0]
            best_line = ([p[0] for p in pairs], [p[1] for p in pairs])
        self.points, self.pruned, self.best_line, self.label = points, pruned, best_line, label
        self.log_y = log_y
        self.replot()
        return True

    def on_mount(self) -> None:
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.title(self.label + (f"  ({self.left_out} at or below 0 left out)"
                                if self.left_out else ""))
        plt.xlabel("trial")
        xs = [p[0] for p in self.points + self.pruned] + [int(x) for x in self.best_line[0]]
        if xs:
            lo, hi = min(xs), max(xs)
            step = max(1, math.ceil((hi - lo + 1) / 8))
            ticks = list(range(lo, hi + 1, step))
            plt.xticks(ticks, [str(t) for t in ticks])
        if self.best_line[0]:
            plt.plot(*self.best_line, color=BEST, marker="braille", label="best so far")
        if self.pruned:
            plt.scatter([p[0] for p in self.pruned], [p[1] for p in self.pruned],
                        color=PRUNED, marker="x", label="pruned")
        if self.points:
            plt.scatter([p[0] for p in self.points], [p[1] for p in self.points],
                        color=POINT, marker="●", label="trial")
        if self.log_y and (self.points or self.pruned):
            plt.yscale("log")
        self.refresh()
